/**
 * LocalCluster (cluster/local-cluster.ts) with fake node processes (cluster/testing/fake-node.ts):
 * spawning, logs, health, kill -9, SIGSTOP/SIGCONT, restart and stop, all by PID on loopback.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePortRange, LocalCluster, type LocalClusterOptions } from "../../cluster/local-cluster.js";

const FAKE_NODE = fileURLToPath(new URL("../../cluster/testing/fake-node.js", import.meta.url));

async function startFake(t: TestContext, n: number, options: Partial<LocalClusterOptions> = {}): Promise<LocalCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-local-"));
  const cluster = await LocalCluster.start(n, { dataDir, mainScript: FAKE_NODE, execArgv: [], stopTimeoutMs: 2_000, ...options });
  t.after(async () => {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return cluster;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("start spawns n nodes with ids 1..n on distinct free ports; waitHealthy waits for a controller leader", async (t) => {
  const lines: Array<[number, string]> = [];
  const cluster = await startFake(t, 3, { onLog: (id, line) => lines.push([id, line]), env: { FAKE_ELECTION_MS: "300" } });
  assert.deepEqual(cluster.nodes.map((n) => n.id), [1, 2, 3]);
  assert.equal(new Set(cluster.brokers()).size, 3);
  for (const n of cluster.nodes) assert.ok(n.running && alive(n.pid), `node ${n.id} runs`);
  const md = await cluster.waitHealthy(10_000);
  assert.equal(md.controllerLeader, 1);
  assert.deepEqual(md.nodes.map((n) => n.address), cluster.brokers());
  for (const id of [1, 2, 3]) {
    assert.ok(lines.some(([n, l]) => n === id && l.includes('"became leader"')), `node ${id}'s log lines reach onLog`);
    assert.match(readFileSync(cluster.node(id).logFile, "utf8"), /node started/);
    assert.ok(cluster.logTail(id).length >= 2);
    assert.ok(existsSync(cluster.node(id).dataDir));
  }
});

test("basePort gives consecutive ports", async (t) => {
  const base = await freePortRange("127.0.0.1", 2);
  const cluster = await startFake(t, 2, { basePort: base });
  assert.deepEqual(cluster.brokers(), [`127.0.0.1:${base}`, `127.0.0.1:${base + 1}`]);
  await cluster.waitHealthy(10_000);
});

test("kill -9 ends a node, restart brings it back with a new pid, stop ends everything", async (t) => {
  const exits: Array<[number, string | null]> = [];
  const cluster = await startFake(t, 3, { onExit: (id, _code, signal) => exits.push([id, signal]) });
  await cluster.waitHealthy(10_000);
  const oldPid = cluster.node(2).pid;
  cluster.kill(2);
  await cluster.exited(2);
  assert.equal(cluster.node(2).running, false);
  assert.deepEqual(exits, [[2, "SIGKILL"]]);
  assert.equal(alive(oldPid), false);
  await cluster.waitHealthy(10_000); // the two others are healthy
  await cluster.restart(2);
  assert.notEqual(cluster.node(2).pid, oldPid);
  await cluster.waitHealthy(10_000);
  const pids = cluster.nodes.map((n) => n.pid);
  await cluster.stop();
  for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} is gone`);
  assert.ok(cluster.nodes.every((n) => !n.running));
});

test("a SIGSTOPped node fails health checks and still stops (SIGCONT before SIGTERM)", async (t) => {
  const cluster = await startFake(t, 2);
  await cluster.waitHealthy(10_000);
  cluster.kill(2, "SIGSTOP");
  await assert.rejects(cluster.waitHealthy(1_500), (e: Error) => /did not become healthy within 1500 ms/.test(e.message) && /node 2 at .*: running \(pid \d+\): .*(did not answer|timed out)/.test(e.message));
  cluster.kill(2, "SIGCONT");
  await cluster.waitHealthy(10_000);
  cluster.kill(2, "SIGSTOP");
  const pid = cluster.node(2).pid;
  await cluster.stop();
  assert.equal(alive(pid), false);
});

test("a node that ignores SIGTERM is SIGKILLed after stopTimeoutMs", async (t) => {
  const cluster = await startFake(t, 1, { env: { FAKE_IGNORE_SIGTERM: "1" }, stopTimeoutMs: 300 });
  await cluster.waitHealthy(10_000);
  const started = Date.now();
  const exited: string[] = [];
  cluster.exited(1).then(() => exited.push("exited"), () => undefined);
  await cluster.stop();
  assert.ok(Date.now() - started >= 300);
  assert.deepEqual(exited, ["exited"]);
  assert.ok(cluster.logTail(1).some((l) => l.includes("ignoring SIGTERM")));
});

test("waitHealthy fails fast, with the node's log, when a node exits during start-up", async (t) => {
  const cluster = await startFake(t, 2, { env: { FAKE_FAIL_NODE: "2", FAKE_ELECTION_MS: "5000" } });
  const started = Date.now();
  const error = await cluster.waitHealthy(20_000).catch((e: Error) => e);
  assert.ok(error instanceof Error);
  assert.match(error.message, /node 2 exited while the cluster was starting/);
  assert.match(error.message, /cannot open the data directory/);
  assert.ok(Date.now() - started < 5_000);
});

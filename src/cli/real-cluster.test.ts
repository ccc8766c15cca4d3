/**
 * A smoke test of the client and the CLI against a real 3-node cluster on loopback (LocalCluster
 * running `raftmq node` processes): the client's view of the broker contract (routing, NOT_LEADER
 * trailers, error codes) is checked against the real server, not only against the fake.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable, Readable } from "node:stream";
import { spawn } from "node:child_process";
import { freePortRange, LocalCluster } from "../../cluster/local-cluster.js";
import { connect, UnknownTopicError } from "../client/index.js";
import { runCli } from "./cli.js";

const HEALTHY_TIMEOUT_MS = 30_000;
const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

async function cliOutput(args: string[], brokers: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const sink = (append: (s: string) => void) => new Writable({ write: (chunk, _e, done) => (append(String(chunk)), done()) });
  const code = await runCli(args, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    stdin: Readable.from([]),
    env: { RAFTMQ_BROKERS: brokers.join(",") },
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

test("a real 3-node cluster: produce, fetch, follow a new leader after kill -9, restart", { timeout: 120_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-real-"));
  const cluster = await LocalCluster.start(3, { dataDir, logLevel: "warn" });
  const client = connect({ brokers: cluster.brokers() });
  t.after(async () => {
    await client.close();
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);

  const created = await cliOutput(["topic", "create", "smoke", "--partitions", "6", "--replication", "3"], cluster.brokers());
  assert.equal(created.code, 0, created.stderr);
  const producer = client.producer({ lingerMs: 5 });
  const keys = Array.from({ length: 120 }, (_, i) => `key-${i % 12}`);
  const results = await Promise.all(keys.map((key, i) => producer.send("smoke", { key, body: `record ${i}` })));
  const perPartition = new Map<number, number>();
  for (const r of results) perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1);
  let fetched = 0;
  for (const [partition, count] of perPartition) {
    const f = await client.fetch("smoke", partition, 0, { maxBytes: 1 << 20 });
    assert.equal(f.records.length, count, `partition ${partition}`);
    fetched += f.records.length;
  }
  assert.equal(fetched, keys.length);
  await assert.rejects(client.fetch("missing", 0, 0), UnknownTopicError);

  const leader = (await client.metadata()).topics.find((x) => x.name === "smoke")!.partitions[0]!.leader;
  cluster.kill(leader, "SIGKILL");
  await cluster.exited(leader);
  const started = Date.now();
  const [after] = await client.produce("smoke", [{ body: "after the kill" }], { partition: 0 });
  assert.equal(after!.offset, perPartition.get(0) ?? 0, "offsets continue on the new leader");
  t.diagnostic(`partition 0 accepted a write ${Date.now() - started} ms after its leader (node ${leader}) was killed`);

  cluster.startNode(leader);
  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
  const status = await cliOutput(["cluster", "status", "--json"], cluster.brokers());
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).nodes.length, 3);
  const consumed = await cliOutput(["consume", "smoke", "--partition", "0"], cluster.brokers());
  assert.equal(consumed.code, 0, consumed.stderr);
  assert.match(consumed.stdout, /\| after the kill\n$/);
});

test("raftmq cluster up: readable logs, where to connect, and Ctrl-C stops every node", { timeout: 120_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-up-"));
  const port = await freePortRange("127.0.0.1", 3);
  const child = spawn(process.execPath, [MAIN, "cluster", "up", "--nodes", "3", "--base-port", String(port), "--data", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    for (const pid of pidsIn(stderr)) killQuietly(pid);
    rmSync(dataDir, { recursive: true, force: true });
  });
  for (let i = 0; i < 600 && !stderr.includes("cluster is up") && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(stderr, new RegExp(`cluster is up\\. Connect with --brokers 127\\.0\\.0\\.1:${port},127\\.0\\.0\\.1:${port + 1},127\\.0\\.0\\.1:${port + 2}`));
  const pids = pidsIn(stderr);
  assert.equal(pids.length, 3, stderr);
  assert.match(stdout, /^n1 \d\d:\d\d:\d\d\.\d{3} INFO {2}.*node started/m, "pino lines become readable lines prefixed by node");
  assert.ok(!/^n\d \{/m.test(stdout), "no raw JSON in the output");
  child.kill("SIGINT");
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /stopping the nodes\.\.\.\nraftmq: cluster stopped/);
  for (const pid of pids) assert.equal(isAlive(pid), false, `node pid ${pid} is gone`);
});

function pidsIn(text: string): number[] {
  return [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

/**
 * Consumer groups on a real 3-node cluster (cluster/local-cluster.ts: `raftmq node` processes on
 * 127.0.0.1), driven through the TypeScript client, the `raftmq` CLI in this process, and one
 * `raftmq consume --group` child process that is killed with kill -9. One cluster serves every
 * test (each uses its own topics and groups) to keep the run short; the data directory is removed
 * on success and kept, with the nodes' log tails printed, on failure.
 *
 * What is shown:
 *   - two groups on one topic each receive every record (publish-subscribe);
 *   - in one group of three members joining while records flow, each record is handled by
 *     exactly one member (competing consumers, cooperative hand-over, no failure);
 *   - a member killed with kill -9 loses its partitions after its session timeout, and the
 *     survivors, at-least-once, handle again everything it handled but had not committed;
 *   - committed offsets survive kill -9 of the group's coordinator node, and a new member resumes
 *     after them;
 *   - `raftmq group list|describe|reset` show and move offsets, with lag.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { LocalCluster } from "../../cluster/local-cluster.js";
import { connect, type ClientOptions, type CommitEvent, type ConsumedRecord, type Consumer, type RaftmqClient } from "../client/index.js";
import { runCli } from "../cli/cli.js";

const NODE_ARGS = ["--tick-interval-ms", "50", "--election-ticks", "10", "--shutdown-timeout-ms", "3000"];
const SESSION_TIMEOUT_MS = 2_000;
const WAIT_TIMEOUT_MS = 20_000;
const MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));
const FAST_CLIENT: Omit<ClientOptions, "brokers"> = {
  requestTimeoutMs: 5_000,
  produceTimeoutMs: 4_000,
  metadataTimeoutMs: 1_000,
  retry: { attemptsMax: 1_000, backoffInitialMs: 10, backoffMaxMs: 100, deadlineMs: 15_000 },
};

interface Handled {
  readonly member: string;
  readonly body: string;
  readonly partition: number;
  readonly offset: number;
}

describe("consumer groups on a 3-node cluster", { timeout: 120_000 }, () => {
  let dataDir: string;
  let cluster: LocalCluster;
  let client: RaftmqClient;
  let failed = false;
  const children = new Set<ChildProcess>();
  /** Lines the nodes logged at level error or above. */
  const errorLines: string[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "raftmq-consumers-"));
    cluster = await LocalCluster.start(3, {
      dataDir, logLevel: "info", nodeArgs: NODE_ARGS, stopTimeoutMs: 10_000,
      onLog: (id, line) => {
        if (line.startsWith("{") && (JSON.parse(line) as { level?: number }).level! >= 50) errorLines.push(`node ${id}: ${line}`);
      },
    });
    await cluster.waitHealthy(30_000);
    client = connect({ brokers: cluster.brokers(), ...FAST_CLIENT });
    // The controller creates the offsets topic on its own; wait until a coordinator answers.
    await waitFor("the group coordinators", async () => (await client.groupOffsets("probe", []), true));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await client?.close();
    if (failed) {
      for (const node of cluster.nodes) {
        console.log(`[consumers] node ${node.id} last lines:`);
        for (const line of cluster.logTail(node.id).slice(-15)) console.log(`  | ${line}`);
      }
    }
    await cluster?.stop();
    if (failed) console.log(`[consumers] kept ${dataDir} for diagnosis`);
    else rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs `body`, marking the suite failed (keep the data, print logs) if it throws. */
  async function guarded(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e) {
      failed = true;
      throw e;
    }
  }

  /** Creates a topic and waits until every running node's metadata has it (a client may ask any of them). */
  async function createTopic(name: string, options: { partitions: number } = { partitions: 1 }): Promise<void> {
    await client.createTopic(name, options);
    await waitFor(`topic ${name} known to every node`, async () => {
      const views = await Promise.all(cluster.nodes.filter((n) => n.running).map((n) => client.metadataFrom(n.address, { timeoutMs: 1_000, topics: [name] })));
      return views.every((md) => md.topics[0]?.partitions.every((p) => p.leader > 0)) || undefined;
    });
  }

  async function produce(topic: string, from: number, count: number): Promise<string[]> {
    const bodies = Array.from({ length: count }, (_, i) => `${topic}-${from + i}`);
    await client.produce(topic, bodies.map((body) => ({ key: body, body })));
    return bodies;
  }

  /** `raftmq consume TOPIC --group GROUP --json` as a child process; its printed record bodies go to `printed`. */
  function spawnConsumer(topic: string, group: string, printed: string[], extraArgs: readonly string[]): ChildProcess {
    const child = spawn(process.execPath, [
      MAIN, "consume", topic, "--group", group, "--json", "--brokers", cluster.brokers().join(","), "--session-timeout-ms", String(SESSION_TIMEOUT_MS), ...extraArgs,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    createInterface({ input: child.stdout! }).on("line", (line) => printed.push((JSON.parse(line) as { body: string }).body));
    child.stderr!.on("data", (d: Buffer) => process.stdout.write(`[consumers] ${topic} consumer: ${d.toString()}`));
    return child;
  }

  /** Starts a member with handler style, recording what it handles into `handled`. */
  function member(name: string, group: string, topic: string, handled: Handled[], extra: Partial<Parameters<RaftmqClient["consumer"]>[0]> = {}): Consumer {
    const consumer = client.consumer({ group, topics: [topic], sessionTimeoutMs: SESSION_TIMEOUT_MS, clientId: name, prefetchRecords: 50, ...extra });
    void consumer.run(async (r: ConsumedRecord) => {
      handled.push({ member: name, body: r.body.toString(), partition: r.partition, offset: r.offset });
    }).catch((e: unknown) => console.log(`[consumers] member ${name} stopped: ${String(e)}`));
    return consumer;
  }

  test("two groups on one topic each receive every record", () => guarded(async () => {
    await createTopic("fanout", { partitions: 3 });
    const bodies = await produce("fanout", 0, 60);
    const a: Handled[] = [];
    const b: Handled[] = [];
    const assigned: number[] = [];
    const commits: CommitEvent[] = [];
    const ca = member("a", "fanout-a", "fanout", a, { events: { assigned: (tps) => assigned.push(...tps.map((tp) => tp.partition)), commit: (e) => commits.push(e) } });
    const cb = member("b", "fanout-b", "fanout", b);
    bodies.push(...(await produce("fanout", 60, 30)));
    await waitFor("both groups received every record", async () => (distinct(a).size === bodies.length && distinct(b).size === bodies.length) || undefined);
    await Promise.all([ca.close(), cb.close()]);
    // The consumer's events: its assignment, and every commit sent and then answered.
    assert.deepEqual([...assigned].sort(), [0, 1, 2], "the lone member of fanout-a was assigned every partition");
    const sent = commits.filter((e) => e.phase === "sent");
    assert.ok(sent.length > 0, "commits were reported");
    for (const e of sent) assert.ok(commits.some((x) => x.id === e.id && x.phase !== "sent"), `commit ${e.id} was answered or failed`);
    const committedEnds = new Map<number, number>();
    for (const e of commits) if (e.phase === "committed") for (const o of e.offsets) committedEnds.set(o.partition, Math.max(committedEnds.get(o.partition) ?? 0, o.offset));
    assert.equal([...committedEnds.values()].reduce((x, y) => x + y, 0), bodies.length, "the committed offsets reached the end of every partition");
    assert.deepEqual([...distinct(a)].sort(), [...bodies].sort());
    assert.deepEqual([...distinct(b)].sort(), [...bodies].sort());
    assert.equal(a.length, bodies.length, "no record twice in group a");
    assert.equal(b.length, bodies.length, "no record twice in group b");
  }));

  test("in one group of three members joining while records flow, each record is handled by exactly one member", () => guarded(async () => {
    await createTopic("work", { partitions: 6 });
    const handled: Handled[] = [];
    const bodies: string[] = [];
    const members: Consumer[] = [];
    for (let round = 0; round < 6; round++) {
      if (round % 2 === 0) members.push(member(`w${round / 2}`, "workers", "work", handled));
      bodies.push(...(await produce("work", round * 50, 50)));
      await sleep(300);
    }
    await waitFor("every record handled", async () => distinct(handled).size === bodies.length || undefined);
    await waitFor("a stable, balanced group", async () => {
      const d = await client.describeGroup("workers");
      return (d.state === "stable" && d.members.length === 3 && d.members.every((m) => m.owned.length === 2)) || undefined;
    });
    bodies.push(...(await produce("work", 300, 60)));
    await waitFor("the last records handled", async () => distinct(handled).size === bodies.length || undefined);
    await sleep(300); // room for a late duplicate to show
    await Promise.all(members.map((m) => m.close()));
    const counts = new Map<string, number>();
    for (const h of handled) counts.set(h.body, (counts.get(h.body) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], "no record handled twice");
    assert.equal(handled.length, bodies.length);
    for (const name of ["w0", "w1", "w2"]) assert.ok(handled.some((h) => h.member === name), `${name} handled records`);
    console.log(`[consumers] three members handled ${handled.filter((h) => h.member === "w0").length}, ${handled.filter((h) => h.member === "w1").length}, ${handled.filter((h) => h.member === "w2").length} records`);
  }));

  test("a member killed with kill -9 loses its partitions after its session timeout; at-least-once hands its uncommitted records to the others", () => guarded(async () => {
    await createTopic("jobs", { partitions: 4 });
    const first = await produce("jobs", 0, 40);
    // The member that dies: the CLI, committing only every 10 minutes, so nothing it handles is committed.
    const printed: string[] = [];
    const child = spawnConsumer("jobs", "crashy", printed, ["--commit-interval-ms", "600000"]);
    await waitFor("the CLI member handled every record", async () => new Set(printed).size === first.length || undefined);
    const before = await client.describeGroup("crashy");
    assert.equal(before.members.length, 1);
    assert.ok(before.offsets.every((o) => o.offset === -1), "it committed nothing");
    child.kill("SIGKILL");
    const killedAt = performance.now();

    const handled: Handled[] = [];
    const survivors = [member("s1", "crashy", "jobs", handled), member("s2", "crashy", "jobs", handled)];
    const later = await produce("jobs", 40, 20);
    await waitFor("the survivors handled everything, the dead member's records again", async () => distinct(handled).size === first.length + later.length || undefined);
    const takeoverMs = performance.now() - killedAt;
    console.log(`[consumers] the survivors took over ${Math.round(takeoverMs)} ms after the kill (session timeout ${SESSION_TIMEOUT_MS} ms)`);
    for (const body of printed) assert.ok(distinct(handled).has(body), `${body}, handled but not committed by the dead member, was delivered again`);
    // Its session ends a session timeout after its last heartbeat, which came up to a heartbeat interval (a third) before the kill.
    assert.ok(takeoverMs >= (SESSION_TIMEOUT_MS * 2) / 3 - 100, "its partitions stayed with it until its session ended");
    await Promise.all(survivors.map((s) => s.close()));
    const d = await client.describeGroup("crashy");
    assert.equal(d.members.length, 0, "closed members left the group");
    assert.deepEqual(d.offsets.map((o) => o.lag), [0, 0, 0, 0], "everything committed on close");
  }));

  test("at-most-once: what a killed member was handed is never delivered again", () => guarded(async () => {
    await createTopic("alerts", { partitions: 2 });
    const first = await produce("alerts", 0, 30);
    const printed: string[] = [];
    const child = spawnConsumer("alerts", "pager", printed, ["--guarantee", "at-most-once"]);
    await waitFor("the CLI member printed every record", async () => new Set(printed).size === first.length || undefined);
    child.kill("SIGKILL");
    const committed = await client.groupOffsets("pager", ["alerts"]);
    assert.equal(committed.reduce((n, o) => n + o.offset, 0), first.length, "it committed before printing");
    const handled: Handled[] = [];
    const survivor = member("p1", "pager", "alerts", handled, { guarantee: "at-most-once" });
    const later = await produce("alerts", 30, 10);
    await waitFor("the survivor handled the new records", async () => distinct(handled).size === later.length || undefined);
    await sleep(300);
    assert.deepEqual([...distinct(handled)].sort(), [...later].sort(), "nothing the dead member was handed comes again");
    await survivor.close();
  }));

  test("a member keeps consuming across kill -9 of a partition leader, without losing a record", () => guarded(async () => {
    await createTopic("steady", { partitions: 3 });
    const handled: Handled[] = [];
    const consumer = member("k1", "steady-group", "steady", handled);
    const bodies = await produce("steady", 0, 30);
    await waitFor("the first records", async () => distinct(handled).size === bodies.length || undefined);
    const leader = (await client.describeTopic("steady")).partitions[0]!.leader;
    cluster.kill(leader, "SIGKILL");
    await cluster.exited(leader);
    for (let i = 1; i <= 4; i++) bodies.push(...(await produce("steady", i * 30, 30)));
    await waitFor("every record, across the failover", async () => distinct(handled).size === bodies.length || undefined);
    await consumer.close();
    cluster.startNode(leader);
    await cluster.waitHealthy(30_000);
  }));

  test("raftmq group list, describe and reset show and move a group's offsets", () => guarded(async () => {
    const env = { RAFTMQ_BROKERS: cluster.brokers().join(",") };
    const list = await cli(["group", "list"], env);
    assert.equal(list.code, 0, list.stderr);
    for (const g of ["fanout-a", "fanout-b", "workers", "crashy"]) assert.match(list.stdout, new RegExp(`^${g}\\s`, "m"));
    const described = await cli(["group", "describe", "fanout-a"], env);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /group fanout-a: empty/);
    assert.match(described.stdout, /^fanout\s+0\s+\d+\s+\d+\s+0$/m, "committed = high watermark: lag 0");
    const reset = await cli(["group", "reset", "fanout-a", "--topic", "fanout", "--to", "earliest"], env);
    assert.equal(reset.code, 0, reset.stderr);
    const offsets = await client.groupOffsets("fanout-a", ["fanout"]);
    assert.deepEqual(offsets.map((o) => o.offset), [0, 0, 0], "reset to earliest goes backwards on purpose");
    const lag = (await client.describeGroup("fanout-a")).offsets.reduce((n, o) => n + o.lag, 0);
    assert.equal(lag, 90, "lag is everything again");
    const latest = await cli(["group", "reset", "fanout-a", "--topic", "fanout", "--to-timestamp", String(Date.now() + 60_000)], env);
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal((await client.describeGroup("fanout-a")).offsets.reduce((n, o) => n + o.lag, 0), 0, "a future timestamp is the end of the log");
    const busy = client.consumer({ group: "fanout-a", topics: ["fanout"], sessionTimeoutMs: SESSION_TIMEOUT_MS });
    await waitFor("the member joined", async () => busy.assignment().length === 3 || undefined);
    const refused = await cli(["group", "reset", "fanout-a", "--topic", "fanout", "--to", "0"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /live member.*\[GROUP_NOT_EMPTY\]/);
    await busy.close();
  }));

  test("committed offsets survive kill -9 of the coordinator's node, and a new member resumes after them", () => guarded(async () => {
    const handled: Handled[] = [];
    const first = member("d1", "durable", "fanout", handled);
    await waitFor("every fanout record", async () => distinct(handled).size === 90 || undefined);
    await first.close();
    const committed = await client.groupOffsets("durable", ["fanout"]);
    assert.equal(committed.reduce((n, o) => n + o.offset, 0), 90);
    const coordinator = (await client.describeGroup("durable")).coordinator;
    cluster.kill(coordinator, "SIGKILL");
    await cluster.exited(coordinator);
    const after = await waitFor("a new coordinator answers", async () => {
      const d = await client.describeGroup("durable");
      return d.coordinator !== coordinator ? await client.groupOffsets("durable", ["fanout"]) : undefined;
    });
    assert.deepEqual(after, committed, "the committed offsets survived");
    const resumed: Handled[] = [];
    const second = member("d2", "durable", "fanout", resumed);
    const fresh = await produce("fanout", 90, 9);
    await waitFor("the new records", async () => distinct(resumed).size === fresh.length || undefined);
    await sleep(300);
    assert.deepEqual([...distinct(resumed)].sort(), [...fresh].sort(), "only records after the committed offsets");
    await second.close();
    cluster.startNode(coordinator);
    await cluster.waitHealthy(30_000);
  }));

  test("request-reply across nodes: every request gets its own reply; a request without responders times out cleanly", () => guarded(async () => {
    await createTopic("rpc", { partitions: 2 });
    const addresses = cluster.brokers();
    // The responders and the requester bootstrap from different nodes.
    const responderClient = connect({ brokers: [addresses[0]!], ...FAST_CLIENT });
    const requesterClient = connect({ brokers: [addresses[2]!], ...FAST_CLIENT });
    try {
      const responders = [1, 2].map((n) => {
        const consumer = responderClient.consumer({ group: "rpc-workers", topics: ["rpc"], sessionTimeoutMs: SESSION_TIMEOUT_MS, clientId: `responder-${n}` });
        void consumer.run(async (request) => {
          await responderClient.reply(request, { body: `${request.body.toString().toUpperCase()} from ${n}`, contentType: "text/plain" });
        });
        return consumer;
      });
      const started = performance.now();
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => requesterClient.request("rpc", { key: `k${i}`, body: `hello ${i}` }, { timeoutMs: 10_000 })));
      console.log(`[consumers] 20 concurrent requests answered in ${Math.round(performance.now() - started)} ms (first ones include the inbox and reply topic set-up)`);
      replies.forEach((r, i) => assert.match(r.body.toString(), new RegExp(`^HELLO ${i} from [12]$`), `request ${i} got its own reply`));
      const one = performance.now();
      await requesterClient.request("rpc", { body: "again" });
      console.log(`[consumers] one request-reply round trip: ${Math.round(performance.now() - one)} ms`);
      const cli1 = await cli(["request", "rpc", "from the cli", "--timeout-ms", "10000"], { RAFTMQ_BROKERS: addresses[1]! });
      assert.equal(cli1.code, 0, cli1.stderr);
      assert.match(cli1.stdout, /^FROM THE CLI from [12]\n$/);
      await Promise.all(responders.map((r) => r.close()));

      await createTopic("rpc-void");
      const before = performance.now();
      await assert.rejects(requesterClient.request("rpc-void", { body: "anyone?" }, { timeoutMs: 700 }), (e: unknown) => {
        assert.ok(e instanceof Error && e.name === "TimeoutError" && /got no reply within 700 ms/.test(e.message), String(e));
        return true;
      });
      const waited = performance.now() - before;
      assert.ok(waited >= 650 && waited < 2_000, `timed out after ${Math.round(waited)} ms`);
      assert.equal(requesterClient.inboxState().pending, 0, "nothing pending after the timeout");
      await waitFor("the idle inbox closed", async () => !requesterClient.inboxState().streaming || undefined, 5_000);
    } finally {
      await responderClient.close();
      await requesterClient.close();
    }
  }));

  test("no node logged an error", () => {
    assert.deepEqual(errorLines, []);
  });
});

function distinct(handled: readonly Handled[]): Set<string> {
  return new Set(handled.map((h) => h.body));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_TIMEOUT_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = "never probed";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = "not yet";
    } catch (error) {
      last = error;
    }
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
    await sleep(50);
  }
}

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, { stdout, stderr, stdin: Readable.from([]), env, signal: new AbortController().signal });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

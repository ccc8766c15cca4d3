/**
 * The raftmq command against the in-process fake cluster: mostly through runCli() with captured
 * streams, plus a few runs of the real executable for exit codes and signals.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { connect } from "../client/index.js";
import { FakeCluster } from "../client/testing/fake-broker.js";
import { partitionForKey } from "../client/partitioner.js";
import { runCli } from "./cli.js";
import { nodeOptions, parsePeers } from "./commands/node.js";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs the CLI in this process against `brokers`. */
async function cli(args: string[], options: { brokers?: string[]; stdin?: string; signal?: AbortSignal; stdout?: Capture } = {}): Promise<Run> {
  const stdout = options.stdout ?? new Capture();
  const stderr = new Capture();
  const env = options.brokers ? { RAFTMQ_BROKERS: options.brokers.join(",") } : {};
  const stdin = Readable.from(options.stdin === undefined ? [] : [options.stdin]);
  const code = await runCli(args, { stdout, stderr, stdin, env, signal: options.signal ?? new AbortController().signal });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function fakeCluster(t: TestContext, nodes = 3): Promise<FakeCluster> {
  const fake = await FakeCluster.start({ nodes });
  t.after(() => fake.close());
  return fake;
}

test("help: global, per group and per command; usage errors exit 2 and point to the help", async () => {
  const global = await cli(["--help"]);
  assert.equal(global.code, 0);
  for (const c of ["node", "cluster up", "cluster status", "topic create NAME", "produce TOPIC [BODY]", "consume TOPIC"]) assert.ok(global.stdout.includes(c), c);
  assert.equal((await cli([])).code, 2);
  const group = await cli(["topic", "--help"]);
  assert.match(group.stdout, /raftmq topic create NAME/);
  const create = await cli(["topic", "create", "--help"]);
  assert.match(create.stdout, /--partitions P +number of partitions/);
  assert.match(create.stdout, /--brokers HOST:PORT,\.\.\./);
  assert.equal((await cli(["help", "consume"])).stdout, (await cli(["consume", "-h"])).stdout);

  const cases: Array<[string[], RegExp]> = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["topic", "rename"], /unknown command "topic rename"; the topic commands are: create, list, describe, delete/],
    [["topic", "create"], /missing NAME/],
    [["topic", "create", "a", "b"], /unexpected argument "b"/],
    [["topic", "create", "a", "--partitions", "x"], /--partitions must be an integer from 1 to 10000, got "x"/],
    [["topic", "list", "--nope"], /Unknown option '--nope'/],
    [["topic", "list", "--brokers", "localhost"], /--brokers: "localhost" is not HOST:PORT/],
    [["consume", "t", "--from", "yesterday"], /--from must be earliest, latest or an offset/],
    [["produce", "t", "--header", "novalue"], /--header: "novalue" is not NAME=VALUE/],
    [["node", "--listen", "127.0.0.1:1", "--data", "d"], /--id is required/],
  ];
  for (const [args, message] of cases) {
    const run = await cli(args);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, message);
    assert.match(run.stderr, /--help/);
  }
});

test("topic create, list, describe and delete", async (t) => {
  const fake = await fakeCluster(t);
  const brokers = fake.brokers();
  const created = await cli(["topic", "create", "orders", "--partitions", "6", "--replication", "3"], { brokers });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, "created topic orders: 6 partition(s), replication 3\n");
  assert.equal(fake.requestsOf("CreateTopic")[0]!.request.replicationFactor, 3);
  await cli(["topic", "create", "audit"], { brokers });

  const list = await cli(["topic", "list"], { brokers });
  assert.deepEqual(list.stdout.trim().split("\n").map((l) => l.split(/\s+/)), [
    ["TOPIC", "PARTITIONS", "REPLICATION", "MAX-RECORD-BYTES"],
    ["audit", "1", "3", "1048576"],
    ["orders", "6", "3", "1048576"],
  ]);
  const describe = await cli(["topic", "describe", "orders"], { brokers });
  assert.match(describe.stdout, /^topic orders \(id 1\): 6 partition\(s\), replication 3/);
  assert.match(describe.stdout, /\n1 +2 +2,3,1 +2,3,1 +1 +0 +0\n/);
  const json = JSON.parse((await cli(["topic", "describe", "orders", "--json"], { brokers })).stdout);
  assert.equal(json.partitions.length, 6);

  const exists = await cli(["topic", "create", "orders"], { brokers });
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /raftmq: error: topic "orders" already exists \[TOPIC_EXISTS\]/);
  assert.equal((await cli(["topic", "delete", "orders"], { brokers })).stdout, "deleted topic orders\n");
  const gone = await cli(["topic", "describe", "orders"], { brokers });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /\[UNKNOWN_TOPIC\]/);
});

test("produce one BODY with key and headers, or one record per stdin line", async (t) => {
  const fake = await fakeCluster(t);
  fake.addTopic("events", 4, 3);
  const brokers = fake.brokers();
  const one = await cli(["produce", "events", "hello", "--key", "user-7", "-H", "trace=abc", "-H", "trace=def"], { brokers });
  assert.equal(one.code, 0, one.stderr);
  const p = partitionForKey(Buffer.from("user-7"), 4);
  assert.equal(one.stdout, `partition=${p} offset=0\n`);
  const stored = fake.records("events", p)[0]!;
  assert.deepEqual(stored.headers.map((h) => `${h.key}=${Buffer.from(h.value).toString()}`), ["trace=abc", "trace=def"]);

  const lines = await cli(["produce", "events"], { brokers, stdin: "a\nb\nc\nd\ne\n" });
  assert.equal(lines.code, 0, lines.stderr);
  const base = (q: number): number => (q === p ? 1 : 0);
  assert.deepEqual(lines.stdout.trim().split("\n"), [0, 1, 2, 3, 0].map((q, i) => `partition=${q} offset=${base(q) + (i === 4 ? 1 : 0)}`), "round-robin");
  assert.deepEqual(fake.records("events", 0).slice(base(0)).map((r) => Buffer.from(r.body).toString()), ["a", "e"]);
  const pinned = await cli(["produce", "events", "--partition", "3"], { brokers, stdin: "x\ny" });
  assert.deepEqual(pinned.stdout.trim().split("\n"), [`partition=3 offset=${base(3) + 1}`, `partition=3 offset=${base(3) + 2}`]);

  const missing = await cli(["produce", "nope", "x"], { brokers });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /topic "nope" does not exist; create it first \(raftmq topic create nope\) \[UNKNOWN_TOPIC\]/);
  const missingLines = await cli(["produce", "nope"], { brokers, stdin: "1\n2\n3\n" });
  assert.equal(missingLines.code, 1);
  assert.equal(missingLines.stderr.match(/record failed/g)?.length, 1, "one message for a repeated failure");
  assert.match(missingLines.stderr, /3 record\(s\) failed/);
});

test("consume prints every partition up to the current end; --partition, --from, --max and --json", async (t) => {
  const fake = await fakeCluster(t, 1);
  fake.addTopic("t", 2, 1);
  const brokers = fake.brokers();
  const client = connect({ brokers });
  t.after(() => client.close());
  await client.produce("t", [
    { body: "p0-a", key: null }, { body: "p1-a" }, { body: "line\nbreak" }, { body: Buffer.from([0xff, 0xfe]) },
  ]);
  await client.produce("t", [{ key: "k", body: "keyed", headers: { h: "v" } }], { partition: 1 });

  const all = await cli(["consume", "t"], { brokers });
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, ["0:0 | p0-a", "0:1 | line\\nbreak", "1:0 | p1-a", "1:1 | base64://4=", "1:2 key=k h=v | keyed", ""].join("\n"));
  assert.equal((await cli(["consume", "t", "--partition", "1", "--from", "2"], { brokers })).stdout, "1:2 key=k h=v | keyed\n");
  assert.equal((await cli(["consume", "t", "--from", "latest"], { brokers })).stdout, "");
  assert.equal((await cli(["consume", "t", "-n", "3"], { brokers })).stdout.split("\n").length - 1, 3);
  const json = (await cli(["consume", "t", "-p", "1", "--json"], { brokers })).stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(json.map((r) => [r.partition, r.offset, r.key, r.body ?? r.bodyBase64]), [[1, 0, null, "p1-a"], [1, 1, null, "//4="], [1, 2, "k", "keyed"]]);
  assert.deepEqual(json[2].headers, [{ key: "h", value: "v" }]);
  assert.match(json[0].id, /^[0-9a-f-]{36}$/);

  const noPartition = await cli(["consume", "t", "-p", "5"], { brokers });
  assert.equal(noPartition.code, 2);
  assert.match(noPartition.stderr, /there is no partition 5/);
});

test("produce record fields (--correlation-id, --reply-to, --content-type, --ttl-ms, --priority) come back in consume --json", async (t) => {
  const fake = await fakeCluster(t, 1);
  fake.addTopic("rr", 1, 1);
  const brokers = fake.brokers();
  const fields = ["--correlation-id", "req-42", "--reply-to", "inbox.7", "--content-type", "application/json", "--ttl-ms", "60000", "--priority", "5"];
  for (const compression of ["none", "gzip", "lz4"]) {
    const one = await cli(["produce", "rr", '{"a":1}', ...fields, "--compression", compression], { brokers });
    assert.equal(one.code, 0, one.stderr);
  }
  const lines = await cli(["produce", "rr", ...fields, "--producer-name", "cli-test"], { brokers, stdin: "x\ny\n" });
  assert.equal(lines.code, 0, lines.stderr);
  assert.equal(fake.requestsOf("InitProducer").length, 1, "stdin mode goes through an idempotent producer");
  const json = (await cli(["consume", "rr", "--json"], { brokers })).stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(json.length, 5);
  for (const r of json) {
    assert.deepEqual([r.correlationId, r.replyTo, r.contentType, r.ttlMs, r.priority, r.expired], ["req-42", "inbox.7", "application/json", 60_000, 5, false]);
  }
  assert.equal((await cli(["produce", "rr", "x", "--priority", "10"], { brokers })).code, 2);
  assert.match((await cli(["produce", "rr", "x", "--compression", "zip"], { brokers })).stderr, /--compression must be none, gzip or lz4/);
});

test("consume --follow waits for new records until the signal", async (t) => {
  const fake = await fakeCluster(t, 1);
  fake.addTopic("t", 2, 1);
  const brokers = fake.brokers();
  const client = connect({ brokers });
  t.after(() => client.close());
  await client.produce("t", [{ body: "old" }], { partition: 0 });
  const stop = new AbortController();
  const stdout = new Capture();
  const running = cli(["consume", "t", "--follow", "--from", "latest"], { brokers, signal: stop.signal, stdout });
  await new Promise((r) => setTimeout(r, 300));
  await client.produce("t", [{ body: "new-1" }], { partition: 1 });
  await client.produce("t", [{ body: "new-2" }], { partition: 0 });
  for (let i = 0; i < 100 && stdout.text.split("\n").length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  const run = await running;
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split("\n").sort(), ["0:1 | new-2", "1:0 | new-1"]);
});

test("cluster status shows nodes, the controller leader and leaders per topic; --json the metadata", async (t) => {
  const fake = await fakeCluster(t);
  fake.addTopic("orders", 6, 3);
  fake.setLeader("orders", 5, 0);
  fake.stopNode(3);
  const brokers = fake.brokers().slice(0, 1);
  const text = await cli(["cluster", "status"], { brokers });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^cluster fake: 3 node\(s\), controller leader: 1 \(as node 1 sees it\)/);
  assert.match(text.stdout, /\n1 +127\.0\.0\.1:\d+ +leader +up\n2 +127\.0\.0\.1:\d+ +voter +up\n3 +127\.0\.0\.1:\d+ +voter +unreachable \(connect ECONNREFUSED/);
  assert.match(text.stdout, /\norders +6 +3 +1:2 2:2 3:1 +1\n/);
  const json = JSON.parse((await cli(["cluster", "status", "--json"], { brokers })).stdout);
  assert.equal(json.controllerLeader, 1);
  assert.deepEqual(json.reachable.map((r: { up: boolean }) => r.up), [true, true, false]);
  fake.controllerLeader = 0;
  assert.equal((await cli(["cluster", "status"], { brokers })).code, 1, "no controller leader is a failure");
});

test("an unreachable cluster fails with exit 1 and a hint, within --timeout-ms", async () => {
  const dead = await FakeCluster.start({ nodes: 1 });
  const address = dead.brokers()[0]!;
  await dead.close();
  const started = Date.now();
  const run = await cli(["topic", "list", "--brokers", address, "--timeout-ms", "300"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`broker ${address} is unreachable \\(connect ECONNREFUSED [^)]*\\).*\\[UNAVAILABLE\\]`));
  assert.match(run.stderr, /Is the cluster running\? Start one with `raftmq cluster up`/);
  assert.ok(Date.now() - started < 3_000);
});

test("node options: peers parsed, this node added from --listen, mistakes named", () => {
  assert.deepEqual([...parsePeers("1=127.0.0.1:7001, 2=localhost:7002")], [[1, "127.0.0.1:7001"], [2, "localhost:7002"]]);
  assert.throws(() => parsePeers("1=a:1,1=b:2"), /names node 1 twice/);
  assert.throws(() => parsePeers("x=a:1"), /"x=a:1" is not ID=HOST:PORT/);
  assert.throws(() => parsePeers("2=a"), /--peers entry 2: "a" is not HOST:PORT/);
  const o = nodeOptions({ id: "3", listen: "127.0.0.1:7003", peers: "1=127.0.0.1:7001", data: "/tmp/x", "log-level": "debug", "election-ticks": "5" });
  assert.deepEqual({ ...o, peers: [...o.peers] }, {
    id: 3, listen: "127.0.0.1:7003", peers: [[1, "127.0.0.1:7001"], [3, "127.0.0.1:7003"]], dataDir: "/tmp/x", logLevel: "debug", electionTicks: 5,
  });
  assert.throws(() => nodeOptions({ id: "0", listen: "a:1", data: "d" }), /--id must be an integer from 1/);
  assert.throws(() => nodeOptions({ id: "1", listen: "a:1", data: "d", "log-level": "loud" }), /--log-level/);
});

test("node options: --peer-routes parsed like --peers, for known peers other than this node", () => {
  const base = { id: "1", listen: "127.0.0.1:7001", peers: "2=127.0.0.1:7002,3=127.0.0.1:7003", data: "/tmp/x" };
  const o = nodeOptions({ ...base, "peer-routes": "2=127.0.0.1:9012, 3=localhost:9013" });
  assert.deepEqual([...o.peerRoutes!], [[2, "127.0.0.1:9012"], [3, "localhost:9013"]]);
  assert.deepEqual([...o.peers], [[2, "127.0.0.1:7002"], [3, "127.0.0.1:7003"], [1, "127.0.0.1:7001"]], "--peers unchanged");
  assert.equal(nodeOptions(base).peerRoutes, undefined, "no routes by default");
  assert.throws(() => nodeOptions({ ...base, "peer-routes": "2=a:1,2=b:2" }), /--peer-routes names node 2 twice/);
  assert.throws(() => nodeOptions({ ...base, "peer-routes": "x=a:1" }), /--peer-routes: "x=a:1" is not ID=HOST:PORT/);
  assert.throws(() => nodeOptions({ ...base, "peer-routes": "2=a" }), /--peer-routes entry 2: "a" is not HOST:PORT/);
  assert.throws(() => nodeOptions({ ...base, "peer-routes": "1=a:1" }), /--peer-routes must not name this node \(1\)/);
  assert.throws(() => nodeOptions({ ...base, "peer-routes": "4=a:1" }), /--peer-routes names node 4, which is not in --peers \(1,2,3\)/);
});

/** Runs the real executable; resolves with its exit code and output. */
function runMain(args: string[], env: Record<string, string> = {}, onSpawn?: (pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    onSpawn?.(child.pid!);
  });
}

test("the executable: exit codes, and SIGINT ends consume --follow cleanly", async (t) => {
  const fake = await fakeCluster(t, 1);
  fake.addTopic("t", 1, 1);
  const env = { RAFTMQ_BROKERS: fake.brokers().join(",") };
  assert.equal((await runMain(["--help"])).code, 0);
  assert.equal((await runMain(["topic", "create"])).code, 2);
  const produced = await runMain(["produce", "t", "hi"], env);
  assert.deepEqual([produced.code, produced.stdout], [0, "partition=0 offset=0\n"]);
  let pid = 0;
  const following = runMain(["consume", "t", "--follow"], env, (p) => (pid = p));
  for (let i = 0; i < 100 && fake.requestsOf("Fetch").length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  process.kill(pid, "SIGINT");
  const run = await following;
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "0:0 | hi\n");
});

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../lib/clock.js";
import { connect, type ClientOptions, type RaftmqClient } from "./client.js";
import {
  InvalidArgumentError,
  OffsetOutOfRangeError,
  RpcError,
  ShuttingDownError,
  TopicExistsError,
  UnavailableError,
  UnknownPartitionError,
  UnknownTopicError,
} from "./errors.js";
import { NotLeaderError, ProposalDroppedError, TimeoutError } from "../lib/errors.js";
import { partitionForKey } from "./partitioner.js";
import { FakeCluster } from "./testing/fake-broker.js";

const FAST_RETRY = { attemptsMax: 5, backoffInitialMs: 1, backoffMaxMs: 5, deadlineMs: 5_000 };

async function setup(t: TestContext, nodes = 3, options: Partial<ClientOptions> = {}): Promise<{ fake: FakeCluster; client: RaftmqClient }> {
  const fake = await FakeCluster.start({ nodes });
  const client = connect({ brokers: [fake.brokers()[0]!], retry: FAST_RETRY, ...options });
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  return { fake, client };
}

test("topics: create, list, describe and delete; errors come back as their classes", async (t) => {
  const { fake, client } = await setup(t);
  const created = await client.createTopic("orders", { partitions: 4, replicationFactor: 3 });
  assert.equal(created.name, "orders");
  assert.equal(created.partitions.length, 4);
  assert.deepEqual(created.partitions[1]!.replicas, [2, 3, 1]);
  assert.deepEqual((await client.listTopics()).map((x) => x.name), ["orders"]);
  assert.equal((await client.describeTopic("orders")).replicationFactor, 3);

  const exists = await client.createTopic("orders").catch((e: unknown) => e);
  assert.ok(exists instanceof TopicExistsError, String(exists));
  assert.equal(exists.code, "TOPIC_EXISTS");
  assert.match(exists.message, /already exists/);
  await assert.rejects(client.createTopic("bad name!"), InvalidArgumentError);
  await assert.rejects(client.createTopic("big", { replicationFactor: 5 }), /replication factor/);

  await client.deleteTopic("orders");
  await assert.rejects(client.describeTopic("orders"), (e: unknown) => e instanceof UnknownTopicError && e.code === "UNKNOWN_TOPIC");
  await assert.rejects(client.deleteTopic("orders"), UnknownTopicError);
  assert.equal(fake.requestsOf("CreateTopic").length, 4, "admin errors other than redirects are not retried");
});

test("produce routes keyed records by murmur2 to the partition leaders and returns offsets in input order", async (t) => {
  const { fake, client } = await setup(t);
  fake.addTopic("events", 6, 3);
  const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
  const results = await client.produce("events", keys.map((key) => ({ key, body: `body of ${key}`, headers: { source: "test" } })));
  const seen = new Map<number, number>();
  results.forEach((r, i) => {
    assert.equal(r.partition, partitionForKey(Buffer.from(keys[i]!), 6), keys[i]);
    const expected = seen.get(r.partition) ?? 0;
    assert.equal(r.offset, expected, "offsets of one partition are consecutive, in input order");
    seen.set(r.partition, expected + 1);
    const stored = fake.records("events", r.partition)[r.offset]!;
    assert.equal(Buffer.from(stored.key).toString(), keys[i]);
    assert.equal(stored.headers[0]!.key, "source");
    assert.match(stored.id, /^[0-9a-f-]{36}$/, "the client gives each record a UUID");
    assert.ok(stored.producerTimestampMs > 1_600_000_000_000);
  });
  for (const req of fake.requestsOf("Produce")) {
    const leader = (req.request.partition % 3) + 1;
    assert.equal(req.node, leader, "every produce went straight to the partition leader");
  }
  assert.equal(fake.requestsOf("Produce").length, seen.size, "one request per partition");
});

test("records without a key go round-robin; an explicit partition takes them all", async (t) => {
  const { fake, client } = await setup(t, 1);
  fake.addTopic("jobs", 3, 1);
  const results = await client.produce("jobs", Array.from({ length: 6 }, (_, i) => ({ body: `job ${i}` })));
  assert.deepEqual(results.map((r) => r.partition), [0, 1, 2, 0, 1, 2]);
  const pinned = await client.produce("jobs", [{ key: "k", body: "a" }, { body: "b" }], { partition: 2 });
  assert.deepEqual(pinned, [{ partition: 2, offset: 2 }, { partition: 2, offset: 3 }]);
  await assert.rejects(client.produce("jobs", [{ body: "x" }], { partition: 3 }), UnknownPartitionError);
  await assert.rejects(client.produce("jobs", [{ body: "x" }], { partition: -1 }), InvalidArgumentError);
  await assert.rejects(client.produce("jobs", []), InvalidArgumentError);
});

test("NOT_LEADER with a leader hint is followed at once, and the cache learns the new leader", async (t) => {
  const { fake, client } = await setup(t);
  fake.addTopic("t", 1, 3);
  await client.produce("t", [{ body: "one" }]);
  fake.setLeader("t", 0, 3);
  const metadataCalls = fake.requestsOf("Metadata").length;
  const [r] = await client.produce("t", [{ body: "two" }]);
  assert.deepEqual(r, { partition: 0, offset: 1 });
  assert.deepEqual(fake.requestsOf("Produce").map((x) => x.node), [1, 1, 3], "old leader, then the hinted one");
  assert.equal(fake.requestsOf("Metadata").length, metadataCalls, "a hinted redirect needs no metadata refresh");
  await client.produce("t", [{ body: "three" }]);
  assert.equal(fake.requestsOf("Produce").at(-1)!.node, 3, "later requests go to the new leader directly");
});

test("NOT_LEADER without a hint, or no known leader, refreshes metadata and retries", async (t) => {
  const { fake, client } = await setup(t, 3, { retry: { ...FAST_RETRY, attemptsMax: 100 } });
  fake.addTopic("t", 1, 3);
  await client.fetch("t", 0, 0);
  fake.setLeader("t", 0, 0);
  fake.failNext("Fetch", { code: "NOT_LEADER", message: "no leader yet" });
  const metadataCalls = fake.requestsOf("Metadata").length;
  const electLater = setInterval(() => {
    if (fake.requestsOf("Metadata").length >= metadataCalls + 2) fake.setLeader("t", 0, 2);
  }, 1);
  t.after(() => clearInterval(electLater));
  const result = await client.fetch("t", 0, 0);
  assert.equal(result.nextOffset, 0);
  assert.equal(fake.requestsOf("Fetch").at(-1)!.node, 2);
  assert.ok(fake.requestsOf("Metadata").length > metadataCalls + 1, "metadata was refreshed until a leader appeared");
});

test("retries are bounded: the last error surfaces after retry.attemptsMax attempts", async (t) => {
  const { fake, client } = await setup(t, 1, { retry: { ...FAST_RETRY, attemptsMax: 4 } });
  fake.addTopic("t", 1, 1);
  fake.failNext("Produce", { code: "SHUTTING_DOWN", message: "node is shutting down" }, { times: 100 });
  const error = await client.produce("t", [{ body: "x" }]).catch((e: unknown) => e);
  assert.ok(error instanceof Error && (error as { code?: string }).code === "SHUTTING_DOWN", String(error));
  assert.match((error as Error).message, /node is shutting down \(gave up after 4 attempts in \d+ ms\)/);
  assert.equal(fake.requestsOf("Produce").length, 4);
});

test("retries are bounded in time on an injected clock", async (t) => {
  const clock = new ManualClock();
  const retry = { attemptsMax: 1000, backoffInitialMs: 100, backoffMaxMs: 100, deadlineMs: 1_000 };
  const { fake, client } = await setup(t, 1, { clock, retry });
  fake.addTopic("t", 1, 1);
  fake.failNext("Produce", { code: "OVERLOADED" }, { times: 1000 });
  let settled = false;
  const run = client.produce("t", [{ body: "x" }]).finally(() => (settled = true));
  run.catch(() => undefined); // asserted below
  for (let i = 0; i < 2_000 && !settled; i++) {
    await new Promise((r) => setTimeout(r, 1));
    clock.advance(10);
  }
  const error = (await run.catch((e: unknown) => e)) as Error;
  const match = /gave up after (\d+) attempts in (\d+) ms/.exec(error.message);
  assert.ok(match, error.message);
  const attempts = fake.requestsOf("Produce").length;
  assert.equal(Number(match[1]), attempts);
  // Backoffs are 50-100 ms (virtual); the clock also moves while a request is on the wire.
  assert.ok(attempts >= 2 && attempts <= 21, `${attempts} attempts in 1 s of 50-100 ms backoffs`);
  // No attempt starts past the deadline (retry.test.ts checks that exactly); the last one may end after it.
  assert.ok(Number(match[2]) <= 1_500, `gave up at ${match[2]} ms, long past the 1000 ms deadline`);
});

test("a produce timeout is not retried (its outcome is unknown); a fetch timeout is", async (t) => {
  const { fake, client } = await setup(t, 1);
  fake.addTopic("t", 1, 1);
  fake.failNext("Produce", { code: "TIMEOUT", message: "the write did not commit within 10 ms; its outcome is unknown" });
  const error = await client.produce("t", [{ body: "x" }]).catch((e: unknown) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /outcome is unknown/);
  assert.equal(fake.requestsOf("Produce").length, 1);
  fake.failNext("Fetch", { code: "TIMEOUT" });
  assert.equal((await client.fetch("t", 0, 0)).highWatermark, 0);
  assert.equal(fake.requestsOf("Fetch").length, 2);
});

test("the per-attempt timeout cancels a call that does not answer", async (t) => {
  const { fake, client } = await setup(t, 1, { requestTimeoutMs: 150, produceTimeoutMs: 100 });
  fake.addTopic("t", 1, 1);
  fake.failNext("Produce", { delayMs: 2_000 });
  const started = Date.now();
  const error = await client.produce("t", [{ body: "x" }]).catch((e: unknown) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /did not answer within 150 ms/);
  assert.ok(Date.now() - started < 1_500);
});

test("every error code maps back to its class; unknown codes and bare statuses become RpcError or UnavailableError", async (t) => {
  const { fake, client } = await setup(t, 1, { retry: { ...FAST_RETRY, attemptsMax: 1 } });
  fake.addTopic("t", 1, 1);
  const cases: Array<[object, (e: unknown) => boolean]> = [
    [{ code: "NOT_LEADER", leaderId: 7 }, (e) => e instanceof NotLeaderError && e.leaderId === 7],
    [{ code: "PROPOSAL_DROPPED" }, (e) => e instanceof ProposalDroppedError],
    [{ code: "UNKNOWN_PARTITION" }, (e) => e instanceof UnknownPartitionError],
    [{ code: "OFFSET_OUT_OF_RANGE" }, (e) => e instanceof OffsetOutOfRangeError && e.message === "injected OFFSET_OUT_OF_RANGE"],
    [{ code: "INTERNAL", status: 13 }, (e) => e instanceof RpcError && e.code === "INTERNAL"],
    [{ status: 14, noTrailer: true }, (e) => e instanceof UnavailableError],
    [{ status: 12, noTrailer: true }, (e) => e instanceof RpcError && e.code === "UNIMPLEMENTED"],
  ];
  for (const [fault, check] of cases) {
    fake.failNext("Fetch", fault);
    const error = await client.fetch("t", 0, 0).catch((e: unknown) => e);
    assert.ok(check(error), `${JSON.stringify(fault)} gave ${String(error)}`);
  }
  await assert.rejects(client.fetch("t", 0, 5), OffsetOutOfRangeError);
});

test("unknown topics fail at once without produce requests", async (t) => {
  const { fake, client } = await setup(t, 1);
  const error = await client.produce("nope", [{ body: "x" }]).catch((e: unknown) => e);
  assert.ok(error instanceof UnknownTopicError, String(error));
  assert.match(error.message, /raftmq topic create nope/);
  assert.equal(fake.requestsOf("Produce").length, 0);
  assert.equal(fake.requestsOf("Metadata").length, 2, "one cached view, one refresh");
});

test("fetch returns records with key, headers and body; a long poll wakes on new records", async (t) => {
  const { fake, client } = await setup(t, 1);
  fake.addTopic("t", 1, 1);
  await client.produce("t", [{ key: "k", body: Buffer.from([0, 1, 2]), headers: [["h", "1"], ["h", "2"]], id: "id-1", producerTimestampMs: 5 }, { body: "b" }]);
  const result = await client.fetch("t", 0, 0);
  assert.equal(result.records.length, 2);
  const [a, b] = result.records;
  assert.deepEqual({ ...a!, brokerTimestampMs: 0 }, {
    partition: 0, offset: 0, key: Buffer.from("k"), headers: [{ key: "h", value: Buffer.from("1") }, { key: "h", value: Buffer.from("2") }],
    body: Buffer.from([0, 1, 2]), id: "id-1", producerTimestampMs: 5, brokerTimestampMs: 0,
    correlationId: "", replyTo: "", contentType: "", ttlMs: 0, priority: 0, expired: false,
  });
  assert.equal(b!.key, null);
  assert.equal(result.nextOffset, 2);
  assert.equal((await client.fetch("t", 0, 1)).records[0]!.body.toString(), "b");

  const polling = client.fetch("t", 0, 2, { maxWaitMs: 5_000 });
  setTimeout(() => void client.produce("t", [{ body: "late" }]), 50);
  const woke = await polling;
  assert.equal(woke.records[0]!.body.toString(), "late");
});

test("metadata falls over from a dead bootstrap broker to a live one; one channel per address", async (t) => {
  const fake = await FakeCluster.start({ nodes: 2 });
  const dead = await FakeCluster.start({ nodes: 1 });
  const deadAddress = dead.brokers()[0]!;
  await dead.close();
  const client = connect({ brokers: [deadAddress, fake.brokers()[1]!], retry: FAST_RETRY });
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  const md = await client.metadata();
  assert.deepEqual(md.nodes.map((n) => n.id), [1, 2]);
  assert.equal(md.nodeId, 2);
  fake.addTopic("t", 2, 2);
  for (let i = 0; i < 5; i++) await client.produce("t", [{ body: "x" }, { body: "y" }]);
  const channels = (client as unknown as { pool: { clients: Map<string, unknown> } }).pool.clients;
  assert.deepEqual([...channels.keys()].sort(), [deadAddress, ...fake.brokers()].sort());
});

test("a request to a stopped leader is retried elsewhere after the metadata says so", async (t) => {
  const { fake, client } = await setup(t, 2, { retry: { ...FAST_RETRY, attemptsMax: 100 } });
  fake.addTopic("t", 1, 2);
  fake.setLeader("t", 0, 2);
  await client.produce("t", [{ body: "a" }]);
  fake.stopNode(2);
  setTimeout(() => fake.setLeader("t", 0, 1), 30);
  const [r] = await client.produce("t", [{ body: "b" }]);
  assert.deepEqual(r, { partition: 0, offset: 1 });
});

test("close() stops pending retries and rejects later calls", async (t) => {
  const { fake, client } = await setup(t, 1, { retry: { attemptsMax: 100, backoffInitialMs: 10_000, backoffMaxMs: 10_000, deadlineMs: 60_000 } });
  fake.addTopic("t", 1, 1);
  fake.failNext("Produce", { code: "UNAVAILABLE" }, { times: 100 });
  const pending = client.produce("t", [{ body: "x" }]);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  await client.close();
  await assert.rejects(pending, ShuttingDownError);
  assert.ok(Date.now() - started < 1_000);
  await assert.rejects(client.metadata(), ShuttingDownError);
});

test("client options are validated with errors naming the option", () => {
  assert.throws(() => connect({ brokers: [] }), /brokers must name at least one/);
  assert.throws(() => connect({ brokers: ["localhost"] }), /"localhost" is not host:port/);
  assert.throws(() => connect({ brokers: ["a:1"], produceTimeoutMs: 20_000 }), /produceTimeoutMs \(20000\) must be positive and below requestTimeoutMs/);
  assert.throws(() => connect({ brokers: ["a:1"], retry: { attemptsMax: 0 } }), /retry.attemptsMax/);
});

/**
 * The broker's data plane on an in-process cluster (memory stores, loopback transport, real
 * controller and partition groups; no gRPC): produce and fetch, long polls, input errors,
 * NOT_LEADER on followers, and retention.
 *
 * Node randomness (election timeouts) comes from BROKER_TEST_SEED, printed first.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError } from "../lib/errors.js";
import { CONTROLLER_GROUP } from "../controller/metadata.js";
import { recordSizeBytes, type ProducedRecord } from "./record-batch.js";
import { GatedReads, InProcessCluster, addressOfNode, retrying, waitFor } from "./testing/in-process-cluster.js";

const SEED = Number(process.env["BROKER_TEST_SEED"] ?? 11);
console.log(`broker tests: seed ${SEED} (replay with BROKER_TEST_SEED=${SEED})`);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function rec(id: string, body: string | Uint8Array = id, extra: Partial<ProducedRecord> = {}): ProducedRecord {
  return { id, key: new Uint8Array(), headers: [], body: typeof body === "string" ? enc(body) : body, producerTimestampMs: 1_000, ...extra };
}

/** Asserts a BrokerError with `code` whose message matches `message`. */
function brokerError(code: string, message?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BrokerError, `expected a BrokerError ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

const TIMEOUT_MS = 3_000;

describe("single node", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 1, seed: SEED });
    await c.createTopic({ name: "events", partitions: 2, maxRecordBytes: 1000 });
  });
  after(async () => {
    await c.close();
  });
  const broker = () => c.nodes[0]!.broker;

  test("produce answers with consecutive offsets per partition", async () => {
    await c.createTopic({ name: "seq" });
    const a = await broker().produce("seq", 0, [rec("a"), rec("b"), rec("c")], TIMEOUT_MS);
    assert.equal(a.baseOffset, 0);
    assert.equal(a.count, 3);
    const b = await broker().produce("seq", 0, [rec("d")], TIMEOUT_MS);
    assert.equal(b.baseOffset, 3);
    const both = await Promise.all([broker().produce("seq", 0, [rec("e"), rec("f")], TIMEOUT_MS), broker().produce("seq", 0, [rec("g")], TIMEOUT_MS)]);
    const ranges = both.map((r) => [r.baseOffset, r.baseOffset + r.count - 1]).sort((x, y) => x[0]! - y[0]!);
    assert.equal(ranges[0]![0], 4);
    assert.equal(ranges[1]![0], ranges[0]![1]! + 1, `concurrent batches overlap or leave a gap: ${JSON.stringify(ranges)}`);
    assert.equal(ranges[1]![1], 6);
    assert.ok(Math.abs(a.brokerTimestampMs - c.clock.wallMs()) < 5_000, "the broker stamps records with its wall clock");
  });

  test("fetch returns what was produced, in order, with every field", async () => {
    await c.createTopic({ name: "roundtrip" });
    const records = [
      rec("r1", "hello", { key: enc("k1"), headers: [{ key: "h", value: enc("v") }], producerTimestampMs: 123 }),
      rec("r2", ""),
      rec("r3", new Uint8Array([0, 255, 7])),
    ];
    const produced = await broker().produce("roundtrip", 0, records, TIMEOUT_MS);
    const f = await broker().fetch("roundtrip", 0, 0, 1 << 20, 0);
    assert.deepEqual(f.records.map((r) => r.offset), [0, 1, 2]);
    assert.deepEqual(f.records.map((r) => r.id), ["r1", "r2", "r3"]);
    assert.equal(dec(f.records[0]!.body), "hello");
    assert.deepEqual([...f.records[0]!.key], [...enc("k1")]);
    assert.deepEqual(f.records[0]!.headers.map((h) => [h.key, dec(h.value)]), [["h", "v"]]);
    assert.equal(f.records[0]!.producerTimestampMs, 123);
    assert.deepEqual([...f.records[2]!.body], [0, 255, 7]);
    for (const r of f.records) assert.equal(r.brokerTimestampMs, produced.brokerTimestampMs);
    assert.equal(f.highWatermark, 3);
    assert.equal(f.logStartOffset, 0);
    assert.equal(f.nextOffset, 3);
    const mid = await broker().fetch("roundtrip", 0, 2, 1 << 20, 0);
    assert.deepEqual(mid.records.map((r) => r.id), ["r3"]);
  });

  test("fetch honours maxBytes (at least one record); paging with nextOffset sees every record once", async () => {
    await c.createTopic({ name: "paging" });
    const body = "x".repeat(100);
    for (let b = 0; b < 4; b++) await broker().produce("paging", 0, Array.from({ length: 5 }, (_, i) => rec(`m${b * 5 + i}`, body)), TIMEOUT_MS);
    const small = await broker().fetch("paging", 0, 0, 250, 0);
    assert.deepEqual(small.records.map((r) => r.offset), [0, 1], "100 + 100 <= 250 < 300");
    assert.equal(small.nextOffset, 2);
    assert.equal(small.highWatermark, 20);
    const one = await broker().fetch("paging", 0, 7, 1, 0);
    assert.deepEqual(one.records.map((r) => r.offset), [7], "at least one record even if it exceeds maxBytes");
    const seen: string[] = [];
    for (let offset = 0; offset < 20; ) {
      const f = await broker().fetch("paging", 0, offset, 333, 0);
      assert.ok(f.records.length > 0, `no progress at offset ${offset}`);
      assert.equal(f.records[0]!.offset, offset);
      seen.push(...f.records.map((r) => r.id));
      offset = f.nextOffset;
    }
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  test("fetch at the high watermark with no wait returns nothing at once", async () => {
    const hw = (await broker().fetch("events", 1, 0, 1, 0)).highWatermark;
    const f = await broker().fetch("events", 1, hw, 1000, 0);
    assert.deepEqual(f.records, []);
    assert.equal(f.nextOffset, hw);
  });

  test("a long-poll fetch wakes when a record arrives", async () => {
    await c.createTopic({ name: "poll" });
    const started = performance.now();
    const pending = broker().fetch("poll", 0, 0, 1000, 5_000);
    await new Promise((r) => setTimeout(r, 30));
    await broker().produce("poll", 0, [rec("late")], TIMEOUT_MS);
    const f = await pending;
    const elapsed = performance.now() - started;
    assert.deepEqual(f.records.map((r) => r.id), ["late"]);
    assert.equal(f.nextOffset, 1);
    assert.ok(elapsed < 2_000, `the poll took ${elapsed} ms; it should wake on the record`);
  });

  test("a long-poll fetch returns empty after its wait when nothing arrives", async () => {
    await c.createTopic({ name: "quiet" });
    const started = performance.now();
    const f = await broker().fetch("quiet", 0, 0, 1000, 150);
    const elapsed = performance.now() - started;
    assert.deepEqual(f.records, []);
    assert.equal(f.nextOffset, 0);
    assert.ok(elapsed >= 140, `returned after ${elapsed} ms, before the wait`);
    assert.ok(elapsed < 1_500, `returned after ${elapsed} ms`);
  });

  test("a long poll is not woken early by writes to another partition", async () => {
    const hw = (await broker().fetch("events", 0, 0, 1, 0)).highWatermark;
    const pending = broker().fetch("events", 0, hw, 1000, 200);
    await broker().produce("events", 1, [rec("elsewhere")], TIMEOUT_MS);
    const f = await pending;
    assert.deepEqual(f.records, []);
  });

  test("unknown topic is UNKNOWN_TOPIC; a missing name is INVALID_ARGUMENT", async () => {
    await assert.rejects(broker().produce("nope", 0, [rec("a")], TIMEOUT_MS), brokerError("UNKNOWN_TOPIC", /topic "nope" does not exist/));
    await assert.rejects(broker().fetch("nope", 0, 0, 1000, 0), brokerError("UNKNOWN_TOPIC"));
    await assert.rejects(broker().produce("", 0, [rec("a")], TIMEOUT_MS), brokerError("INVALID_ARGUMENT", /topic name is required/));
  });

  test("a partition the topic does not have is UNKNOWN_PARTITION, naming the valid range", async () => {
    for (const p of [2, -1, 1.5, 1e9]) {
      await assert.rejects(broker().produce("events", p, [rec("a")], TIMEOUT_MS), brokerError("UNKNOWN_PARTITION", /has partitions 0 to 1; there is no partition/), `partition ${p}`);
      await assert.rejects(broker().fetch("events", p, 0, 1000, 0), brokerError("UNKNOWN_PARTITION"), `partition ${p}`);
    }
  });

  test("an empty batch is INVALID_ARGUMENT", async () => {
    await assert.rejects(broker().produce("events", 0, [], TIMEOUT_MS), brokerError("INVALID_ARGUMENT", /at least one record/));
  });

  test("a record over the topic's max record bytes is RECORD_TOO_LARGE; one exactly at it is accepted", async () => {
    const overhead = recordSizeBytes(rec("big", ""));
    const atLimit = rec("big", new Uint8Array(1000 - overhead));
    assert.equal(recordSizeBytes(atLimit), 1000);
    await broker().produce("events", 0, [atLimit], TIMEOUT_MS);
    const over = rec("big", new Uint8Array(1001 - overhead));
    await assert.rejects(broker().produce("events", 0, [rec("ok"), over], TIMEOUT_MS), brokerError("RECORD_TOO_LARGE", /record 1 is 1001 bytes; topic "events" accepts records up to 1000 bytes/));
  });

  test("a header key longer than the format can hold is rejected as a bad request, not an internal error", async () => {
    // The batch format stores header keys with a u16 length; validation must catch what encodeBatch cannot write.
    await c.createTopic({ name: "wide", maxRecordBytes: 1 << 20 });
    const r = rec("h", "x", { headers: [{ key: "k".repeat(70_000), value: new Uint8Array() }] });
    await assert.rejects(broker().produce("wide", 0, [r], TIMEOUT_MS), brokerError("INVALID_ARGUMENT"));
  });

  test("a record id longer than the format can hold is rejected as a bad request, not an internal error", async () => {
    await c.createTopic({ name: "wide-id", maxRecordBytes: 1 << 20 });
    await assert.rejects(broker().produce("wide-id", 0, [rec("i".repeat(70_000), "x")], TIMEOUT_MS), brokerError("INVALID_ARGUMENT"));
  });

  test("a fetch offset beyond the high watermark, negative or fractional is OFFSET_OUT_OF_RANGE", async () => {
    await c.createTopic({ name: "range" });
    await broker().produce("range", 0, [rec("a"), rec("b")], TIMEOUT_MS);
    for (const offset of [3, -1, 0.5, Number.NaN, 2 ** 60]) {
      await assert.rejects(broker().fetch("range", 0, offset, 1000, 0), brokerError("OFFSET_OUT_OF_RANGE", /valid offsets are 0 to 2/), `offset ${offset}`);
    }
    assert.equal((await broker().fetch("range", 0, 2, 1000, 0)).records.length, 0, "the high watermark itself is valid");
  });

  test("a long poll on a topic deleted meanwhile answers UNKNOWN_TOPIC, not 'no leader, retry shortly'", async () => {
    await c.createTopic({ name: "doomed" });
    const pending = broker().fetch("doomed", 0, 0, 1000, 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    await c.nodes[0]!.frontend.deleteTopic("doomed");
    const e = await pending;
    brokerError("UNKNOWN_TOPIC", /topic "doomed" does not exist/)(e);
  });

  test("describe() shows this node as leader and in sync, with the offsets", async () => {
    await c.createTopic({ name: "described" });
    await broker().produce("described", 0, [rec("a"), rec("b")], TIMEOUT_MS);
    const [view] = broker().describe(broker().topic("described"));
    assert.equal(view!.leader, 1);
    assert.ok(view!.leaderTerm >= 1);
    assert.deepEqual(view!.inSync, [1]);
    assert.equal(view!.highWatermark, 2);
    assert.equal(view!.logStartOffset, 0);
  });
});

describe("retention", () => {
  let c: InProcessCluster;
  const gate = new GatedReads();
  before(async () => {
    c = await InProcessCluster.start({ nodes: 1, seed: SEED + 1, brokerStore: (store) => gate.wrap(store) });
  });
  after(async () => {
    await c.close();
  });
  const broker = () => c.nodes[0]!.broker;

  test("enforceRetention compacts batches older than the retention and moves the log start; fetch below it is OFFSET_OUT_OF_RANGE", async () => {
    await c.createTopic({ name: "short", retentionMs: 60_000 });
    await c.createTopic({ name: "long" }); // default retention: 7 days
    await broker().produce("short", 0, [rec("old-0"), rec("old-1")], TIMEOUT_MS);
    await broker().produce("short", 0, [rec("old-2")], TIMEOUT_MS);
    await broker().produce("long", 0, [rec("kept")], TIMEOUT_MS);
    assert.equal(await broker().enforceRetention(), 0, "nothing is old yet");

    c.clock.shiftWall(120_000);
    await broker().produce("short", 0, [rec("new-3")], TIMEOUT_MS);
    assert.equal(await broker().enforceRetention(), 1, "only the short-retention partition is compacted");

    const f = await broker().fetch("short", 0, 3, 1000, 0);
    assert.equal(f.logStartOffset, 3);
    assert.equal(f.highWatermark, 4);
    assert.deepEqual(f.records.map((r) => r.id), ["new-3"]);
    for (const offset of [0, 2]) {
      await assert.rejects(broker().fetch("short", 0, offset, 1000, 0), brokerError("OFFSET_OUT_OF_RANGE", /valid offsets are 3 to 4/));
    }
    const [view] = broker().describe(broker().topic("short"));
    assert.equal(view!.logStartOffset, 3);
    assert.equal((await broker().fetch("long", 0, 0, 1000, 0)).records.length, 1, "the other topic keeps its records");
    assert.equal(await broker().enforceRetention(), 0, "a second pass finds nothing more");

    const next = await broker().produce("short", 0, [rec("new-4")], TIMEOUT_MS);
    assert.equal(next.baseOffset, 4, "offsets continue after compaction");
    assert.deepEqual((await broker().fetch("short", 0, 3, 1000, 0)).records.map((r) => r.id), ["new-3", "new-4"]);
  });

  test("when every batch is expired the log start reaches the high watermark and fetch there still works", async () => {
    await c.createTopic({ name: "all-old", retentionMs: 1_000 });
    await broker().produce("all-old", 0, [rec("a"), rec("b")], TIMEOUT_MS);
    c.clock.shiftWall(5_000);
    assert.ok((await broker().enforceRetention()) >= 1);
    const f = await broker().fetch("all-old", 0, 2, 1000, 0);
    assert.equal(f.logStartOffset, 2);
    assert.equal(f.highWatermark, 2);
    assert.deepEqual(f.records, []);
    await assert.rejects(broker().fetch("all-old", 0, 1, 1000, 0), brokerError("OFFSET_OUT_OF_RANGE"));
  });

  test("a fetch whose read overlaps a compaction gets OFFSET_OUT_OF_RANGE, never an internal error", async () => {
    await c.createTopic({ name: "race", retentionMs: 1_000 });
    await broker().produce("race", 0, [rec("a")], TIMEOUT_MS);
    await broker().produce("race", 0, [rec("b")], TIMEOUT_MS);
    c.clock.shiftWall(5_000);
    await broker().produce("race", 0, [rec("c")], TIMEOUT_MS);
    // The fetch passes the offset check (log start 0), then its read is held up like a slow disk
    // read while retention compacts the entries it is about to read.
    gate.close();
    const fetch = broker().fetch("race", 0, 0, 1000, 0).then(
      (f) => ({ ok: true as const, ids: f.records.map((r) => r.id) }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    await waitFor("the fetch to reach the store", () => gate.waiting === 1 || undefined);
    assert.ok((await broker().enforceRetention()) >= 1);
    gate.open();
    const result = await fetch;
    if (result.ok) assert.deepEqual(result.ids, ["a", "b", "c"], "records, if any, must be the right ones");
    else brokerError("OFFSET_OUT_OF_RANGE", /valid offsets are 2 to 3/)(result.e);
  });
});

describe("restart", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 1, seed: SEED + 3 });
  });
  after(async () => {
    await c.close();
  });

  test("after a restart the partition rebuilds the same offsets and log start from the stored log and snapshot", async () => {
    await c.createTopic({ name: "plain" });
    await c.createTopic({ name: "compacted", retentionMs: 60_000 });
    const b1 = c.nodes[0]!.broker;
    await b1.produce("plain", 0, [rec("p0"), rec("p1")], TIMEOUT_MS);
    await b1.produce("plain", 0, [rec("p2")], TIMEOUT_MS);
    await b1.produce("compacted", 0, [rec("c0"), rec("c1")], TIMEOUT_MS);
    await b1.produce("compacted", 0, [rec("c2")], TIMEOUT_MS);
    c.clock.shiftWall(120_000);
    await b1.produce("compacted", 0, [rec("c3")], TIMEOUT_MS);
    assert.equal(await b1.enforceRetention(), 1);
    await b1.produce("compacted", 0, [rec("c4"), rec("c5")], TIMEOUT_MS);

    const node = await c.restart(1);
    await c.partitionLeader("plain");
    await c.partitionLeader("compacted");
    const plain = await node.broker.fetch("plain", 0, 0, 1 << 20, 0);
    assert.deepEqual(plain.records.map((r) => `${r.offset}:${r.id}`), ["0:p0", "1:p1", "2:p2"]);
    const compacted = await node.broker.fetch("compacted", 0, 3, 1 << 20, 0);
    assert.equal(compacted.logStartOffset, 3);
    assert.equal(compacted.highWatermark, 6);
    assert.deepEqual(compacted.records.map((r) => `${r.offset}:${r.id}`), ["3:c3", "4:c4", "5:c5"]);
    await assert.rejects(node.broker.fetch("compacted", 0, 2, 1000, 0), brokerError("OFFSET_OUT_OF_RANGE"));
    const next = await retrying(() => node.broker.produce("compacted", 0, [rec("c6")], TIMEOUT_MS));
    assert.equal(next.baseOffset, 6, "offsets continue where they were");
  });
});

describe("three nodes", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, seed: SEED + 2 });
  });
  after(async () => {
    await c.close();
  });

  test("produce on the leader is replicated: every replica assigns the same offsets", async () => {
    const topic = await c.createTopic({ name: "replicated", replicationFactor: 3 });
    const leader = await c.partitionLeader("replicated");
    await leader.broker.produce("replicated", 0, [rec("a"), rec("b")], TIMEOUT_MS);
    const r = await leader.broker.produce("replicated", 0, [rec("c")], TIMEOUT_MS);
    assert.equal(r.baseOffset, 2);
    const group = topic.partitions[0]!.group;
    for (const n of c.nodes) {
      await waitFor(`node ${n.id} applies the writes`, () => n.partitions.state(group)?.nextOffset === 3 || undefined);
      assert.equal(n.partitions.state(group)!.baseOffsetAt(n.partitions.state(group)!.indexOfOffset(2)!), 2);
    }
  });

  test("produce and fetch on a follower are NOT_LEADER with the leader's id and address", async () => {
    const topic = await c.createTopic({ name: "led", replicationFactor: 3 });
    const leader = await c.partitionLeader("led");
    const group = topic.partitions[0]!.group;
    const follower = c.nodes.find((n) => n.id !== leader.id)!;
    await waitFor("the follower knows the leader", () => follower.multiraft.status(group)?.lead === leader.id || undefined);
    const isNotLeader = (e: unknown): boolean => {
      brokerError("NOT_LEADER", new RegExp(`the leader is node ${leader.id} at ${addressOfNode(leader.id).replace(/\./g, "\\.")}`))(e);
      assert.equal((e as BrokerError).leaderId, leader.id);
      assert.equal((e as BrokerError).leaderAddress, addressOfNode(leader.id));
      return true;
    };
    await assert.rejects(follower.broker.produce("led", 0, [rec("a")], TIMEOUT_MS), isNotLeader);
    await assert.rejects(follower.broker.fetch("led", 0, 0, 1000, 0), isNotLeader);
  });

  test("topic creation on a controller follower is NOT_LEADER naming the controller leader", async () => {
    const controller = await c.leaderOf(CONTROLLER_GROUP);
    const follower = c.nodes.find((n) => n.id !== controller.id)!;
    await waitFor("the follower knows the controller", () => follower.frontend.leader() === controller.id || undefined);
    await assert.rejects(follower.frontend.createTopic({ name: "from-follower" }), (e: unknown) => {
      brokerError("NOT_LEADER")(e);
      assert.equal((e as BrokerError).leaderId, controller.id);
      assert.equal((e as BrokerError).leaderAddress, addressOfNode(controller.id));
      return true;
    });
  });

  test("a follower cut off across a compaction catches up by snapshot with the same offsets", async () => {
    const topic = await c.createTopic({ name: "lagging", replicationFactor: 3, retentionMs: 1_000 });
    const group = topic.partitions[0]!.group;
    const leader = await c.partitionLeader("lagging");
    const lagging = c.nodes.find((n) => n.id !== leader.id && n.id !== 1) ?? c.nodes.find((n) => n.id !== leader.id)!;
    await leader.broker.produce("lagging", 0, [rec("a")], TIMEOUT_MS);
    await waitFor("all replicas apply the first write", () => c.nodes.every((n) => n.partitions.state(group)?.nextOffset === 1) || undefined);

    c.hub.isolate(lagging.id);
    await retrying(() => leader.broker.produce("lagging", 0, [rec("b"), rec("c")], TIMEOUT_MS));
    c.clock.shiftWall(10_000);
    await retrying(() => leader.broker.produce("lagging", 0, [rec("d")], TIMEOUT_MS));
    assert.ok((await leader.broker.enforceRetention()) >= 1, "the leader compacts");
    const leaderState = leader.partitions.state(group)!;
    assert.equal(leaderState.logStartOffset, 3);
    await retrying(() => leader.broker.produce("lagging", 0, [rec("e")], TIMEOUT_MS));

    c.hub.isolate(lagging.id, false);
    const state = lagging.partitions.state(group)!;
    await waitFor(`node ${lagging.id} catches up`, () => state.nextOffset === 5 || undefined);
    assert.ok(state.logStartOffset >= 3, `log start ${state.logStartOffset}: the snapshot replaced the missing batches`);
    assert.equal(state.indexOfOffset(4), leaderState.indexOfOffset(4), "offset 4 is at the same Raft index on both");
    const snap = lagging.store.storage(group).snapshot();
    assert.ok(snap.metadata.index > 1, "the lagging replica installed a snapshot");
    assert.deepEqual([...snap.metadata.confState.voters].sort(), [1, 2, 3]);
  });
});

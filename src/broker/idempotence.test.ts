/**
 * Producer-built batches and idempotent producers on an in-process cluster (memory stores,
 * loopback transport, real controller and partition groups; no gRPC): compressed batches stored
 * as received and read back raw or decoded, limits on uncompressed records, malformed batches,
 * record fields and TTL expiry on fetch; retried batches answering the original offsets — also at
 * a new leader and after a restart from a snapshot — with no duplicate in the log; zombie fencing
 * after a new InitProducer; out-of-order sequences.
 *
 * Node randomness (election timeouts) comes from BROKER_TEST_SEED, printed first.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError } from "../lib/errors.js";
import { CONTROLLER_GROUP } from "../controller/metadata.js";
import { CODEC_GZIP, CODEC_LZ4, CODEC_NONE, decodeBatch, encodeBatch, readBatchHeader, type BatchProducer, type ProducedRecord } from "../format/index.js";
import { InProcessCluster, retrying, waitFor, type TestNode } from "./testing/in-process-cluster.js";

const SEED = Number(process.env["BROKER_TEST_SEED"] ?? 11);
console.log(`idempotence tests: seed ${SEED} (replay with BROKER_TEST_SEED=${SEED})`);

const TIMEOUT_MS = 3_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function rec(id: string, body = `body of ${id} `.repeat(10), extra: Partial<ProducedRecord> = {}): ProducedRecord {
  return { id, key: new Uint8Array(), headers: [], body: enc(body), producerTimestampMs: 1_000, ...extra };
}

function brokerError(code: string, message?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BrokerError, `expected a BrokerError ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

/** A producer-built batch of `ids`, as a client would send it. */
function batchOf(ids: readonly string[], producer?: BatchProducer, codec = CODEC_LZ4): Uint8Array {
  return encodeBatch(ids.map((id) => rec(id)), 0, { codec, ...(producer === undefined ? {} : { producer }) });
}

async function ids(node: TestNode, topic: string, partition = 0): Promise<string[]> {
  return (await node.broker.fetch(topic, partition, 0, 1 << 24, 0)).records.map((r) => r.id);
}

describe("single node: producer-built batches", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 1, seed: SEED });
  });
  after(async () => {
    await c.close();
  });
  const broker = () => c.nodes[0]!.broker;

  test("compressed batches are stored as received and read back raw or decoded", async () => {
    await c.createTopic({ name: "codecs" });
    const sent: Uint8Array[] = [];
    for (const [k, codec] of [CODEC_NONE, CODEC_GZIP, CODEC_LZ4].entries()) {
      const batch = batchOf([`c${k}a`, `c${k}b`], undefined, codec);
      sent.push(Uint8Array.from(batch));
      const r = await broker().produceBatch("codecs", 0, batch, TIMEOUT_MS);
      assert.deepEqual([r.baseOffset, r.count, r.duplicate], [2 * k, 2, false]);
    }
    const raw = await broker().fetch("codecs", 0, 0, 1 << 20, 0, { rawBatches: true });
    assert.deepEqual(raw.batches.map((b) => [b.baseOffset, b.count, readBatchHeader(b.data)!.codec]), [[0, 2, CODEC_NONE], [2, 2, CODEC_GZIP], [4, 2, CODEC_LZ4]]);
    raw.batches.forEach((b, k) => {
      // Byte for byte what the producer sent, except the broker timestamp the leader stamped in.
      assert.deepEqual(Buffer.from(b.data).subarray(10), Buffer.from(sent[k]!).subarray(10), `batch ${k}`);
      assert.ok(readBatchHeader(b.data)!.brokerTimestampMs > 0);
    });
    assert.equal(raw.records.length, 0);
    assert.equal(raw.nextOffset, 6);
    assert.deepEqual(await ids(c.nodes[0]!, "codecs"), ["c0a", "c0b", "c1a", "c1b", "c2a", "c2b"]);
    const fromMiddle = await broker().fetch("codecs", 0, 3, 1 << 20, 0, { rawBatches: true });
    assert.equal(fromMiddle.batches[0]!.baseOffset, 2, "a raw fetch starts with the batch holding the offset");
    assert.deepEqual(decodeBatch(fromMiddle.batches[0]!.data, 2).map((r) => r.offset), [2, 3]);
  });

  test("the topic's max record size applies to uncompressed records; malformed batches are refused", async () => {
    await c.createTopic({ name: "limits", maxRecordBytes: 500 });
    const big = encodeBatch([rec("big", "x".repeat(2_000))], 0, { codec: CODEC_GZIP });
    assert.ok(big.byteLength < 500, "compressed it would fit");
    await assert.rejects(broker().produceBatch("limits", 0, big, TIMEOUT_MS), brokerError("RECORD_TOO_LARGE", /up to 500 bytes/));
    const damaged = Buffer.from(batchOf(["a"]));
    damaged[damaged.byteLength - 1] = damaged[damaged.byteLength - 1]! ^ 0xff;
    await assert.rejects(broker().produceBatch("limits", 0, damaged, TIMEOUT_MS), brokerError("INVALID_ARGUMENT", /malformed record batch: the batch checksum does not match/));
    await assert.rejects(broker().produceBatch("limits", 0, new Uint8Array([1, 2, 3]), TIMEOUT_MS), brokerError("INVALID_ARGUMENT", /malformed record batch/));
    assert.equal((await broker().fetch("limits", 0, 0, 1000, 0)).highWatermark, 0, "nothing was stored");
  });

  test("record fields travel; expired records are skipped by fetch, or returned marked", async () => {
    await c.createTopic({ name: "ttl" });
    const records = [
      rec("short", "s", { ttlMs: 1_000, correlationId: "c-1", replyTo: "inbox.1", contentType: "text/plain", priority: 7 }),
      rec("forever", "f"),
      rec("long", "l", { ttlMs: 3_600_000 }),
    ];
    await broker().produceBatch("ttl", 0, encodeBatch(records, 0, { codec: CODEC_LZ4 }), TIMEOUT_MS);
    const fresh = await broker().fetch("ttl", 0, 0, 1 << 20, 0);
    const first = fresh.records[0]!;
    assert.deepEqual([first.correlationId, first.replyTo, first.contentType, first.ttlMs, first.priority, first.expired], ["c-1", "inbox.1", "text/plain", 1_000, 7, false]);
    c.clock.shiftWall(5_000);
    const later = await broker().fetch("ttl", 0, 0, 1 << 20, 0);
    assert.deepEqual(later.records.map((r) => r.id), ["forever", "long"], "the expired record is skipped");
    assert.equal(later.nextOffset, 3);
    const all = await broker().fetch("ttl", 0, 0, 1 << 20, 0, { includeExpired: true });
    assert.deepEqual(all.records.map((r) => [r.id, r.expired]), [["short", true], ["forever", false], ["long", false]]);
    const onlyExpired = await broker().fetch("ttl", 0, 0, 1, 0);
    assert.deepEqual([onlyExpired.records.length, onlyExpired.nextOffset], [0, 1], "a page of only expired records moves next offset on");
  });
});

describe("three nodes: idempotent producers", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, seed: SEED + 5 });
  });
  after(async () => {
    await c.close();
  });
  const controller = async () => (await c.leaderOf(CONTROLLER_GROUP)).frontend;

  test("InitProducer: anonymous producers get fresh ids; a name keeps its id and bumps its epoch", async () => {
    const f = await controller();
    const a = await f.initProducer("");
    const b = await f.initProducer("");
    assert.notEqual(a.producerId, b.producerId);
    const s1 = await f.initProducer("billing");
    const s2 = await f.initProducer("billing");
    assert.deepEqual([s2.producerId, s2.producerEpoch], [s1.producerId, s1.producerEpoch + 1]);
    await assert.rejects(f.initProducer("bad\u0001name"), brokerError("INVALID_ARGUMENT"));
    for (const n of c.nodes) await waitFor(`node ${n.id} learns the epoch`, () => n.metadata.producerEpoch(s1.producerId) === s2.producerEpoch || undefined);
  });

  test("a retried batch answers the original offsets and writes nothing, also at a new leader", async () => {
    const topic = await c.createTopic({ name: "retry", replicationFactor: 3 });
    const group = topic.partitions[0]!.group;
    const { producerId, producerEpoch } = await (await controller()).initProducer("");
    const leader = await c.partitionLeader("retry");
    const first = batchOf(["a", "b", "c"], { producerId, producerEpoch, baseSequence: 0 });
    const r1 = await leader.broker.produceBatch("retry", 0, Uint8Array.from(first), TIMEOUT_MS);
    assert.deepEqual([r1.baseOffset, r1.count, r1.duplicate], [0, 3, false]);
    const again = await leader.broker.produceBatch("retry", 0, Uint8Array.from(first), TIMEOUT_MS);
    assert.deepEqual([again.baseOffset, again.count, again.duplicate, again.brokerTimestampMs], [0, 3, true, r1.brokerTimestampMs]);
    // A retry that races its original: both are proposed, the second is a duplicate when applied.
    const second = batchOf(["d"], { producerId, producerEpoch, baseSequence: 3 });
    const [x, y] = await Promise.all([
      leader.broker.produceBatch("retry", 0, Uint8Array.from(second), TIMEOUT_MS),
      leader.broker.produceBatch("retry", 0, Uint8Array.from(second), TIMEOUT_MS),
    ]);
    assert.deepEqual([x.baseOffset, y.baseOffset], [3, 3]);
    assert.deepEqual([x.duplicate, y.duplicate].sort(), [false, true]);

    // The leader goes away; the retry reaches the new leader, which knows the batch from the log.
    const next = c.nodes.find((n) => n.id !== leader.id)!;
    await waitFor("the other replica applies everything", () => next.partitions.state(group)?.nextOffset === 4 || undefined);
    leader.multiraft.transferLeadership(group, next.id);
    const newLeader = await waitFor("a new leader", () => c.nodes.find((n) => n.id !== leader.id && n.multiraft.status(group)?.role === "leader"));
    const atNew = await retrying(() => newLeader.broker.produceBatch("retry", 0, Uint8Array.from(second), TIMEOUT_MS));
    assert.deepEqual([atNew.baseOffset, atNew.duplicate], [3, true]);
    const third = await retrying(() => newLeader.broker.produceBatch("retry", 0, batchOf(["e"], { producerId, producerEpoch, baseSequence: 4 }), TIMEOUT_MS));
    assert.deepEqual([third.baseOffset, third.duplicate], [4, false]);
    assert.deepEqual(await ids(newLeader, "retry"), ["a", "b", "c", "d", "e"], "every record exactly once");
  });

  test("a sequence gap is rejected OUT_OF_ORDER_SEQUENCE and writes nothing", async () => {
    await c.createTopic({ name: "gap", replicationFactor: 3 });
    const { producerId, producerEpoch } = await (await controller()).initProducer("");
    const leader = await c.partitionLeader("gap");
    await leader.broker.produceBatch("gap", 0, batchOf(["a"], { producerId, producerEpoch, baseSequence: 0 }), TIMEOUT_MS);
    await assert.rejects(leader.broker.produceBatch("gap", 0, batchOf(["c"], { producerId, producerEpoch, baseSequence: 2 }), TIMEOUT_MS), brokerError("OUT_OF_ORDER_SEQUENCE", /expected sequence 1, got 2/));
    assert.deepEqual(await ids(leader, "gap"), ["a"]);
  });

  test("a zombie is fenced after a new InitProducer of its name: where the new epoch wrote, and where it did not yet", async () => {
    await c.createTopic({ name: "zombie", partitions: 2, replicationFactor: 3 });
    const f = await controller();
    const old = await f.initProducer("ingest");
    const l0 = await c.partitionLeader("zombie", 0);
    const l1 = await c.partitionLeader("zombie", 1);
    await l0.broker.produceBatch("zombie", 0, batchOf(["old-0"], { ...old, baseSequence: 0 }), TIMEOUT_MS);
    await l1.broker.produceBatch("zombie", 1, batchOf(["old-1"], { ...old, baseSequence: 0 }), TIMEOUT_MS);

    const fresh = await f.initProducer("ingest");
    assert.equal(fresh.producerEpoch, old.producerEpoch + 1);
    await l0.broker.produceBatch("zombie", 0, batchOf(["new-0"], { ...fresh, baseSequence: 0 }), TIMEOUT_MS);
    // Partition 0: the new epoch wrote there; partition 1: only the metadata knows the new epoch.
    for (const n of c.nodes) await waitFor(`node ${n.id} learns the new epoch`, () => n.metadata.producerEpoch(old.producerId) === fresh.producerEpoch || undefined);
    await assert.rejects(l0.broker.produceBatch("zombie", 0, batchOf(["zombie-0"], { ...old, baseSequence: 1 }), TIMEOUT_MS), brokerError("PRODUCER_FENCED"));
    await assert.rejects(l1.broker.produceBatch("zombie", 1, batchOf(["zombie-1"], { ...old, baseSequence: 1 }), TIMEOUT_MS), brokerError("PRODUCER_FENCED", /fenced by epoch/));
    // Records produced by the broker for an idempotent `records` request are fenced the same way.
    await assert.rejects(l1.broker.produce("zombie", 1, [rec("zombie-r")], TIMEOUT_MS, { ...old, baseSequence: 1 }), brokerError("PRODUCER_FENCED"));
    assert.deepEqual(await ids(l0, "zombie", 0), ["old-0", "new-0"]);
    assert.deepEqual(await ids(l1, "zombie", 1), ["old-1"]);
  });

  test("the dedup state survives a restart from a snapshot (retention compacted the batch away)", async () => {
    const topic = await c.createTopic({ name: "durable", replicationFactor: 3, retentionMs: 60_000 });
    const group = topic.partitions[0]!.group;
    const { producerId, producerEpoch } = await (await controller()).initProducer("");
    const leader = await c.partitionLeader("durable");
    const batch = batchOf(["x", "y"], { producerId, producerEpoch, baseSequence: 0 });
    await leader.broker.produceBatch("durable", 0, Uint8Array.from(batch), TIMEOUT_MS);
    c.clock.shiftWall(120_000);
    await leader.broker.produceBatch("durable", 0, batchOf(["plain"]), TIMEOUT_MS);
    for (const n of c.nodes) await waitFor(`node ${n.id} applies`, () => n.partitions.state(group)?.nextOffset === 3 || undefined);
    for (const n of c.nodes) await n.broker.enforceRetention();
    for (const n of c.nodes) assert.equal(n.partitions.state(group)!.logStartOffset, 2, `node ${n.id} compacted the idempotent batch away`);
    for (const n of c.nodes) await c.restart(n.id);
    const again = await c.partitionLeader("durable");
    const retry = await retrying(() => again.broker.produceBatch("durable", 0, Uint8Array.from(batch), TIMEOUT_MS));
    assert.deepEqual([retry.baseOffset, retry.count, retry.duplicate], [0, 2, true]);
    assert.equal(again.partitions.state(group)!.nextOffset, 3);
  });
});

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../lib/clock.js";
import { connect, type RaftmqClient } from "./client.js";
import { CODEC_LZ4, CODEC_NONE, readBatchHeader } from "../format/index.js";
import { OverloadedError, ProducerFencedError, ShuttingDownError, UnknownPartitionError, UnknownTopicError } from "./errors.js";
import { partitionForKey } from "./partitioner.js";
import type { ProducerOptions } from "./producer.js";
import type { ProduceResult } from "./records.js";
import { FakeCluster, recordsOf } from "./testing/fake-broker.js";

const FAST_RETRY = { attemptsMax: 5, backoffInitialMs: 1, backoffMaxMs: 5, deadlineMs: 5_000 };

interface Setup {
  fake: FakeCluster;
  client: RaftmqClient;
  clock: ManualClock;
}

/** A fake cluster with topic "t" (`partitions`, leaders spread), and a client on a manual clock with warm metadata. */
async function setup(t: TestContext, partitions = 1): Promise<Setup> {
  const fake = await FakeCluster.start({ nodes: 3 });
  fake.addTopic("t", partitions, 3);
  const clock = new ManualClock();
  const client = connect({ brokers: fake.brokers(), clock, retry: FAST_RETRY });
  await client.metadata();
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  return { fake, client, clock };
}

/** Lets the client's routing (promise continuations and I/O) run. */
async function settle(ms = 5): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function producerOf(s: Setup, options: ProducerOptions) {
  return s.client.producer(options);
}

test("records linger until lingerMs, then go out as one batch; each promise gets its offset", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 50 });
  const sends = Array.from({ length: 5 }, (_, i) => producer.send("t", { body: `r${i}` }));
  await settle();
  s.clock.advance(49);
  await settle();
  assert.equal(s.fake.requestsOf("Produce").length, 0, "nothing is sent before the linger ends");
  s.clock.advance(1);
  const results = await Promise.all(sends);
  assert.deepEqual(results, [0, 1, 2, 3, 4].map((offset) => ({ partition: 0, offset })));
  const produces = s.fake.requestsOf("Produce");
  assert.equal(produces.length, 1);
  assert.deepEqual(recordsOf(produces[0]!.request).map((r) => Buffer.from(r.body).toString()), ["r0", "r1", "r2", "r3", "r4"]);
});

test("a batch is sent as soon as it holds batchRecordsMax records, in send order", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 1_000, batchRecordsMax: 4 });
  const sends = Array.from({ length: 10 }, (_, i) => producer.send("t", { body: `r${i}` }));
  const firstEight = await Promise.all(sends.slice(0, 8));
  assert.deepEqual(firstEight.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(s.fake.requestsOf("Produce").map((r) => recordsOf(r.request).length), [4, 4]);
  s.clock.advance(1_000);
  assert.deepEqual((await Promise.all(sends.slice(8))).map((r) => r.offset), [8, 9]);
  assert.deepEqual(s.fake.requestsOf("Produce").map((r) => recordsOf(r.request).length), [4, 4, 2]);
});

test("a batch is sent before a record would take it past batchBytesMax", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 1_000, batchBytesMax: 450 });
  const body = "x".repeat(150);
  const sends = Array.from({ length: 5 }, () => producer.send("t", { body, id: "id" }));
  await settle();
  s.clock.advance(1_000);
  await Promise.all(sends);
  // Each record is 150 + 2 (id) + 32 (framing) = 184 bytes: two fit in 450, a third does not.
  assert.deepEqual(s.fake.requestsOf("Produce").map((r) => recordsOf(r.request).length), [2, 2, 1]);
});

test("records are batched per partition: keys route by hash, one request per partition", async (t) => {
  const s = await setup(t, 4);
  const producer = producerOf(s, { lingerMs: 10 });
  const keys = Array.from({ length: 40 }, (_, i) => `k${i % 10}`);
  const sends = keys.map((key) => producer.send("t", { key, body: key }));
  await settle();
  s.clock.advance(10);
  const results = await Promise.all(sends);
  results.forEach((r, i) => assert.equal(r.partition, partitionForKey(Buffer.from(keys[i]!), 4)));
  const produces = s.fake.requestsOf("Produce");
  assert.equal(produces.length, new Set(results.map((r) => r.partition)).size);
  for (const req of produces) assert.equal(req.node, (req.request.partition % 3) + 1, "each batch went to its leader");
  for (let p = 0; p < 4; p++) {
    const bodies = s.fake.records("t", p).map((r) => Buffer.from(r.body).toString());
    const expected = keys.filter((k) => partitionForKey(Buffer.from(k), 4) === p);
    assert.deepEqual(bodies, expected, `partition ${p} keeps send order`);
  }
});

test("flush() sends open batches at once and waits for them; close() flushes and refuses later sends", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 60_000 });
  const a = producer.send("t", { body: "a" });
  const b = producer.send("t", { body: "b" });
  await producer.flush();
  assert.deepEqual(await Promise.all([a, b]), [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }]);
  const c = producer.send("t", { body: "c" });
  await producer.close();
  assert.deepEqual(await c, { partition: 0, offset: 2 });
  await assert.rejects(producer.send("t", { body: "d" }), ShuttingDownError);
});

test("flush() waits for the records sent before it, not for those sent after it", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 60_000 });
  await producer.flush(); // nothing sent: resolves at once
  let aSettled = false;
  const a = producer.send("t", { body: "a" }).finally(() => (aSettled = true));
  const flushed = producer.flush();
  await settle(); // a's batch is on the wire
  s.fake.failNext("Produce", { delayMs: 300 }); // the next batch, b's, is slow
  let bSettled = false;
  const b = producer.send("t", { body: "b" }).finally(() => (bSettled = true));
  await flushed;
  assert.equal(aSettled, true, "the flush waited for a");
  assert.equal(bSettled, false, "the flush did not wait for b, sent after it");
  assert.deepEqual(await a, { partition: 0, offset: 0 });
  await producer.flush();
  assert.equal(bSettled, true);
  assert.deepEqual(await b, { partition: 0, offset: 1 });
});

test("one batch in flight per partition: a slow batch is not overtaken by the next", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 0, batchRecordsMax: 2 });
  s.fake.failNext("Produce", { delayMs: 100 });
  const sends = Array.from({ length: 6 }, (_, i) => producer.send("t", { body: `r${i}` }));
  const results = await Promise.all(sends);
  assert.deepEqual(results.map((r) => r.offset), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(s.fake.records("t", 0).map((r) => Buffer.from(r.body).toString()), ["r0", "r1", "r2", "r3", "r4", "r5"]);
});

test("under load, a batch whose linger passes while the partition is busy keeps filling until the partition is free", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 5 });
  s.fake.failNext("Produce", { delayMs: 150 });
  const first = producer.send("t", { body: "first" });
  await settle();
  s.clock.advance(5); // the first batch goes out and stays in flight for 150 ms (real time)
  await settle(20);
  const later = Array.from({ length: 3 }, (_, i) => producer.send("t", { body: `a${i}` }));
  await settle();
  s.clock.advance(5); // their linger passes while the first batch is still in flight
  await settle(20);
  const more = Array.from({ length: 3 }, (_, i) => producer.send("t", { body: `b${i}` }));
  await settle(250); // the first batch has been answered by now
  s.clock.advance(5); // lets any batch still lingering go, so that a regression fails rather than hangs
  await Promise.all([first, ...later, ...more]);
  // One batch for "first", then ONE batch for the six records sent while it was in flight.
  assert.deepEqual(s.fake.requestsOf("Produce").map((r) => recordsOf(r.request).length), [1, 6]);
});

test("a failed batch rejects each of its records; a leader change in between is followed", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 60_000 });
  s.fake.failNext("Produce", { code: "RECORD_TOO_LARGE", message: "record 0 is too large" });
  const failed = [producer.send("t", { body: "a" }), producer.send("t", { body: "b" })];
  await producer.flush();
  assert.equal(s.fake.requestsOf("Produce").length, 1, "both records were in one batch");
  for (const f of failed) await assert.rejects(f, (e: unknown) => (e as { code?: string }).code === "RECORD_TOO_LARGE");
  s.fake.setLeader("t", 0, 2);
  const c = producer.send("t", { body: "c" });
  await producer.flush();
  assert.deepEqual(await c, { partition: 0, offset: 0 });
  await assert.rejects(producer.send("missing", { body: "x" }), UnknownTopicError);
  await assert.rejects(producer.send("t", { body: "x" }, { partition: 9 }), UnknownPartitionError);
});

test("records sent before the topic's metadata is known keep their order", async (t) => {
  const s = await setup(t);
  s.fake.addTopic("fresh", 1, 3);
  const producer = producerOf(s, { lingerMs: 0 });
  const results: ProduceResult[] = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send("fresh", { body: `r${i}` })));
  assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(s.fake.records("fresh", 0).map((r) => Buffer.from(r.body).toString()), Array.from({ length: 20 }, (_, i) => `r${i}`));
});

test("bufferedRecordsMax bounds the records in flight", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 1_000, batchRecordsMax: 2, bufferedRecordsMax: 3 });
  const accepted = [producer.send("t", { body: "1" }), producer.send("t", { body: "2" }), producer.send("t", { body: "3" })];
  await assert.rejects(producer.send("t", { body: "4" }), OverloadedError);
  await settle();
  s.clock.advance(1_000);
  await Promise.all(accepted);
  assert.equal(producer.bufferedRecords, 0);
  const fifth = producer.send("t", { body: "5" });
  await settle();
  s.clock.advance(1_000);
  assert.deepEqual(await fifth, { partition: 0, offset: 3 }, "there is room again once earlier records settled");
});

test("producer options are validated with errors naming the option", async (t) => {
  const s = await setup(t);
  assert.throws(() => s.client.producer({ batchRecordsMax: 0 }), /batchRecordsMax must be a positive integer/);
  assert.throws(() => s.client.producer({ lingerMs: -1 }), /lingerMs/);
  assert.throws(() => s.client.producer({ batchRecordsMax: 10, bufferedRecordsMax: 5 }), /bufferedRecordsMax \(5\) must be an integer of at least batchRecordsMax \(10\)/);
});

/** Moves the manual clock on (retry backoffs run on it) until `promise` settles. */
async function advanceUntilSettled<T>(s: Setup, promise: Promise<T>): Promise<T> {
  let settled = false;
  void promise.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 1_000 && !settled; i++) {
    s.clock.advance(10);
    await settle(1);
  }
  return promise;
}

/** The producer fields and codec of every Produce request's batch, in order. */
function batchHeaders(s: Setup) {
  return s.fake.requestsOf("Produce").map((r) => {
    const h = readBatchHeader(r.request.batch)!;
    return { producerId: h.producerId, epoch: h.producerEpoch, seq: h.baseSequence, count: h.count, codec: h.codec };
  });
}

test("idempotence (default): one InitProducer, sequences per partition, lz4 batches", async (t) => {
  const s = await setup(t, 2);
  const producer = producerOf(s, { lingerMs: 0, batchRecordsMax: 3 });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => producer.send("t", { body: `record ${i} `.repeat(20) }, { partition: i % 2 })));
  assert.deepEqual(results.map((r) => r.offset), [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.equal(s.fake.requestsOf("InitProducer").length, 1);
  const headers = batchHeaders(s);
  assert.ok(headers.every((h) => h.producerId === headers[0]!.producerId && h.producerId > 0 && h.codec === CODEC_LZ4), JSON.stringify(headers));
  for (const partition of [0, 1]) {
    const mine = s.fake.requestsOf("Produce").filter((r) => r.request.partition === partition).map((r) => readBatchHeader(r.request.batch)!);
    let next = 0;
    for (const h of mine) {
      assert.equal(h.baseSequence, next, `partition ${partition}: sequences continue from batch to batch`);
      next += h.count;
    }
    assert.equal(next, 4);
  }
});

test("a batch retried after a timeout is re-sent byte for byte and written once", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 0 });
  await producer.send("t", { body: "first" });
  s.fake.failNext("Produce", { code: "TIMEOUT", message: "commit timed out; its outcome is unknown" });
  const second = producer.send("t", { body: "second" });
  assert.deepEqual(await advanceUntilSettled(s, second), { partition: 0, offset: 1 }, "an idempotent batch is retried after a timeout");
  const produces = s.fake.requestsOf("Produce");
  assert.equal(produces.length, 3);
  assert.deepEqual(Buffer.from(produces[2]!.request.batch), Buffer.from(produces[1]!.request.batch), "the retry carries the same bytes, so the same sequence");
  assert.deepEqual(s.fake.records("t", 0).map((r) => Buffer.from(r.body).toString()), ["first", "second"]);
  assert.equal(producer.duplicateBatches, 0, "the timed-out attempt never reached the fake");
});

test("after a batch fails for good the producer starts a new session before sending on", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 0 });
  await producer.send("t", { body: "a" });
  s.fake.failNext("Produce", { code: "INVALID_ARGUMENT", message: "rejected" });
  await assert.rejects(producer.send("t", { body: "b" }), (e: unknown) => (e as { code?: string }).code === "INVALID_ARGUMENT");
  await producer.send("t", { body: "c" });
  assert.equal(s.fake.requestsOf("InitProducer").length, 2, "a second session");
  const [a, b, c] = batchHeaders(s);
  assert.equal(b!.producerId, a!.producerId);
  assert.notEqual(c!.producerId, a!.producerId, "a fresh anonymous id");
  assert.equal(c!.seq, 0, "sequences start again from 0");
});

test("PRODUCER_FENCED is final: the batch and every later send reject with ProducerFencedError", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 0, producerName: "svc" });
  await producer.send("t", { body: "a" });
  s.fake.failNext("Produce", { code: "PRODUCER_FENCED", message: "producer 1 epoch 0 is fenced" });
  await assert.rejects(producer.send("t", { body: "b" }), ProducerFencedError);
  await assert.rejects(producer.send("t", { body: "c" }), ProducerFencedError);
  assert.deepEqual(s.fake.requestsOf("InitProducer").map((r) => r.request.producerName), ["svc"]);
});

test("idempotence off: no InitProducer, no producer id; compression none is honoured", async (t) => {
  const s = await setup(t);
  const producer = producerOf(s, { lingerMs: 0, idempotence: false, compression: "none" });
  await producer.send("t", { body: "x".repeat(500) });
  assert.equal(s.fake.requestsOf("InitProducer").length, 0);
  assert.deepEqual(batchHeaders(s).map((h) => [h.producerId, h.codec]), [[0, CODEC_NONE]]);
  assert.throws(() => s.client.producer({ compression: "zip" as never }), /compression must be "none", "gzip" or "lz4"/);
});

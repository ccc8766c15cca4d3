/**
 * Flow control of a partition subscription: the pump never sends more records than the record
 * credit, never starts a record without byte credit, overshoots the byte credit by at most the
 * first record of a message, waits for credits, follows the log with long polls, and ends with
 * the source's error (a leader change). A property test drives random grants against a fake log;
 * one test runs against a real partition leader of an in-process cluster.
 *
 * The same with stored batches: credits are charged per batch (its records at or above the
 * subscription offset, its uncompressed bytes), a batch straddling the start offset is sent whole
 * and charged only its records from the offset, a batch larger than both credits still goes (alone),
 * only the first batch of a message overshoots, and batches reach the consumer as stored
 * (compressed ones too). Property tests print their seed (FC_SEED replays one).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BrokerError } from "../lib/errors.js";
import { CODEC_LZ4, decodeBatch, encodeBatch, readBatchHeader, type ProducedRecord } from "../format/index.js";
import type { StoredBatch } from "./partition.js";
import {
  batchesOf,
  recordCreditBytes,
  recordsOf,
  Subscription,
  type BatchSource,
  type RecordSource,
  type SizedRecord,
  type SubscriptionMessage,
} from "./subscription.js";
import { InProcessCluster } from "./testing/in-process-cluster.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_707);
console.log(`subscription property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);

interface Rec extends SizedRecord {
  readonly id: string;
}

const rec = (offset: number, bodyBytes: number): Rec => ({ offset, id: `r${offset}`, key: new Uint8Array(), body: new Uint8Array(bodyBytes), headers: [] });

/** A log in memory; fetch returns up to maxBytes of records from offset (at least one), waiting a little when none. */
class FakeLog implements RecordSource<Rec> {
  records: Rec[] = [];
  failWith: Error | undefined;
  fetches = 0;

  append(...sizes: number[]): void {
    for (const s of sizes) this.records.push(rec(this.records.length, s));
  }

  async fetch(_topic: string, _partition: number, offset: number, maxBytes: number, maxWaitMs: number) {
    this.fetches++;
    if (this.failWith !== undefined) throw this.failWith;
    if (offset >= this.records.length) await new Promise((r) => setTimeout(r, Math.min(maxWaitMs, 5)));
    const out: Rec[] = [];
    let bytes = 0;
    for (const r of this.records.slice(offset)) {
      bytes += r.body.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(r);
    }
    return { records: out, highWatermark: this.records.length, nextOffset: offset + out.length, brokerTimeMs: 0 };
  }
}

function harness(log: FakeLog, offset = 0) {
  const got: SubscriptionMessage<Rec>[] = [];
  const sub = new Subscription<Rec>({ source: recordsOf(log, "t", 0), offset, pollWaitMs: 5, send: async (b) => void got.push(b) });
  const done = sub.run();
  const received = (): number[] => got.flatMap((b) => b.units.map((r) => r.offset));
  return { sub, done, got, received };
}

const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("records are sent only against record credit, in order, from the start offset", async () => {
  const log = new FakeLog();
  log.append(...Array.from({ length: 20 }, () => 10));
  const h = harness(log, 3);
  await settle();
  assert.deepEqual(h.received(), [], "no credit, nothing sent");
  h.sub.grant(5, 1_000_000);
  await settle();
  assert.deepEqual(h.received(), [3, 4, 5, 6, 7]);
  h.sub.grant(100, 1_000_000);
  await settle();
  assert.deepEqual(h.received(), Array.from({ length: 17 }, (_, i) => i + 3));
  log.append(10, 10);
  await settle();
  assert.deepEqual(h.received().slice(-2), [20, 21], "new records follow by long poll");
  assert.equal(h.sub.credits.records, 100 - 12 - 2 + 0);
  h.sub.close();
  await h.done;
});

test("byte credit: a record starts only with credit left, and only the first of a message may overshoot", async () => {
  const log = new FakeLog();
  log.append(40, 40, 40, 500, 10);
  const h = harness(log);
  h.sub.grant(100, 100);
  await settle();
  assert.deepEqual(h.got[0]!.units.map((r) => r.offset), [0, 1], "the third 40-byte record does not fit in the 20 bytes left of the message");
  assert.deepEqual(h.received(), [0, 1, 2], "it starts the next message, overshooting by 20");
  assert.equal(h.sub.credits.bytes, -20);
  h.sub.grant(0, 15);
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2], "nothing while the byte credit is not positive");
  h.sub.grant(0, 15); // 10 bytes of credit: the 500-byte record goes alone
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2, 3]);
  assert.equal(h.sub.credits.bytes, 10 - 500);
  h.sub.grant(0, 500);
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2, 3, 4]);
  for (const b of h.got) assert.equal(b.chargedBytes, b.units.reduce((n, r) => n + recordCreditBytes(r), 0));
  for (const b of h.got) assert.equal(b.chargedRecords, b.units.length);
  h.sub.close();
  await h.done;
});

test("the source's error ends the subscription (a leader change)", async () => {
  const log = new FakeLog();
  log.append(1);
  const h = harness(log);
  h.sub.grant(10, 100);
  await settle();
  log.failWith = new BrokerError("NOT_LEADER", "moved");
  await assert.rejects(h.done, /moved/);
});

test("property: whatever the grants, received ≤ granted records, bytes ≤ granted + one record, in order, no gaps", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 8 }),
      async (sizes, grants) => {
        const log = new FakeLog();
        log.append(...sizes);
        const h = harness(log);
        let records = 0;
        let bytes = 0;
        for (const [r, b] of grants) {
          h.sub.grant(r, b);
          records += r;
          bytes += b;
          await settle(3);
          const got = h.received();
          assert.ok(got.length <= records, `${got.length} records sent against ${records} granted`);
          const sent = got.reduce((n, o) => n + sizes[o]!, 0);
          const largest = Math.max(0, ...got.map((o) => sizes[o]!));
          assert.ok(sent <= bytes + largest, `${sent} bytes sent against ${bytes} granted`);
          assert.deepEqual(got, got.map((_, i) => i), "in order, from 0, without gaps");
        }
        h.sub.close();
        await h.done;
      },
    ),
    { seed: SEED, numRuns: 40 },
  );
});

test("against a real partition leader: credits bound delivery, and a leader change ends the stream with NOT_LEADER", async () => {
  const c = await InProcessCluster.start({ nodes: 3, seed: 5 });
  try {
    await c.createTopic({ name: "s" });
    const leader = await c.partitionLeader("s");
    const records = Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, key: new Uint8Array(), headers: [], body: new Uint8Array(8), producerTimestampMs: 1 }));
    await leader.broker.produce("s", 0, records as never, 3_000);
    const got: number[] = [];
    const sub = new Subscription({ source: recordsOf(leader.broker, "s", 0), offset: 0, pollWaitMs: 50, send: async (b) => void got.push(...b.units.map((r) => r.offset)) });
    const done = sub.run();
    sub.grant(12, 1 << 20);
    await settle(100);
    assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i));
    sub.grant(100, 1 << 20);
    await settle(100);
    assert.equal(got.length, 30);
    const other = c.nodes.find((n) => n.id !== leader.id)!;
    leader.multiraft.transferLeadership(c.node(leader.id).metadata.topics.get("s")!.partitions[0]!.group, other.id);
    await assert.rejects(done, (e: unknown) => e instanceof BrokerError && e.code === "NOT_LEADER");
  } finally {
    await c.close();
  }
});

// ------------------------------------------------------------------ stored batches

const produced = (offset: number, bodyBytes: number, fill = offset % 251): ProducedRecord => ({
  id: `r${offset}`, key: new Uint8Array(), headers: [], body: new Uint8Array(bodyBytes).fill(fill), producerTimestampMs: 1,
});

/** Bytes a batch is charged: its records section before compression (a header field). */
const chargeOf = (b: StoredBatch): number => readBatchHeader(b.data)!.uncompressedBytes;

/** Stored batches in memory; fetch reads like PartitionState.readBatches: from the batch holding `offset`, about maxBytes of stored bytes, at least one batch. */
class FakeBatchLog implements BatchSource {
  readonly batches: StoredBatch[] = [];
  end = 0;

  /** Appends a batch of `count` records of `bodyBytes` each. */
  append(count: number, bodyBytes: number, codec?: number): StoredBatch {
    const records = Array.from({ length: count }, (_, i) => produced(this.end + i, bodyBytes));
    const batch: StoredBatch = { baseOffset: this.end, count, data: encodeBatch(records, 1_000, codec === undefined ? {} : { codec }) };
    this.batches.push(batch);
    this.end += count;
    return batch;
  }

  async fetch(_topic: string, _partition: number, offset: number, maxBytes: number, maxWaitMs: number, options: { readonly rawBatches: true }) {
    assert.equal(options.rawBatches, true);
    if (offset >= this.end) await new Promise((r) => setTimeout(r, Math.min(maxWaitMs, 5)));
    const out: StoredBatch[] = [];
    let bytes = 0;
    for (const b of this.batches) {
      if (b.baseOffset + b.count <= offset) continue;
      bytes += b.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(b);
    }
    const last = out[out.length - 1];
    return { batches: out, highWatermark: this.end, nextOffset: last === undefined ? offset : last.baseOffset + last.count, brokerTimeMs: 0 };
  }
}

function batchHarness(log: FakeBatchLog, offset = 0) {
  const got: SubscriptionMessage<StoredBatch>[] = [];
  const sub = new Subscription<StoredBatch>({ source: batchesOf(log, "t", 0), offset, pollWaitMs: 5, send: async (m) => void got.push(m) });
  const done = sub.run();
  /** Base offsets of the batches received, message by message. */
  const messages = (): number[][] => got.map((m) => m.units.map((b) => b.baseOffset));
  return { sub, done, got, messages };
}

test("batches: each batch goes whole and as stored, charged its records and its uncompressed bytes", async () => {
  const log = new FakeBatchLog();
  const [a, b, c] = [log.append(3, 10), log.append(5, 10), log.append(5, 10)];
  const h = batchHarness(log);
  h.sub.grant(8, 1_000_000);
  await settle();
  assert.deepEqual(h.messages(), [[0, 3]], "3 + 5 records fit the 8 granted; the third batch would not");
  const first = h.got[0]!;
  assert.equal(first.units[0], a, "the stored batch itself, not a copy or a re-encoding");
  assert.equal(first.units[1], b);
  assert.equal(first.chargedRecords, 8);
  assert.equal(first.chargedBytes, chargeOf(a!) + chargeOf(b!));
  assert.ok(chargeOf(a!) >= 3 * 10, "a batch is charged at least its records' bytes");
  assert.equal(first.nextOffset, 8);
  assert.deepEqual(h.sub.credits, { records: 0, bytes: 1_000_000 - first.chargedBytes, nextOffset: 8 });
  h.sub.grant(1, 0);
  await settle();
  assert.deepEqual(h.messages(), [[0, 3], [8]], "one record of credit starts the 5-record batch, which overshoots");
  assert.equal(h.got[1]!.units[0], c);
  assert.equal(h.sub.credits.records, 1 - 5);
  h.sub.close();
  await h.done;
});

test("batches: a batch straddling the start offset is sent whole, charged only its records from the offset", async () => {
  const log = new FakeBatchLog();
  const [a] = [log.append(5, 10), log.append(5, 10)];
  const h = batchHarness(log, 3);
  h.sub.grant(3, 1_000_000);
  await settle();
  const first = h.got[0]!;
  assert.deepEqual(h.messages()[0], [0], "the batch holding offset 3 starts at 0; the next one (5 records) does not fit the 1 record left");
  assert.equal(first.chargedRecords, 2, "offsets 3 and 4");
  assert.equal(first.chargedBytes, chargeOf(a!), "bytes: the whole batch");
  assert.equal(first.nextOffset, 5);
  assert.deepEqual(decodeBatch(first.units[0]!.data, 0).map((r) => r.offset), [0, 1, 2, 3, 4], "the consumer skips 0 to 2 itself");
  await settle();
  assert.deepEqual(h.messages(), [[0], [5]], "the record left starts the next batch");
  assert.equal(h.got[1]!.chargedRecords, 5);
  assert.equal(h.sub.credits.records, 1 - 5);
  h.sub.close();
  await h.done;
});

test("batches: a batch larger than both whole credits still goes, alone, overshooting by less than its size", async () => {
  const log = new FakeBatchLog();
  const big = log.append(50, 1_000);
  const size = chargeOf(big);
  const h = batchHarness(log);
  h.sub.grant(10, 1_000);
  await settle();
  assert.deepEqual(h.messages(), [[0]]);
  assert.equal(h.got[0]!.chargedRecords, 50);
  assert.equal(h.got[0]!.chargedBytes, size);
  assert.deepEqual(h.sub.credits, { records: 10 - 50, bytes: 1_000 - size, nextOffset: 50 });
  log.append(1, 10);
  h.sub.grant(40, size - 1_000);
  await settle();
  assert.equal(h.got.length, 1, "credits paid back to 0: nothing starts");
  h.sub.grant(1, 1);
  await settle();
  assert.deepEqual(h.messages(), [[0], [50]]);
  h.sub.close();
  await h.done;
});

test("batches: a batch starts only with byte credit left, and only the first of a message may exceed it", async () => {
  const log = new FakeBatchLog();
  const [a, b] = [log.append(2, 100), log.append(2, 100), log.append(2, 100)];
  const h = batchHarness(log);
  h.sub.grant(100, chargeOf(a!) + 1);
  await settle();
  assert.deepEqual(h.messages(), [[0], [2]], "A fits; B does not fit the 1 byte left, so it starts the next message");
  assert.equal(h.sub.credits.bytes, 1 - chargeOf(b!));
  h.sub.grant(0, chargeOf(b!) - 1);
  await settle();
  assert.equal(h.got.length, 2, "nothing while the byte credit is not positive");
  h.sub.grant(0, 1);
  await settle();
  assert.deepEqual(h.messages(), [[0], [2], [4]]);
  h.sub.close();
  await h.done;
});

test("property: batches, whatever the grants and start: records charged ≤ granted + one batch, bytes ≤ granted + one batch, contiguous from the start", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 200 })), { minLength: 1, maxLength: 15 }),
      fc.nat(),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 3_000 })), { minLength: 1, maxLength: 8 }),
      async (shapes, startSeed, grants) => {
        const log = new FakeBatchLog();
        for (const [count, body] of shapes) log.append(count, body);
        const start = startSeed % log.end;
        const largestCount = Math.max(...log.batches.map((b) => b.count));
        const largestBytes = Math.max(...log.batches.map(chargeOf));
        const h = batchHarness(log, start);
        let records = 0;
        let bytes = 0;
        for (const [r, b] of grants) {
          h.sub.grant(r, b);
          records += r;
          bytes += b;
          await settle(3);
          let expected = start;
          let chargedRecords = 0;
          let chargedBytes = 0;
          for (const m of h.got) {
            let fresh = 0;
            for (const batch of m.units) {
              assert.ok(batch.baseOffset <= expected && expected < batch.baseOffset + batch.count, `batch at ${batch.baseOffset} holds ${expected}`);
              fresh += batch.baseOffset + batch.count - expected;
              expected = batch.baseOffset + batch.count;
            }
            assert.equal(m.chargedRecords, fresh, "records charged: those at or above the offset");
            assert.equal(m.chargedBytes, m.units.reduce((n, u) => n + chargeOf(u), 0));
            chargedRecords += m.chargedRecords;
            chargedBytes += m.chargedBytes;
          }
          assert.ok(chargedRecords < records + largestCount || chargedRecords === 0, `${chargedRecords} records charged against ${records} granted`);
          assert.ok(chargedBytes < bytes + largestBytes || chargedBytes === 0, `${chargedBytes} bytes charged against ${bytes} granted`);
          assert.deepEqual(h.sub.credits, { records: records - chargedRecords, bytes: bytes - chargedBytes, nextOffset: expected });
        }
        h.sub.close();
        await h.done;
      },
    ),
    { seed: SEED, numRuns: 40 },
  );
});

test("batches against a real partition leader: compressed batches arrive as stored, the straddled one and expired records included", async () => {
  const c = await InProcessCluster.start({ nodes: 3, seed: 6 });
  try {
    await c.createTopic({ name: "sb" });
    const leader = await c.partitionLeader("sb");
    const lz4 = encodeBatch(Array.from({ length: 10 }, (_, i) => produced(i, 2_000, 7)), 0, { codec: CODEC_LZ4 });
    assert.equal(readBatchHeader(lz4)!.codec, CODEC_LZ4, "the records compress");
    const sentLz4 = Buffer.from(lz4); // the broker stamps its timestamp into the bytes it gets
    await leader.broker.produceBatch("sb", 0, lz4, 3_000);
    await leader.broker.produce("sb", 0, [{ ...produced(10, 8), ttlMs: 1_000 }, produced(11, 8)], 3_000);
    c.clock.shiftWall(2_000); // record 10 expires
    const got: SubscriptionMessage<StoredBatch>[] = [];
    const sub = new Subscription({ source: batchesOf(leader.broker, "sb", 0), offset: 4, pollWaitMs: 50, send: async (m) => void got.push(m) });
    const done = sub.run();
    sub.grant(100, 1 << 20);
    await settle(100);
    const units = got.flatMap((m) => m.units);
    assert.deepEqual(units.map((u) => [u.baseOffset, u.count]), [[0, 10], [10, 2]]);
    assert.deepEqual(Buffer.from(units[0]!.data).subarray(14), sentLz4.subarray(14), "the producer's compressed bytes, CRC-covered part unchanged");
    assert.equal(got.reduce((n, m) => n + m.chargedRecords, 0), 6 + 2, "offsets 4 to 11, the expired one included");
    const expired = decodeBatch(units[1]!.data, 10)[0]!;
    assert.ok(expired.ttlMs > 0 && expired.brokerTimestampMs + expired.ttlMs <= got[got.length - 1]!.brokerTimeMs, "left in, with the broker time to skip it by");
    sub.close();
    await done;
  } finally {
    await c.close();
  }
});

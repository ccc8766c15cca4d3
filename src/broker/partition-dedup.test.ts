/**
 * Idempotent producers in the partition state machine: duplicates get no offsets and answer the
 * original ones, out-of-order sequences and older epochs are rejected, the table is bounded, and
 * the deduplication state survives snapshots: snapshotAt(index) carries the state AS OF that index
 * (rebuilt from the batch table), restore() brings it back, compactedTo() keeps it.
 *
 * The property test takes its seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { LogIndex } from "../lib/ids.js";
import { bootstrapSnapshot, type Entry } from "../raft/index.js";
import { PartitionState } from "./partition.js";
import { ProducerStateTable, RECENT_BATCHES_MAX, type ProduceOutcome } from "./producer-state.js";
import { FakeEntryLog, batchEntry, noopEntry, producerBatchEntry } from "./testing/entries.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_615);
console.log(`partition dedup property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);

const GROUP = 1000;

function founded(): PartitionState {
  const s = new PartitionState(GROUP);
  s.restore(bootstrapSnapshot([1, 2, 3]));
  return s;
}

const p = (producerId: number, producerEpoch: number, baseSequence: number) => ({ producerId, producerEpoch, baseSequence });

test("a retried batch (same producer, epoch, sequence and count) gets no offsets and answers the original ones", async () => {
  const s = founded();
  const entries = [producerBatchEntry(2, p(7, 0, 0), 3), producerBatchEntry(3, p(7, 0, 3), 2), producerBatchEntry(4, p(7, 0, 3), 2, 2_000), batchEntry(5, 1)];
  s.apply(entries);
  assert.equal(s.nextOffset, 6, "3 + 2 + (duplicate: 0) + 1");
  assert.deepEqual(s.outcomeAt(3), { kind: "appended", baseOffset: 3, count: 2, brokerTimestampMs: 1_000 });
  assert.deepEqual(s.outcomeAt(4), { kind: "duplicate", baseOffset: 3, count: 2, brokerTimestampMs: 1_000 }, "the original's offsets and timestamp");
  assert.deepEqual(s.outcomeAt(5), { kind: "appended", baseOffset: 5, count: 1, brokerTimestampMs: 1_000 });
  assert.equal(s.baseOffsetAt(4), undefined, "the duplicate entry holds no offsets");
  const log = new FakeEntryLog(entries);
  assert.deepEqual((await s.read(0, 1 << 20, log.reader)).map((r) => r.id), ["2.0", "2.1", "2.2", "3.0", "3.1", "5.0"], "the duplicate's records are never read");
  assert.deepEqual((await s.readBatches(0, 1 << 20, log.reader)).map((b) => [b.baseOffset, b.count]), [[0, 3], [3, 2], [5, 1]]);
});

test("an out-of-order sequence is rejected: a gap, a reused sequence with another count, an old duplicate", () => {
  const s = founded();
  s.apply([producerBatchEntry(2, p(7, 0, 0), 2)]);
  const cases: [Entry, RegExp][] = [
    [producerBatchEntry(3, p(7, 0, 5), 1), /expected sequence 2, got 5/],
    [producerBatchEntry(4, p(7, 0, 0), 1), /sequence 0 was written by a batch of 2 records, not 1/],
    [producerBatchEntry(5, p(7, 1, 3), 1), /first batch of epoch 1 must have sequence 0/],
  ];
  for (const [entry, message] of cases) {
    s.apply([entry]);
    const outcome = s.outcomeAt(entry.index);
    assert.equal(outcome?.kind, "rejected", `entry ${entry.index}`);
    assert.equal(outcome.kind === "rejected" && outcome.code, "OUT_OF_ORDER_SEQUENCE");
    assert.match(outcome.kind === "rejected" ? outcome.message : "", message);
  }
  assert.equal(s.nextOffset, 2, "rejected batches get no offsets");
  // Push the first batch out of the recent window: a retry of it is then an old duplicate.
  for (let k = 0; k < RECENT_BATCHES_MAX; k++) s.apply([producerBatchEntry(6 + k, p(7, 0, 2 + k), 1)]);
  s.apply([producerBatchEntry(20, p(7, 0, 0), 2)]);
  const old = s.outcomeAt(20);
  assert.ok(old?.kind === "rejected" && /already written \(last is 6\)/.test(old.message), JSON.stringify(old));
});

test("an older epoch is fenced; a new epoch starts at sequence 0 and forgets the old epoch's batches", () => {
  const s = founded();
  s.apply([producerBatchEntry(2, p(9, 0, 0), 1), producerBatchEntry(3, p(9, 1, 0), 2), producerBatchEntry(4, p(9, 0, 1), 1), producerBatchEntry(5, p(9, 1, 0), 2)]);
  assert.equal(s.outcomeAt(3)?.kind, "appended");
  const fenced = s.outcomeAt(4);
  assert.ok(fenced?.kind === "rejected" && fenced.code === "PRODUCER_FENCED" && /epoch 0 is fenced: epoch 1/.test(fenced.message), JSON.stringify(fenced));
  assert.deepEqual(s.outcomeAt(5), { kind: "duplicate", baseOffset: 1, count: 2, brokerTimestampMs: 1_000 });
  assert.equal(s.producers.epochOf(9), 1);
  assert.equal(s.nextOffset, 3);
});

test("batches without a producer id are never deduplicated; producers are independent", () => {
  const s = founded();
  s.apply([batchEntry(2, 2), batchEntry(3, 2), producerBatchEntry(4, p(1, 0, 0), 1), producerBatchEntry(5, p(2, 0, 0), 1), producerBatchEntry(6, p(1, 0, 1), 1)]);
  assert.equal(s.nextOffset, 7);
});

test("the table keeps at most producersMax producers, evicting the least recently written, the same way on every replica", () => {
  const t = new ProducerStateTable(3);
  for (const id of [1, 2, 3]) t.record({ producerId: id, producerEpoch: 0, baseSequence: 0, count: 1 }, id, 0);
  t.record({ producerId: 1, producerEpoch: 0, baseSequence: 1, count: 1 }, 10, 0); // 1 is now the most recent
  t.record({ producerId: 4, producerEpoch: 0, baseSequence: 0, count: 1 }, 11, 0);
  assert.equal(t.size, 3);
  assert.equal(t.epochOf(2), undefined, "2 was the least recently written");
  assert.deepEqual([1, 3, 4].map((id) => t.epochOf(id)), [0, 0, 0]);
  assert.deepEqual(ProducerStateTable.fromImage(t.toImage(), 3).toImage(), t.toImage(), "the image keeps the eviction order");
  assert.equal(t.check({ producerId: 2, producerEpoch: 0, baseSequence: 57, count: 1 }).kind, "append", "an evicted producer starts over");
});

test("snapshotAt(index) carries the dedup state as of that index; a replica restored from it answers retries like the leader", () => {
  const s = founded();
  s.apply([producerBatchEntry(2, p(5, 0, 0), 2), producerBatchEntry(3, p(5, 0, 2), 2), noopEntry(4), producerBatchEntry(5, p(5, 0, 4), 1), producerBatchEntry(6, p(5, 1, 0), 1)]);
  // As of index 3 the producer is at epoch 0, last sequence 3.
  const at3 = s.snapshotAt(3);
  const r = new PartitionState(GROUP);
  r.restore({ metadata: { index: 3, term: 1, confState: at3.confState }, data: at3.data });
  assert.equal(r.nextOffset, 4);
  assert.equal(r.producers.epochOf(5), 0);
  r.apply([producerBatchEntry(4, p(5, 0, 2), 2)]);
  assert.deepEqual(r.outcomeAt(4), { kind: "duplicate", baseOffset: 2, count: 2, brokerTimestampMs: 1_000 }, "a retry of the batch at 3, after the snapshot");
  r.apply([producerBatchEntry(5, p(5, 0, 4), 1)]);
  assert.deepEqual(r.outcomeAt(5), { kind: "appended", baseOffset: 4, count: 1, brokerTimestampMs: 1_000 });
  // The snapshot of the latest index is the live state (epoch 1).
  const at6 = s.snapshotAt(6);
  const q = new PartitionState(GROUP);
  q.restore({ metadata: { index: 6, term: 1, confState: at6.confState }, data: at6.data });
  assert.equal(q.producers.epochOf(5), 1);
  q.apply([producerBatchEntry(7, p(5, 0, 5), 1)]);
  assert.equal(q.outcomeAt(7)?.kind === "rejected" && q.outcomeAt(7)!.kind, "rejected", "the old epoch stays fenced after a restore");
});

test("compactedTo() keeps the dedup state: retries of compacted batches still answer their offsets", () => {
  const s = founded();
  s.apply([producerBatchEntry(2, p(5, 0, 0), 2), producerBatchEntry(3, p(5, 0, 2), 2), producerBatchEntry(4, p(8, 0, 0), 1)]);
  const before = s.producers.toImage();
  s.compactedTo(3);
  assert.equal(s.logStartOffset, 4);
  assert.deepEqual(s.producers.toImage(), before);
  s.apply([producerBatchEntry(5, p(5, 0, 2), 2)]);
  assert.deepEqual(s.outcomeAt(5), { kind: "duplicate", baseOffset: 2, count: 2, brokerTimestampMs: 1_000 });
  // snapshotAt after a compaction replays from the new base.
  s.apply([producerBatchEntry(6, p(5, 0, 4), 1)]);
  const at4 = s.snapshotAt(4);
  const r = new PartitionState(GROUP);
  r.restore({ metadata: { index: 4, term: 1, confState: at4.confState }, data: at4.data });
  assert.deepEqual(r.producers.toImage(), before);
});

test("a corrupt producer table in a snapshot is refused, naming the index", () => {
  const r = new PartitionState(GROUP);
  const data = new TextEncoder().encode(JSON.stringify({ nextOffset: 3, producers: [[1, 0, "x", []]] }));
  assert.throws(() => r.restore({ metadata: { index: 42, term: 1, confState: { voters: [1], learners: [] } }, data }), /corrupt partition snapshot at index 42/);
});

// ------------------------------------------------------------------------------------- property

type Op = { producer: number; action: "next" | "retry" | "gap" | "newEpoch" | "oldEpoch" | "plain"; count: number };

const opArb: fc.Arbitrary<Op> = fc.record({
  producer: fc.integer({ min: 1, max: 3 }),
  action: fc.constantFrom("next", "next", "next", "retry", "retry", "gap", "newEpoch", "oldEpoch", "plain"),
  count: fc.integer({ min: 1, max: 3 }),
});

/** Entries from client-like producers: correct next batches, retries of the last one, gaps, epoch changes. */
function entriesOf(ops: readonly Op[]): Entry[] {
  const state = new Map<number, { epoch: number; next: number; last?: { seq: number; count: number } }>();
  return ops.map((op, k) => {
    const index = 2 + k;
    if (op.action === "plain") return batchEntry(index, op.count);
    const st = state.get(op.producer) ?? { epoch: 0, next: 0 };
    state.set(op.producer, st);
    let seq = st.next;
    let epoch = st.epoch;
    let count = op.count;
    if (op.action === "retry" && st.last !== undefined) [seq, count] = [st.last.seq, st.last.count];
    else if (op.action === "gap") seq = st.next + 1;
    else if (op.action === "newEpoch") [epoch, seq, st.epoch] = [st.epoch + 1, 0, st.epoch + 1];
    else if (op.action === "oldEpoch") epoch = Math.max(0, st.epoch - 1);
    if (op.action === "next" || op.action === "newEpoch") {
      st.next = seq + count;
      st.last = { seq, count };
    }
    return producerBatchEntry(index, p(op.producer, epoch, seq), count, 1_000 + k);
  });
}

function outcomes(s: PartitionState, from: LogIndex, to: LogIndex): (ProduceOutcome | undefined)[] {
  const out: (ProduceOutcome | undefined)[] = [];
  for (let i = from; i <= to; i++) out.push(s.outcomeAt(i));
  return out;
}

test("property: a replica restored from snapshotAt(k) and given the rest of the log agrees with one that applied it all", () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.nat(), (ops, cutSeed) => {
      const entries = entriesOf(ops);
      const last = entries[entries.length - 1]!.index;
      const whole = founded();
      whole.apply(entries);
      // No offset is ever assigned twice, and appended batches tile the offsets.
      let expected = 0;
      for (const o of outcomes(whole, 2, last)) {
        if (o?.kind === "appended") {
          assert.equal(o.baseOffset, expected);
          expected += o.count;
        }
      }
      assert.equal(whole.nextOffset, expected);

      const k = 2 + (cutSeed % entries.length);
      const prefix = founded();
      prefix.apply(entries.filter((e) => e.index <= k));
      const snap = whole.snapshotAt(k);
      const restored = new PartitionState(GROUP);
      restored.restore({ metadata: { index: k, term: 1, confState: snap.confState }, data: snap.data });
      assert.deepEqual(restored.producers.toImage(), prefix.producers.toImage(), `the dedup state as of ${k}`);
      assert.equal(restored.nextOffset, prefix.nextOffset);
      restored.apply(entries.filter((e) => e.index > k));
      assert.deepEqual(outcomes(restored, k + 1, last), outcomes(whole, k + 1, last), `outcomes after ${k}`);
      assert.deepEqual(restored.producers.toImage(), whole.producers.toImage());

      // Compacting the live replica to k changes nothing it answers.
      whole.compactedTo(k);
      assert.deepEqual(whole.producers.toImage(), restored.producers.toImage());
      const again = whole.snapshotAt(last);
      const r2 = new PartitionState(GROUP);
      r2.restore({ metadata: { index: last, term: 1, confState: again.confState }, data: again.data });
      assert.deepEqual(r2.producers.toImage(), whole.producers.toImage());
    }),
    { seed: SEED, numRuns: 200 },
  );
});

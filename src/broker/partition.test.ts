/**
 * PartitionState: offsets over the Raft log (the worked example of partition.ts), the translation
 * between offsets and Raft indexes, reads with byte limits through a fake entry reader, snapshots
 * (restore, snapshotAt with the membership in force at an index), retention and compaction, and
 * waiting for applies.
 *
 * The property test takes its seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { LogIndex } from "../lib/ids.js";
import { bootstrapSnapshot, entrySizeBytes, type ConfState, type Entry, type Snapshot } from "../raft/index.js";
import { PartitionState, type EntryReader } from "./partition.js";
import { FakeEntryLog, batchEntry, confEntry, noopEntry, record } from "./testing/entries.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_613);
console.log(`partition property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);

const GROUP = 1000;

/** A partition restored from the founding snapshot (index 1) with `voters`. */
function founded(voters: number[] = [1, 2, 3], learners: number[] = []): PartitionState {
  const s = new PartitionState(GROUP);
  s.restore(bootstrapSnapshot(voters, learners));
  return s;
}

/** The worked example of partition.ts's header comment. */
function workedExample(): Entry[] {
  return [noopEntry(2), batchEntry(3, 2), batchEntry(4, 3), confEntry(5, { type: "addLearner", nodeId: 4 }), batchEntry(6, 1)];
}

/** Decodes snapshot data the way a replica does: restore it into a fresh partition. */
function nextOffsetOf(data: Uint8Array, index: LogIndex, confState: ConfState): number {
  const s = new PartitionState(GROUP);
  s.restore({ metadata: { index, term: 1, confState }, data });
  return s.nextOffset;
}

test("worked example: batches get consecutive offsets; no-ops and conf entries get none", () => {
  const s = founded();
  s.apply(workedExample());
  assert.equal(s.nextOffset, 6, "high watermark after applying 6");
  assert.equal(s.appliedIndex, 6);
  assert.equal(s.logStartOffset, 0);
  assert.deepEqual([2, 3, 4, 5, 6].map((i) => s.baseOffsetAt(i)), [undefined, 0, 2, undefined, 5]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((o) => s.indexOfOffset(o)), [3, 3, 4, 4, 4, 6]);
});

test("offsets do not depend on how entries are split across apply() calls", () => {
  const whole = founded();
  whole.apply(workedExample());
  const oneByOne = founded();
  for (const e of workedExample()) oneByOne.apply([e]);
  for (let i = 1; i <= 7; i++) assert.equal(oneByOne.baseOffsetAt(i), whole.baseOffsetAt(i), `base offset at index ${i}`);
  assert.equal(oneByOne.nextOffset, whole.nextOffset);
  assert.equal(oneByOne.appliedIndex, whole.appliedIndex);
});

test("indexOfOffset and baseOffsetAt answer undefined outside what is applied and retained", () => {
  const s = founded();
  assert.equal(s.indexOfOffset(0), undefined, "nothing applied yet");
  s.apply(workedExample());
  assert.equal(s.indexOfOffset(6), undefined, "the high watermark itself holds no record yet");
  assert.equal(s.indexOfOffset(-1), undefined);
  assert.equal(s.indexOfOffset(1_000), undefined);
  assert.equal(s.baseOffsetAt(0), undefined);
  assert.equal(s.baseOffsetAt(7), undefined);
});

type Item = { kind: "noop" } | { kind: "batch"; count: number } | { kind: "conf" };

test("property: offsets match a model over any mix of no-ops, batches and conf entries, however applied", () => {
  const itemArb: fc.Arbitrary<Item> = fc.oneof(
    fc.constant<Item>({ kind: "noop" }),
    fc.integer({ min: 1, max: 5 }).map<Item>((count) => ({ kind: "batch", count })),
    fc.constant<Item>({ kind: "conf" }),
  );
  fc.assert(
    fc.property(fc.array(itemArb, { maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }), (items, chunks) => {
      const entries: Entry[] = [];
      const modelBase = new Map<number, number>();
      let next = 0;
      let learner = 10;
      items.forEach((it, k) => {
        const index = 2 + k;
        if (it.kind === "noop") entries.push(noopEntry(index));
        else if (it.kind === "conf") entries.push(confEntry(index, { type: "addLearner", nodeId: learner++ }));
        else {
          entries.push(batchEntry(index, it.count));
          modelBase.set(index, next);
          next += it.count;
        }
      });
      const s = founded();
      for (let at = 0, c = 0; at < entries.length; c++) {
        const size = chunks[c % chunks.length]!;
        s.apply(entries.slice(at, at + size));
        at += size;
      }
      assert.equal(s.nextOffset, next);
      for (const e of entries) assert.equal(s.baseOffsetAt(e.index), modelBase.get(e.index), `base offset at index ${e.index}`);
      for (const [index, base] of modelBase) {
        const count = (items[index - 2] as { count: number }).count;
        for (let o = base; o < base + count; o++) assert.equal(s.indexOfOffset(o), index, `offset ${o}`);
      }
    }),
    { seed: SEED, numRuns: 150 },
  );
});

// ------------------------------------------------------------------ read()

/** Batches with 10-byte bodies: index 3 → offsets 0-1, 4 (no-op), 5 → 2-4, 6 (conf), 7 → 5. */
function readFixture(): { s: PartitionState; log: FakeEntryLog } {
  const body = (o: number): string => `record-${String(o).padStart(3, "0")}`; // 10 bytes
  const entries = [
    batchEntry(3, [record("a", body(0)), record("b", body(1))]),
    noopEntry(4),
    batchEntry(5, [record("c", body(2)), record("d", body(3)), record("e", body(4))]),
    confEntry(6, { type: "addLearner", nodeId: 4 }),
    batchEntry(7, [record("f", body(5))]),
  ];
  const s = founded();
  s.apply([noopEntry(2), ...entries]);
  return { s, log: new FakeEntryLog([noopEntry(2), ...entries]) };
}

test("read() returns records across batches in offset order, skipping no-ops and conf entries", async () => {
  const { s, log } = readFixture();
  const all = await s.read(0, 1 << 20, log.reader);
  assert.deepEqual(all.map((r) => r.offset), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(all.map((r) => r.id), ["a", "b", "c", "d", "e", "f"]);
  assert.deepEqual(log.calls, [{ lo: 3, hi: 8, maxBytes: 1 << 20 }], "reads from the batch holding the offset up to the applied index");
});

test("read() from the middle of a batch starts at that offset", async () => {
  const { s, log } = readFixture();
  const rs = await s.read(3, 1 << 20, log.reader);
  assert.deepEqual(rs.map((r) => r.offset), [3, 4, 5]);
  assert.equal(log.calls[0]!.lo, 5);
});

test("read() stops at about maxBytes of keys and bodies, but always returns at least one record", async () => {
  const { s, log } = readFixture();
  const unbounded: EntryReader = (lo, hi) => log.reader(lo, hi, Number.MAX_SAFE_INTEGER); // only read()'s own budget applies
  assert.deepEqual((await s.read(0, 25, unbounded)).map((r) => r.offset), [0, 1], "10 + 10 <= 25 < 30");
  assert.deepEqual((await s.read(0, 30, unbounded)).map((r) => r.offset), [0, 1, 2]);
  assert.deepEqual((await s.read(1, 10, unbounded)).map((r) => r.offset), [1]);
  assert.deepEqual((await s.read(2, 0, unbounded)).map((r) => r.offset), [2], "at least one record");
  const big = founded();
  big.apply([batchEntry(2, [record("huge", new Uint8Array(1000), new Uint8Array(50)), record("small", "x")])]);
  const bigLog = new FakeEntryLog([batchEntry(2, [record("huge", new Uint8Array(1000), new Uint8Array(50)), record("small", "x")])]);
  assert.deepEqual((await big.read(0, 100, bigLog.reader)).map((r) => r.id), ["huge"], "one record even if it alone exceeds maxBytes");
});

test("read() counts keys as well as bodies", async () => {
  const key = new Uint8Array(20);
  const entries = [batchEntry(2, [record("a", "0123456789", key), record("b", "0123456789", key)])];
  const s = founded();
  s.apply(entries);
  assert.deepEqual((await s.read(0, 45, new FakeEntryLog(entries).reader)).map((r) => r.id), ["a"], "30 + 30 > 45");
});

test("read() at the high watermark or below the log start returns nothing without reading", async () => {
  const { s, log } = readFixture();
  assert.deepEqual(await s.read(6, 1000, log.reader), []);
  assert.deepEqual(await s.read(-1, 1000, log.reader), []);
  assert.deepEqual(log.calls, []);
});

test("read() returns only the records of the entries the reader returned (the reader bounds bytes too)", async () => {
  const { s, log } = readFixture();
  const first = batchEntry(3, [record("a", "record-000"), record("b", "record-001")]);
  const budget = entrySizeBytes(first); // the fake reader returns just that entry for this budget
  const rs = await s.read(0, budget, log.reader);
  assert.deepEqual(rs.map((r) => r.offset), [0, 1]);
  assert.deepEqual((await s.read(2, budget, log.reader)).map((r) => r.offset).slice(0, 1), [2], "the caller continues from the next offset");
});

// ------------------------------------------------------------------ snapshots

test("restore() from a snapshot: offsets continue from the snapshot's next offset; older batches are gone", async () => {
  const a = founded();
  a.apply(workedExample());
  const snap: Snapshot = { metadata: { index: 6, term: 1, confState: { voters: [1, 2, 3], learners: [4] } }, data: a.snapshotData() };

  const b = founded();
  b.apply([noopEntry(2), batchEntry(3, 9)]); // state that the snapshot must replace
  b.restore(snap);
  assert.equal(b.nextOffset, 6);
  assert.equal(b.logStartOffset, 6, "records before the snapshot are not held here");
  assert.equal(b.appliedIndex, 6);
  assert.equal(b.baseOffsetAt(3), undefined, "the replaced state's batches are forgotten");
  assert.equal(b.indexOfOffset(0), undefined);
  b.apply([batchEntry(7, 3), confEntry(8, { type: "removeNode", nodeId: 4 }), batchEntry(9, 1)]);
  assert.equal(b.baseOffsetAt(7), 6);
  assert.equal(b.baseOffsetAt(9), 9);
  assert.equal(b.nextOffset, 10);
  assert.deepEqual(b.snapshotAt(8).confState, { voters: [1, 2, 3], learners: [] }, "membership continues from the snapshot's");
});

test("restore() of the founding snapshot (empty data) starts at offset 0; corrupt data is refused naming the index", () => {
  const s = new PartitionState(GROUP);
  s.restore(bootstrapSnapshot([1]));
  assert.equal(s.nextOffset, 0);
  const corrupt = (data: string): Snapshot => ({ metadata: { index: 12, term: 2, confState: { voters: [1], learners: [] } }, data: new TextEncoder().encode(data) });
  assert.throws(() => s.restore(corrupt('{"nextOffset":-1}')), /corrupt partition snapshot at index 12/);
  assert.throws(() => s.restore(corrupt('{"nextOffset":1.5}')), /corrupt partition snapshot at index 12/);
  assert.throws(() => s.restore(corrupt("{}")), /corrupt partition snapshot at index 12/);
});

/**
 * Membership over time, starting from voters [1] at index 1:
 *
 *   index  2     3         4              5         6             7         8            9
 *   entry  noop  batch(2)  +learner 2     batch(1)  +voter 2      batch(3)  -node 1      noop
 *   conf   {1}   {1}       {1 | l:2}      {1 | l:2} {1,2}         {1,2}     {2}          {2}
 *   next   0     2         2              3         3             6         6            6
 */
function membershipExample(): PartitionState {
  const s = founded([1]);
  s.apply([
    noopEntry(2),
    batchEntry(3, 2),
    confEntry(4, { type: "addLearner", nodeId: 2 }),
    batchEntry(5, 1),
    confEntry(6, { type: "addVoter", nodeId: 2 }),
    batchEntry(7, 3),
    confEntry(8, { type: "removeNode", nodeId: 1 }),
    noopEntry(9),
  ]);
  return s;
}

const V1: ConfState = { voters: [1], learners: [] };
const V1L2: ConfState = { voters: [1], learners: [2] };
const V12: ConfState = { voters: [1, 2], learners: [] };
const V2: ConfState = { voters: [2], learners: [] };

test("snapshotAt(index) gives the membership in force at that index and the next offset there", () => {
  const s = membershipExample();
  const expected: [LogIndex, ConfState, number][] = [
    [1, V1, 0],
    [2, V1, 0],
    [3, V1, 2],
    [4, V1L2, 2],
    [5, V1L2, 3],
    [6, V12, 3],
    [7, V12, 6],
    [8, V2, 6],
    [9, V2, 6],
  ];
  for (const [index, conf, next] of expected) {
    const snap = s.snapshotAt(index);
    assert.deepEqual(snap.confState, conf, `membership at index ${index}`);
    assert.equal(nextOffsetOf(snap.data, index, snap.confState), next, `next offset at index ${index}`);
  }
  assert.throws(() => s.snapshotAt(0), /no membership known at index 0/);
});

test("a conf change that does not apply (adding an existing voter) leaves the membership unchanged", () => {
  const s = founded([1, 2]);
  s.apply([confEntry(2, { type: "addVoter", nodeId: 2 }), confEntry(3, { type: "removeNode", nodeId: 9 })]);
  assert.deepEqual(s.snapshotAt(3).confState, { voters: [1, 2], learners: [] });
  assert.equal(s.appliedIndex, 3);
});

test("compactedTo() moves the log start to the first retained batch and keeps the membership in force", async () => {
  const s = membershipExample();
  s.compactedTo(5);
  assert.equal(s.logStartOffset, 3, "offsets 0-2 (batches at 3 and 5) are gone");
  assert.equal(s.nextOffset, 6, "the high watermark does not move");
  assert.equal(s.indexOfOffset(2), undefined);
  assert.equal(s.indexOfOffset(3), 7);
  assert.equal(s.baseOffsetAt(5), undefined);
  assert.deepEqual(s.snapshotAt(5).confState, V1L2, "the membership at the compaction point survives");
  assert.deepEqual(s.snapshotAt(6).confState, V12);
  assert.deepEqual(s.snapshotAt(9).confState, V2);
  assert.equal(nextOffsetOf(s.snapshotAt(6).data, 6, V12), 3);

  const log = new FakeEntryLog([batchEntry(7, 3), confEntry(8, { type: "removeNode", nodeId: 1 }), noopEntry(9)]);
  assert.deepEqual(await s.read(2, 1000, log.reader), [], "below the log start nothing is read");
  assert.deepEqual((await s.read(3, 1000, log.reader)).map((r) => r.offset), [3, 4, 5]);

  s.compactedTo(9);
  assert.equal(s.logStartOffset, 6, "every batch gone: the log start is the high watermark");
  assert.equal(s.indexOfOffset(5), undefined);
  assert.deepEqual(s.snapshotAt(9).confState, V2);
  s.apply([batchEntry(10, 2)]);
  assert.equal(s.baseOffsetAt(10), 6, "offsets continue after compaction");
  assert.equal(s.logStartOffset, 6);
});

test("retentionPoint(cutoff) is the last batch of the prefix older than the cutoff", () => {
  const s = founded();
  s.apply([noopEntry(2), batchEntry(3, 1, 100), batchEntry(4, 1, 200), confEntry(5, { type: "addLearner", nodeId: 4 }), batchEntry(6, 1, 300)]);
  assert.equal(s.retentionPoint(100), undefined, "a batch exactly at the cutoff is kept");
  assert.equal(s.retentionPoint(101), 3);
  assert.equal(s.retentionPoint(250), 4);
  assert.equal(s.retentionPoint(10_000), 6);
  assert.equal(founded().retentionPoint(10_000), undefined, "no batches");
  s.compactedTo(4);
  assert.equal(s.retentionPoint(250), undefined, "compacted batches are not candidates again");
  assert.equal(s.retentionPoint(301), 6);
});

test("retentionPoint never skips over a newer batch (broker time may step back across leaders)", () => {
  const s = founded();
  s.apply([batchEntry(2, 1, 100), batchEntry(3, 1, 300), batchEntry(4, 1, 200)]);
  assert.equal(s.retentionPoint(250), 2);
});

// ------------------------------------------------------------------ waiting

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test("waitForApply() resolves on the next apply, for every waiter, and not before", async () => {
  const s = founded();
  const woke: string[] = [];
  const a = s.waitForApply();
  const b = s.waitForApply();
  void a.promise.then(() => woke.push("a"));
  void b.promise.then(() => woke.push("b"));
  await turn();
  assert.deepEqual(woke, []);
  s.apply([noopEntry(2)]);
  await turn();
  assert.deepEqual(woke.sort(), ["a", "b"]);

  const c = s.waitForApply();
  let cWoke = false;
  void c.promise.then(() => (cWoke = true));
  await turn();
  assert.equal(cWoke, false, "an earlier apply does not wake a later waiter");
  s.apply([batchEntry(3, 1)]);
  await turn();
  assert.equal(cWoke, true);
});

test("waitForApply().cancel() resolves the waiter at once and removes it", async () => {
  const s = founded();
  const w = s.waitForApply();
  let woke = false;
  void w.promise.then(() => (woke = true));
  w.cancel();
  await turn();
  assert.equal(woke, true);
  // White-box: every long poll that times out cancels its waiter; a waiter left behind would leak.
  assert.equal((s as unknown as { waiters: unknown[] }).waiters.length, 0);
});

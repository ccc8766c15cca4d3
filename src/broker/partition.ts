/**
 * One partition replica: the state machine of the partition's Raft group. The partition's
 * message log IS its Raft log (no second copy): each committed record batch entry gets the next
 * offsets, and the partition keeps only an in-memory table from batch to Raft index to find
 * records by offset. Raft indexes and client offsets are different types, translated here.
 *
 *   raft index   2(no-op)  3(batch of 2)  4(batch of 3)  5(conf)  6(batch of 1)
 *   base offset     -           0              2            -          5
 *   high watermark after applying 6: 6
 *
 * Batches of idempotent producers go through the deduplication table (producer-state.ts) when
 * applied: a duplicate or a rejected batch stays in the Raft log but gets no offsets. The batch
 * table keeps each appended batch's producer id, epoch and sequence, so the deduplication state as
 * of any retained index can be rebuilt (snapshotAt) from the state at the table's base — the last
 * snapshot restored or compaction point — by replaying the batches up to that index.
 *
 * Failpoint `broker/dedup-off` (lib/failpoints.ts, for fault testing only): every batch is
 * appended as new, without the deduplication check. It is node-wide and must be enabled on every
 * replica alike, or replicas would give the same log different offsets.
 */
import { NO_FAILPOINTS, type Failpoints } from "../lib/failpoints.js";
import type { GroupId, LogIndex, Offset } from "../lib/ids.js";
import { decodeConfChange, nextConfState, type ConfState, type Entry, type Snapshot } from "../raft/index.js";
import type { GroupStateMachine } from "../multiraft/multiraft.js";
import { KIND_RECORDS, decodeBatch, readBatchHeader, type StoredRecord } from "./record-batch.js";
import { OutcomeLog, ProducerStateTable, type DedupDecision, type ProduceOutcome, type ProducerBatchHeader } from "./producer-state.js";

/** The state kept in a partition snapshot. */
interface PartitionSnapshot {
  readonly nextOffset: number;
  /** The deduplication table (ProducerStateTable image); absent in snapshots of a new group. */
  readonly producers?: unknown;
}

/** Reads committed entries of the group from storage (async; bypasses the Raft core's cache). */
export type EntryReader = (lo: LogIndex, hi: LogIndex, maxBytes: number) => Promise<Entry[]>;

/** One stored batch as fetched raw: its bytes as the leader stored them and its first offset. */
export interface StoredBatch {
  readonly baseOffset: Offset;
  readonly count: number;
  readonly data: Uint8Array;
}

export class PartitionState implements GroupStateMachine {
  /** Offset of the first retained record. */
  logStartOffset: Offset = 0;
  /** The high watermark: the offset the next committed record gets. Everything below is committed. */
  nextOffset: Offset = 0;
  /** Highest applied Raft index. */
  appliedIndex: LogIndex = 0;
  // Parallel arrays, ascending: batch entries' Raft index, base offset and broker timestamp.
  private readonly batchIndexes: LogIndex[] = [];
  private readonly batchOffsets: Offset[] = [];
  private readonly batchTimestamps: number[] = [];
  private readonly batchCounts: number[] = [];
  /** Producer id (0: none), epoch and base sequence of each batch, for rebuilding the dedup state. */
  private readonly batchProducerIds: number[] = [];
  private readonly batchEpochs: number[] = [];
  private readonly batchSequences: number[] = [];
  /** The deduplication state as of the batch table's base (before its first batch). */
  private producersBase = new ProducerStateTable();
  /** The deduplication state as of the applied index. */
  private producersNow = new ProducerStateTable();
  /** What recently applied batch entries did, for the proposer's answer. */
  private readonly outcomes = new OutcomeLog();
  /** Membership changes since the last snapshot, to know the membership at any retained index. */
  private confHistory: { index: LogIndex; conf: ConfState }[] = [];
  private waiters: (() => void)[] = [];
  /** False with failpoint broker/dedup-off: batches are appended without the deduplication check. */
  private readonly dedup: boolean;

  constructor(readonly group: GroupId, failpoints: Failpoints = NO_FAILPOINTS) {
    this.dedup = !failpoints.enabled("broker/dedup-off");
  }

  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.appliedIndex = e.index;
      if (e.type === "conf") {
        this.applyConfEntry(e);
        continue;
      }
      if (e.data.byteLength === 0) continue;
      const header = readBatchHeader(e.data);
      if (header === undefined || header.kind !== KIND_RECORDS) continue;
      this.applyBatch(e.index, header);
    }
    if (this.waiters.length > 0) {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }
  }

  private applyBatch(index: LogIndex, header: ProducerBatchHeader & { brokerTimestampMs: number }): void {
    const decision: DedupDecision = this.dedup ? this.producersNow.check(header) : { kind: "append" };
    if (decision.kind === "duplicate") {
      const b = decision.batch;
      this.outcomes.set(index, { kind: "duplicate", baseOffset: b.baseOffset, count: b.count, brokerTimestampMs: b.brokerTimestampMs });
      return;
    }
    if (decision.kind === "reject") {
      this.outcomes.set(index, { kind: "rejected", code: decision.code, message: decision.message });
      return;
    }
    const baseOffset = this.nextOffset;
    this.batchIndexes.push(index);
    this.batchOffsets.push(baseOffset);
    this.batchTimestamps.push(header.brokerTimestampMs);
    this.batchCounts.push(header.count);
    this.batchProducerIds.push(header.producerId);
    this.batchEpochs.push(header.producerEpoch);
    this.batchSequences.push(header.baseSequence);
    this.producersNow.record(header, baseOffset, header.brokerTimestampMs);
    this.nextOffset += header.count;
    this.outcomes.set(index, { kind: "appended", baseOffset, count: header.count, brokerTimestampMs: header.brokerTimestampMs });
  }

  /** What applying the batch entry at `index` did; undefined if unknown (not a batch, or long ago). */
  outcomeAt(index: LogIndex): ProduceOutcome | undefined {
    return this.outcomes.get(index);
  }

  /** The deduplication state as of the applied index (read-only use: pre-checks on the leader). */
  get producers(): ProducerStateTable {
    return this.producersNow;
  }

  restore(snapshot: Snapshot): void {
    const state = decodeSnapshot(snapshot.metadata.index, snapshot.data);
    this.nextOffset = state.nextOffset;
    this.logStartOffset = state.nextOffset;
    this.appliedIndex = snapshot.metadata.index;
    this.batchIndexes.length = 0;
    this.batchOffsets.length = 0;
    this.batchTimestamps.length = 0;
    this.batchCounts.length = 0;
    this.batchProducerIds.length = 0;
    this.batchEpochs.length = 0;
    this.batchSequences.length = 0;
    this.producersBase = state.producers;
    this.producersNow = state.producers.clone();
    this.outcomes.clear();
    this.confHistory = [{ index: snapshot.metadata.index, conf: snapshot.metadata.confState }];
  }

  snapshotData(): Uint8Array {
    return encodeSnapshot(this.nextOffset, this.producersNow);
  }

  private applyConfEntry(e: Entry): void {
    const current = this.confHistory[this.confHistory.length - 1];
    if (current === undefined) return; // restore() always runs first; nothing to track without a base
    const next = nextConfState(current.conf, decodeConfChange(e.data));
    if (next !== undefined) this.confHistory.push({ index: e.index, conf: next });
  }

  /**
   * The last batch index whose records are all older than `cutoffMs` (broker time): where
   * retention may compact to. Undefined if no batch is that old.
   */
  retentionPoint(cutoffMs: number): LogIndex | undefined {
    // Timestamps only grow within one leadership, but may step back across leaders: scan, bounded by the table.
    let last = -1;
    for (let i = 0; i < this.batchTimestamps.length && this.batchTimestamps[i]! < cutoffMs; i++) last = i;
    return last < 0 ? undefined : this.batchIndexes[last];
  }

  /** The snapshot of this partition as of applied index `index`: its membership then and its data. */
  snapshotAt(index: LogIndex): { confState: ConfState; data: Uint8Array } {
    let conf: ConfState | undefined;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    if (conf === undefined) throw new Error(`partition ${this.group}: no membership known at index ${index}`);
    // The offset at `index` is the base offset of the first batch after it.
    const after = upperBound(this.batchIndexes, index);
    const nextOffset = after < this.batchOffsets.length ? this.batchOffsets[after]! : this.nextOffset;
    return { confState: conf, data: encodeSnapshot(nextOffset, this.producersAsOf(after)) };
  }

  /** The deduplication state after the first `batches` batches of the table: the base with them replayed. */
  private producersAsOf(batches: number): ProducerStateTable {
    if (batches === this.batchIndexes.length) return this.producersNow;
    const table = this.producersBase.clone();
    for (let i = 0; i < batches; i++) {
      const header = { producerId: this.batchProducerIds[i]!, producerEpoch: this.batchEpochs[i]!, baseSequence: this.batchSequences[i]!, count: this.batchCounts[i]! };
      table.record(header, this.batchOffsets[i]!, this.batchTimestamps[i]!);
    }
    return table;
  }

  /** Forgets batches at or below a compaction point (retention): their records are gone. */
  compactedTo(index: LogIndex): void {
    let drop = 0;
    while (drop < this.batchIndexes.length && this.batchIndexes[drop]! <= index) drop++;
    const base = this.producersAsOf(drop);
    this.producersBase = base === this.producersNow ? base.clone() : base;
    for (const column of [this.batchIndexes, this.batchOffsets, this.batchTimestamps, this.batchCounts, this.batchProducerIds, this.batchEpochs, this.batchSequences]) {
      column.splice(0, drop);
    }
    this.logStartOffset = this.batchOffsets[0] ?? this.nextOffset;
    // Keep the membership in force at `index` as the new base.
    let confBase = 0;
    for (let i = 0; i < this.confHistory.length; i++) if (this.confHistory[i]!.index <= index) confBase = i;
    this.confHistory = this.confHistory.slice(confBase);
  }

  /** The base offset of the batch stored at Raft index `index`, if that entry is an applied batch. */
  baseOffsetAt(index: LogIndex): Offset | undefined {
    const i = lowerBound(this.batchIndexes, index);
    return this.batchIndexes[i] === index ? this.batchOffsets[i] : undefined;
  }

  /** The Raft index of the batch that holds `offset`, or undefined if none does (yet). */
  indexOfOffset(offset: Offset): LogIndex | undefined {
    if (offset < this.logStartOffset || offset >= this.nextOffset) return undefined;
    // The last batch whose base offset is <= offset.
    const i = upperBound(this.batchOffsets, offset) - 1;
    return i >= 0 ? this.batchIndexes[i] : undefined;
  }

  /**
   * Reads committed records from `offset`, at most about `maxBytes` of record keys and bodies (at
   * least one record if any is available). Expired records are included (the caller decides).
   */
  async read(offset: Offset, maxBytes: number, readEntries: EntryReader): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (const batch of await this.readBatches(offset, maxBytes, readEntries)) {
      for (const r of decodeBatch(batch.data, batch.baseOffset)) {
        if (r.offset < offset) continue;
        bytes += r.body.byteLength + r.key.byteLength;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(r);
      }
    }
    return out;
  }

  /**
   * Reads committed batches as stored, from the one holding `offset` (which may start below it),
   * at most about `maxBytes` of entry data (at least one batch if any is available).
   */
  async readBatches(offset: Offset, maxBytes: number, readEntries: EntryReader): Promise<StoredBatch[]> {
    const start = this.indexOfOffset(offset);
    if (start === undefined) return [];
    const entries = await readEntries(start, this.appliedIndex + 1, maxBytes);
    const out: StoredBatch[] = [];
    for (const e of entries) {
      const i = lowerBound(this.batchIndexes, e.index);
      if (this.batchIndexes[i] !== e.index) continue; // no-ops, conf changes, duplicates, rejected, or compacted meanwhile
      out.push({ baseOffset: this.batchOffsets[i]!, count: this.batchCounts[i]!, data: e.data });
    }
    return out;
  }

  /**
   * The offset of the first retained record whose batch the leader accepted at or after
   * `timestampMs` (broker time), or the high watermark if none was. Timestamps may step back across
   * leaders, so this scans in log order (bounded by the batch table) rather than bisecting.
   */
  offsetForTimestamp(timestampMs: number): Offset {
    for (let i = 0; i < this.batchTimestamps.length; i++) if (this.batchTimestamps[i]! >= timestampMs) return this.batchOffsets[i]!;
    return this.nextOffset;
  }

  /** Resolves when a new entry is applied, or after `timeoutMs` via the caller's timer. */
  waitForApply(): { promise: Promise<void>; cancel(): void } {
    let cancel = (): void => {};
    const promise = new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      cancel = () => {
        this.waiters = this.waiters.filter((w) => w !== resolve);
        resolve();
      };
    });
    return { promise, cancel };
  }
}

function encodeSnapshot(nextOffset: Offset, producers: ProducerStateTable): Uint8Array {
  const state: PartitionSnapshot = { nextOffset, producers: producers.toImage() };
  return new TextEncoder().encode(JSON.stringify(state));
}

function decodeSnapshot(index: LogIndex, data: Uint8Array): { nextOffset: Offset; producers: ProducerStateTable } {
  if (data.byteLength === 0) return { nextOffset: 0, producers: new ProducerStateTable() }; // the membership snapshot of a new group
  const parsed = JSON.parse(new TextDecoder().decode(data)) as Partial<PartitionSnapshot>;
  if (typeof parsed.nextOffset !== "number" || !Number.isSafeInteger(parsed.nextOffset) || parsed.nextOffset < 0) {
    throw new Error(`corrupt partition snapshot at index ${index}: ${JSON.stringify(parsed).slice(0, 200)}`);
  }
  try {
    return { nextOffset: parsed.nextOffset, producers: ProducerStateTable.fromImage(parsed.producers ?? []) };
  } catch (e) {
    throw new Error(`corrupt partition snapshot at index ${index}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** First position whose value is >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First position whose value is > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

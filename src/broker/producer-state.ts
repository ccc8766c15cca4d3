/**
 * Idempotent producers, per partition: the deduplication state that makes a retried produce
 * answer with the original offsets instead of writing the records again. It is part of the
 * partition's replicated state (partition.ts applies every batch through it, on every replica,
 * from the Raft log alone), so it survives leader changes and restarts, and it travels in
 * partition snapshots.
 *
 * Per producer id the table keeps the epoch, the last sequence number written, and the last
 * RECENT_BATCHES_MAX batches (base sequence, count, base offset, broker timestamp). A batch of
 * producer P, epoch E, base sequence S and n records is, against P's entry:
 *
 *   no entry for P                       append (start tracking P from S)
 *   E <  entry.epoch                     reject PRODUCER_FENCED (a zombie of an older session)
 *   E >  entry.epoch, S = 0              append (a new session; forget the old epoch's batches)
 *   E >  entry.epoch, S > 0              reject OUT_OF_ORDER_SEQUENCE
 *   E = epoch, a recent batch starts at S with n records   duplicate: answer its offsets
 *   E = epoch, S = lastSequence + 1      append
 *   otherwise                            reject OUT_OF_ORDER_SEQUENCE (a gap, or an old duplicate)
 *
 * Worked example (epoch 0): batches S=0 n=3 → offsets 0-2; S=3 n=2 → offsets 3-4; S=3 n=2 again
 * (a retry) → duplicate, answers base offset 3; S=7 → out of order (expected 5); epoch 1 S=0 →
 * append; epoch 0 S=5 → fenced.
 *
 * Bounded: at most PRODUCERS_PER_PARTITION_MAX producers, the least recently written evicted
 * first (Map insertion order, refreshed on every write, identical on every replica). An evicted
 * producer is "no entry" again: its next batch is accepted as it comes, so a retry of a batch
 * older than the eviction could be written twice — only possible after a thousand other producers
 * wrote to the partition while the retry was pending.
 */
import type { LogIndex, Offset } from "../lib/ids.js";

export const RECENT_BATCHES_MAX = 5;
export const PRODUCERS_PER_PARTITION_MAX = 1000;
/** Sequence numbers are u32 in the batch header. */
export const SEQUENCE_MAX = 0xffff_ffff;

/** The producer fields of a batch header, and its record count. */
export interface ProducerBatchHeader {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly count: number;
}

export interface ProducerBatch {
  readonly baseSequence: number;
  readonly count: number;
  readonly baseOffset: Offset;
  readonly brokerTimestampMs: number;
}

interface ProducerEntry {
  epoch: number;
  /** Sequence of the last record written in this epoch. */
  lastSequence: number;
  /** Ascending by sequence; at most RECENT_BATCHES_MAX. */
  recent: ProducerBatch[];
}

export type DedupDecision =
  | { readonly kind: "append" }
  | { readonly kind: "duplicate"; readonly batch: ProducerBatch }
  | { readonly kind: "reject"; readonly code: "OUT_OF_ORDER_SEQUENCE" | "PRODUCER_FENCED"; readonly message: string };

const APPEND: DedupDecision = { kind: "append" };

/** Snapshot form: [producerId, epoch, lastSequence, [[baseSequence, count, baseOffset, brokerTimestampMs], ...]], in eviction order. */
export type ProducerStateImage = [number, number, number, [number, number, number, number][]][];

export class ProducerStateTable {
  /** Least recently written first. */
  private readonly producers = new Map<number, ProducerEntry>();

  constructor(private readonly producersMax = PRODUCERS_PER_PARTITION_MAX) {}

  get size(): number {
    return this.producers.size;
  }

  /** The current epoch known for `producerId` on this partition, if any. */
  epochOf(producerId: number): number | undefined {
    return this.producers.get(producerId)?.epoch;
  }

  /** What applying a batch with this header would do (pure: no change). */
  check(h: ProducerBatchHeader): DedupDecision {
    if (h.producerId === 0) return APPEND;
    if (h.baseSequence + h.count - 1 > SEQUENCE_MAX) {
      return reject("OUT_OF_ORDER_SEQUENCE", `producer ${h.producerId}: sequence ${h.baseSequence} + ${h.count} records passes ${SEQUENCE_MAX}; start a new producer session`);
    }
    const entry = this.producers.get(h.producerId);
    if (entry === undefined) return APPEND;
    if (h.producerEpoch < entry.epoch) {
      return reject("PRODUCER_FENCED", `producer ${h.producerId} epoch ${h.producerEpoch} is fenced: epoch ${entry.epoch} has written to this partition since`);
    }
    if (h.producerEpoch > entry.epoch) {
      return h.baseSequence === 0 ? APPEND : reject("OUT_OF_ORDER_SEQUENCE", `producer ${h.producerId}: the first batch of epoch ${h.producerEpoch} must have sequence 0, got ${h.baseSequence}`);
    }
    const same = entry.recent.find((b) => b.baseSequence === h.baseSequence);
    if (same !== undefined) {
      if (same.count === h.count) return { kind: "duplicate", batch: same };
      return reject("OUT_OF_ORDER_SEQUENCE", `producer ${h.producerId}: sequence ${h.baseSequence} was written by a batch of ${same.count} records, not ${h.count}`);
    }
    if (h.baseSequence === entry.lastSequence + 1) return APPEND;
    if (h.baseSequence <= entry.lastSequence) {
      return reject("OUT_OF_ORDER_SEQUENCE", `producer ${h.producerId}: sequence ${h.baseSequence} was already written (last is ${entry.lastSequence}) by a batch older than the last ${RECENT_BATCHES_MAX}`);
    }
    return reject("OUT_OF_ORDER_SEQUENCE", `producer ${h.producerId}: expected sequence ${entry.lastSequence + 1}, got ${h.baseSequence}; a batch is missing`);
  }

  /** Records an appended batch (one that check() answered "append" for). */
  record(h: ProducerBatchHeader, baseOffset: Offset, brokerTimestampMs: number): void {
    if (h.producerId === 0) return;
    let entry = this.producers.get(h.producerId);
    if (entry === undefined || entry.epoch !== h.producerEpoch) entry = { epoch: h.producerEpoch, lastSequence: -1, recent: [] };
    entry.lastSequence = h.baseSequence + h.count - 1;
    entry.recent.push({ baseSequence: h.baseSequence, count: h.count, baseOffset, brokerTimestampMs });
    if (entry.recent.length > RECENT_BATCHES_MAX) entry.recent.shift();
    // Re-insert to mark it most recently written.
    this.producers.delete(h.producerId);
    this.producers.set(h.producerId, entry);
    while (this.producers.size > this.producersMax) this.producers.delete(this.producers.keys().next().value!);
  }

  clone(): ProducerStateTable {
    return ProducerStateTable.fromImage(this.toImage(), this.producersMax);
  }

  toImage(): ProducerStateImage {
    return [...this.producers].map(([id, e]) => [id, e.epoch, e.lastSequence, e.recent.map((b) => [b.baseSequence, b.count, b.baseOffset, b.brokerTimestampMs])]);
  }

  /** Rebuilds a table from a snapshot image; throws on a malformed one. */
  static fromImage(image: unknown, producersMax = PRODUCERS_PER_PARTITION_MAX): ProducerStateTable {
    const table = new ProducerStateTable(producersMax);
    if (!Array.isArray(image)) throw new Error(`producer state is not a list: ${JSON.stringify(image)?.slice(0, 100)}`);
    for (const item of image as unknown[]) {
      if (!Array.isArray(item) || item.length !== 4 || !Array.isArray(item[3]) || !allSafeIntegers(item.slice(0, 3))) {
        throw new Error(`malformed producer state entry ${JSON.stringify(item)?.slice(0, 100)}`);
      }
      const recent = (item[3] as unknown[]).map((b) => {
        if (!Array.isArray(b) || b.length !== 4 || !allSafeIntegers(b.slice(0, 3)) || typeof b[3] !== "number") throw new Error(`malformed producer batch ${JSON.stringify(b)}`);
        return { baseSequence: b[0] as number, count: b[1] as number, baseOffset: b[2] as number, brokerTimestampMs: b[3] as number };
      });
      table.producers.set(item[0] as number, { epoch: item[1] as number, lastSequence: item[2] as number, recent });
    }
    return table;
  }
}

function allSafeIntegers(values: readonly unknown[]): boolean {
  return values.every((v) => typeof v === "number" && Number.isSafeInteger(v));
}

function reject(code: "OUT_OF_ORDER_SEQUENCE" | "PRODUCER_FENCED", message: string): DedupDecision {
  return { kind: "reject", code, message };
}

/** What applying one batch entry did, kept briefly so the proposer can answer its client. */
export type ProduceOutcome =
  | { readonly kind: "appended"; readonly baseOffset: Offset; readonly count: number; readonly brokerTimestampMs: number }
  | { readonly kind: "duplicate"; readonly baseOffset: Offset; readonly count: number; readonly brokerTimestampMs: number }
  | { readonly kind: "rejected"; readonly code: "OUT_OF_ORDER_SEQUENCE" | "PRODUCER_FENCED"; readonly message: string };

/** A bounded map from Raft index to the outcome of the batch applied there (oldest dropped first). */
export class OutcomeLog {
  private readonly outcomes = new Map<LogIndex, ProduceOutcome>();

  constructor(private readonly capacity = 4096) {}

  set(index: LogIndex, outcome: ProduceOutcome): void {
    this.outcomes.set(index, outcome);
    if (this.outcomes.size > this.capacity) this.outcomes.delete(this.outcomes.keys().next().value!);
  }

  get(index: LogIndex): ProduceOutcome | undefined {
    return this.outcomes.get(index);
  }

  clear(): void {
    this.outcomes.clear();
  }
}

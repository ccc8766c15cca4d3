/**
 * Helpers for partition tests: Raft entries of the kinds a partition group carries (no-ops, record
 * batches, membership changes) and a fake {@link EntryReader} over an in-memory log.
 */
import type { LogIndex } from "../../lib/ids.js";
import { encodeConfChange, entrySizeBytes, type ConfChange, type Entry } from "../../raft/index.js";
import type { EntryReader } from "../partition.js";
import { encodeBatch, type BatchProducer, type ProducedRecord } from "../record-batch.js";

const TERM = 1;

export function noopEntry(index: LogIndex, term = TERM): Entry {
  return { term, index, type: "normal", data: new Uint8Array() };
}

export function confEntry(index: LogIndex, cc: ConfChange, term = TERM): Entry {
  return { term, index, type: "conf", data: encodeConfChange(cc) };
}

/** A record with the given id and body (key and headers empty). */
export function record(id: string, body: string | Uint8Array = id, key: Uint8Array = new Uint8Array()): ProducedRecord {
  return { id, key, headers: [], body: typeof body === "string" ? new TextEncoder().encode(body) : body, producerTimestampMs: 0 };
}

/** A batch entry; `records` may be a count (records named `<index>.<i>`). */
export function batchEntry(index: LogIndex, records: number | readonly ProducedRecord[], brokerTimestampMs = 1_000, term = TERM): Entry {
  const list = typeof records === "number" ? Array.from({ length: records }, (_, i) => record(`${index}.${i}`)) : records;
  return { term, index, type: "normal", data: encodeBatch(list, brokerTimestampMs) };
}

/** A batch entry of an idempotent producer: `count` records named `<index>.<i>`. */
export function producerBatchEntry(index: LogIndex, producer: BatchProducer, count: number, brokerTimestampMs = 1_000, term = TERM): Entry {
  const list = Array.from({ length: count }, (_, i) => record(`${index}.${i}`));
  return { term, index, type: "normal", data: encodeBatch(list, brokerTimestampMs, { producer }) };
}

/**
 * An in-memory log that answers like `RaftStore.readEntries`: entries [lo, hi) present in the
 * log, at most `maxBytes` of entries (at least one). Records every call for assertions.
 */
export class FakeEntryLog {
  readonly calls: { lo: LogIndex; hi: LogIndex; maxBytes: number }[] = [];
  private readonly entries = new Map<LogIndex, Entry>();

  constructor(entries: readonly Entry[] = []) {
    for (const e of entries) this.entries.set(e.index, e);
  }

  add(...entries: Entry[]): void {
    for (const e of entries) this.entries.set(e.index, e);
  }

  /** Forgets entries up to and including `index` (a compaction). */
  compact(index: LogIndex): void {
    for (const i of [...this.entries.keys()]) if (i <= index) this.entries.delete(i);
  }

  readonly reader: EntryReader = async (lo, hi, maxBytes) => {
    this.calls.push({ lo, hi, maxBytes });
    await Promise.resolve();
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entries.get(i);
      if (e === undefined) throw new Error(`fake log has no entry ${i}`);
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  };
}

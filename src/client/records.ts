/**
 * Records as applications write and read them, and their conversion to and from the wire.
 * Strings are encoded as UTF-8. A record without an id gets a fresh UUID here, in the client,
 * so that a retried produce re-sends the same id and duplicates stay recognisable.
 */
import { BatchFormatError, decodeBatch, isExpired, type ProducedRecord, type StoredRecord } from "../format/index.js";
import { UnavailableError } from "./errors.js";
import type { WireBatch, WireRecord } from "./wire.js";

/** Bytes, or a string taken as UTF-8. */
export type Bytes = string | Uint8Array;

/** Headers as an object, or as [key, value] pairs when a key repeats. */
export type HeadersInit = Readonly<Record<string, Bytes>> | ReadonlyArray<readonly [string, Bytes]>;

/** A record to produce. */
export interface ProduceRecord {
  /** Routing key: records with the same key go to the same partition and keep their order. */
  readonly key?: Bytes | null;
  readonly body: Bytes;
  readonly headers?: HeadersInit;
  /** Unique id; the client generates a UUID when absent. */
  readonly id?: string;
  /** When the record was created (Unix ms); defaults to the client clock's wall time. */
  readonly producerTimestampMs?: number;
  /** Request-reply: ties a reply to its request. */
  readonly correlationId?: string;
  /** Request-reply: where the reply should go (a topic or inbox name). */
  readonly replyTo?: string;
  /** MIME type of the body, e.g. "application/json". */
  readonly contentType?: string;
  /** Time to live in ms from when the broker accepts the record; fetches skip it afterwards. Default 0: never expires. */
  readonly ttlMs?: number;
  /** 0 (default, lowest) to 9. Carried to consumers; the broker does not reorder by it yet. */
  readonly priority?: number;
}

/** Where a produced record was stored. */
export interface ProduceResult {
  readonly partition: number;
  readonly offset: number;
}

/** A record read from a partition. */
export interface FetchedRecord {
  readonly partition: number;
  readonly offset: number;
  /** null when the record was produced without a key (or with an empty one). */
  readonly key: Buffer | null;
  readonly headers: ReadonlyArray<{ readonly key: string; readonly value: Buffer }>;
  readonly body: Buffer;
  readonly id: string;
  readonly producerTimestampMs: number;
  readonly brokerTimestampMs: number;
  /** "" when not set. */
  readonly correlationId: string;
  /** "" when not set. */
  readonly replyTo: string;
  /** "" when not set. */
  readonly contentType: string;
  /** 0: never expires. */
  readonly ttlMs: number;
  readonly priority: number;
  /** The TTL had passed at the leader's clock (only returned with includeExpired). */
  readonly expired: boolean;
}

/** The answer to a fetch. */
export interface FetchResult {
  /** Committed records from the requested offset, in offset order; may be empty. */
  readonly records: readonly FetchedRecord[];
  /** Offset the next record will get. */
  readonly highWatermark: number;
  readonly logStartOffset: number;
  /** Offset to fetch next. */
  readonly nextOffset: number;
}

/** Per-record framing counted on top of key, headers, body and id when sizing batches, in bytes. */
const RECORD_OVERHEAD_BYTES = 32;

/** Encodes a string as UTF-8; passes bytes through. */
export function toBytes(value: Bytes): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** The wire form of `record`, filling in the id and producer timestamp when absent. */
export function toWireRecord(record: ProduceRecord, newId: () => string, nowMs: number): WireRecord {
  return {
    key: record.key === undefined || record.key === null ? Buffer.alloc(0) : toBytes(record.key),
    headers: headerPairs(record.headers).map(([key, value]) => ({ key, value: toBytes(value) })),
    body: toBytes(record.body),
    id: record.id ?? newId(),
    producerTimestampMs: record.producerTimestampMs ?? Math.floor(nowMs),
    correlationId: record.correlationId ?? "",
    replyTo: record.replyTo ?? "",
    contentType: record.contentType ?? "",
    ttlMs: record.ttlMs ?? 0,
    priority: record.priority ?? 0,
  };
}

/** The batch-format form of a wire record (for encoding a batch on the client). */
export function toProducedRecord(record: WireRecord): ProducedRecord {
  return {
    id: record.id,
    key: record.key,
    headers: record.headers.map((h) => ({ key: h.key, value: h.value })),
    body: record.body,
    producerTimestampMs: record.producerTimestampMs,
    correlationId: record.correlationId ?? "",
    replyTo: record.replyTo ?? "",
    contentType: record.contentType ?? "",
    ttlMs: record.ttlMs ?? 0,
    priority: record.priority ?? 0,
  };
}

/** The application form of a record decoded from a fetched batch. */
export function fromStoredRecord(record: StoredRecord, partition: number, expired: boolean): FetchedRecord {
  return {
    partition,
    offset: record.offset,
    key: record.key.byteLength === 0 ? null : toBytes(record.key),
    headers: record.headers.map((h) => ({ key: h.key, value: toBytes(h.value) })),
    body: toBytes(record.body),
    id: record.id,
    producerTimestampMs: record.producerTimestampMs,
    brokerTimestampMs: record.brokerTimestampMs,
    correlationId: record.correlationId,
    replyTo: record.replyTo,
    contentType: record.contentType,
    ttlMs: record.ttlMs,
    priority: record.priority,
    expired,
  };
}

/** Where stored batches were read, and what of them to keep (see decodeBatches). */
export interface BatchesRead {
  readonly topic: string;
  readonly partition: number;
  /** The offset the read asked for: records below it are skipped. */
  readonly offset: number;
  /** The leader's wall clock when it read the batches (Unix ms): the "now" of TTL expiry. */
  readonly brokerTimeMs: number;
  /** Return expired records, marked, instead of skipping them. */
  readonly includeExpired: boolean;
}

/**
 * The records of stored batches (a Fetch with raw_batches, or a Consume stream with batches), in
 * application form and offset order: records below `read.offset` are skipped (the first batch
 * may start before it), and so are records whose TTL had passed at `read.brokerTimeMs` unless
 * `read.includeExpired` (then they come marked). Each batch's checksum is checked while decoding;
 * a batch that does not decode was damaged on the way, and the UnavailableError thrown then says
 * to read again.
 */
export function decodeBatches(batches: readonly WireBatch[], read: BatchesRead): FetchedRecord[] {
  const records: FetchedRecord[] = [];
  for (const b of batches) {
    let decoded: StoredRecord[];
    try {
      decoded = decodeBatch(b.data, Number(b.baseOffset));
    } catch (e) {
      if (!(e instanceof BatchFormatError)) throw e;
      throw new UnavailableError(`the batch at offset ${b.baseOffset} of ${read.topic}/${read.partition} did not decode (${e.message}); it was damaged on the way, retry`, { cause: e });
    }
    for (const r of decoded) {
      if (r.offset < read.offset) continue;
      const expired = isExpired(r, read.brokerTimeMs);
      if (!expired || read.includeExpired) records.push(fromStoredRecord(r, read.partition, expired));
    }
  }
  return records;
}

function headerPairs(headers: HeadersInit | undefined): ReadonlyArray<readonly [string, Bytes]> {
  if (headers === undefined) return [];
  if (Array.isArray(headers)) return headers as ReadonlyArray<readonly [string, Bytes]>;
  return Object.entries(headers as Readonly<Record<string, Bytes>>);
}

/** The approximate encoded size of `record`, for batch limits, in bytes. */
export function wireRecordBytes(record: WireRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + record.key.length + record.body.length + Buffer.byteLength(record.id);
  for (const s of [record.correlationId, record.replyTo, record.contentType]) if (s) bytes += Buffer.byteLength(s);
  for (const h of record.headers) bytes += Buffer.byteLength(h.key) + h.value.length + 4;
  return bytes;
}

/** The application form of a fetched wire record. */
export function fromWireRecord(record: WireRecord, partition: number): FetchedRecord {
  const key = toBytes(record.key);
  return {
    partition,
    offset: Number(record.offset ?? 0),
    key: key.length === 0 ? null : key,
    headers: record.headers.map((h) => ({ key: h.key, value: toBytes(h.value) })),
    body: toBytes(record.body),
    id: record.id,
    producerTimestampMs: Number(record.producerTimestampMs),
    brokerTimestampMs: Number(record.brokerTimestampMs ?? 0),
    correlationId: record.correlationId ?? "",
    replyTo: record.replyTo ?? "",
    contentType: record.contentType ?? "",
    ttlMs: Number(record.ttlMs ?? 0),
    priority: record.priority ?? 0,
    expired: record.expired ?? false,
  };
}

/**
 * Record batch format v2: the bytes a producer builds, the leader checks and stores as one Raft
 * entry, and a consumer decodes. The header says everything the broker needs (record count,
 * sizes, producer id/epoch/sequence, codec, checksum) so that the leader never re-encodes records
 * and followers never look past the header.
 *
 * Header (big-endian, BATCH_HEADER_BYTES = 44):
 *
 *   off len field
 *    0   1  magic                 2
 *    1   1  kind                  1 = records
 *    2   8  brokerTimestampMs     f64, Unix ms; 0 from the producer, stamped by the leader
 *   10   4  crc                   CRC-32C (Castagnoli) of every byte from offset 14 to the end
 *   14   1  codec                 0 none, 1 gzip, 2 lz4 (compression.ts)
 *   15   1  flags                 0 (reserved)
 *   16   4  recordCount           >= 1
 *   20   4  uncompressedBytes     length of the records section before compression
 *   24   4  largestRecordBytes    encoded size of the largest record (declared by the producer,
 *                                 verified by the leader)
 *   28   8  producerId            u64; 0 = not an idempotent producer
 *   36   4  producerEpoch         u32
 *   40   4  baseSequence          u32: sequence number of the first record; record i has
 *                                 baseSequence + i (per producer and partition)
 *   44      payload               the records section, compressed with `codec`
 *
 * The broker timestamp sits before the checksum, outside what it covers, so the leader stamps it
 * without recomputing anything; everything the producer wrote is covered end to end.
 *
 * Records section: `recordCount` records back to back, each
 *
 *   u32 length of the rest of the record
 *   f64 producerTimestampMs | u64 ttlMs | u8 priority
 *   u16 len id | u16 len correlationId | u16 len replyTo | u16 len contentType   (UTF-8)
 *   u32 len key | u16 headerCount, then per header: u16 len name (UTF-8), u32 len value
 *   u32 len body
 *
 * "Encoded size" of a record (limits, largestRecordBytes) is all of it, length prefix included.
 */
import { crc32c } from "@node-rs/crc32";
import { BatchFormatError, CODEC_NONE, compress, decompress, isKnownCodec, codecName } from "./compression.js";

export const BATCH_MAGIC = 2;
export const KIND_RECORDS = 1;
export const BATCH_HEADER_BYTES = 44;
/** Where the CRC-covered part of a batch starts. */
const CRC_START = 14;

/** Bounds of the 16-bit length fields, kept well below them. */
export const RECORD_ID_BYTES_MAX = 1024;
export const RECORD_STRING_BYTES_MAX = 1024;
export const HEADER_KEY_BYTES_MAX = 1024;
export const HEADERS_PER_RECORD_MAX = 1024;
/** Priorities run from 0 (default, lowest) to this. */
export const PRIORITY_MAX = 9;

/** Bytes of a record's fixed fields (length prefix, timestamps, priority, string lengths, key/header/body lengths). */
const RECORD_FIXED_BYTES = 4 + 8 + 8 + 1 + 2 * 4 + 4 + 2 + 4;

export interface RecordHeader {
  readonly key: string;
  readonly value: Uint8Array;
}

/** A record as produced (offset and broker timestamp come from the partition). Optional fields default to empty/0. */
export interface ProducedRecord {
  readonly id: string;
  readonly key: Uint8Array;
  readonly headers: readonly RecordHeader[];
  readonly body: Uint8Array;
  readonly producerTimestampMs: number;
  /** Ties a reply to its request. */
  readonly correlationId?: string;
  /** Where replies go (a topic or inbox name). */
  readonly replyTo?: string;
  /** MIME type of the body, e.g. "application/json". */
  readonly contentType?: string;
  /** Time to live in ms from the broker timestamp; 0 = never expires. */
  readonly ttlMs?: number;
  /** 0 (default) to PRIORITY_MAX. */
  readonly priority?: number;
}

export interface StoredRecord extends ProducedRecord {
  readonly offset: number;
  readonly brokerTimestampMs: number;
  readonly correlationId: string;
  readonly replyTo: string;
  readonly contentType: string;
  readonly ttlMs: number;
  readonly priority: number;
}

/** The producer fields of a batch of an idempotent producer. */
export interface BatchProducer {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
}

export interface BatchHeader extends BatchProducer {
  readonly magic: number;
  readonly kind: number;
  readonly brokerTimestampMs: number;
  readonly crc: number;
  readonly codec: number;
  readonly count: number;
  readonly uncompressedBytes: number;
  readonly largestRecordBytes: number;
}

export interface EncodeOptions {
  /** Codec to compress with (compression.ts); kept only if it makes the batch smaller. Default none. */
  readonly codec?: number;
  readonly producer?: BatchProducer;
}

/** Limits a batch must satisfy to be stored (checked by the leader, see validateBatch). */
export interface BatchLimits {
  readonly maxRecordBytes: number;
  readonly recordsMax: number;
  readonly uncompressedBytesMax: number;
}

/** Whether a record has expired at broker time `nowMs`. */
export function isExpired(r: { readonly ttlMs: number; readonly brokerTimestampMs: number }, nowMs: number): boolean {
  return r.ttlMs > 0 && r.brokerTimestampMs + r.ttlMs <= nowMs;
}

const textDecoder = new TextDecoder();

/** The encoded size of a record (what per-topic record limits apply to). */
export function recordSizeBytes(r: ProducedRecord): number {
  let size = RECORD_FIXED_BYTES + utf8Length(r.id) + utf8Length(r.correlationId ?? "") + utf8Length(r.replyTo ?? "") + utf8Length(r.contentType ?? "");
  size += r.key.byteLength + r.body.byteLength;
  for (const h of r.headers) size += 2 + utf8Length(h.key) + 4 + h.value.byteLength;
  return size;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * Encodes records into one batch stamped with `brokerTimestampMs` (0 from producers). Throws
 * RangeError for a field that does not fit the format (a string over 65535 bytes, a bad priority).
 */
export function encodeBatch(records: readonly ProducedRecord[], brokerTimestampMs: number, options: EncodeOptions = {}): Uint8Array {
  if (records.length === 0) throw new RangeError("a batch needs at least one record");
  let size = 0;
  let largest = 0;
  for (const r of records) {
    const s = recordSizeBytes(r);
    size += s;
    largest = Math.max(largest, s);
  }
  // The records are written once, in place after the header; a compressed payload replaces them
  // only when it is smaller (then the batch is the header plus that payload).
  let batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + size);
  let o = BATCH_HEADER_BYTES;
  for (const r of records) o = writeRecord(batch, o, r);
  if (o !== BATCH_HEADER_BYTES + size) throw new Error(`record section size mismatch: wrote ${o - BATCH_HEADER_BYTES}, expected ${size}`);
  let codec = options.codec ?? CODEC_NONE;
  if (codec !== CODEC_NONE) {
    const compressed = compress(codec, batch.subarray(BATCH_HEADER_BYTES));
    if (compressed.byteLength < size) {
      const smaller = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.byteLength);
      compressed.copy(smaller, BATCH_HEADER_BYTES);
      batch = smaller;
    } else {
      codec = CODEC_NONE;
    }
  }
  const p = options.producer ?? { producerId: 0, producerEpoch: 0, baseSequence: 0 };
  batch.writeUInt8(BATCH_MAGIC, 0);
  batch.writeUInt8(KIND_RECORDS, 1);
  batch.writeDoubleBE(brokerTimestampMs, 2);
  batch.writeUInt8(codec, 14);
  batch.writeUInt8(0, 15);
  batch.writeUInt32BE(records.length, 16);
  batch.writeUInt32BE(size, 20);
  batch.writeUInt32BE(largest, 24);
  writeU64(batch, 28, p.producerId);
  batch.writeUInt32BE(p.producerEpoch, 36);
  batch.writeUInt32BE(p.baseSequence, 40);
  batch.writeUInt32BE(crc32c(batch.subarray(CRC_START)), 10);
  return batch;
}

function writeRecord(buf: Buffer, start: number, r: ProducedRecord): number {
  const priority = r.priority ?? 0;
  const ttlMs = r.ttlMs ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) throw new RangeError(`priority must be an integer from 0 to 255, got ${priority}`);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new RangeError(`ttlMs must be a non-negative integer, got ${ttlMs}`);
  let o = start + 4;
  o = buf.writeDoubleBE(r.producerTimestampMs, o);
  o = writeU64(buf, o, ttlMs);
  o = buf.writeUInt8(priority, o);
  o = writeString16(buf, o, r.id, "id");
  o = writeString16(buf, o, r.correlationId ?? "", "correlationId");
  o = writeString16(buf, o, r.replyTo ?? "", "replyTo");
  o = writeString16(buf, o, r.contentType ?? "", "contentType");
  o = writeBytes32(buf, o, r.key);
  if (r.headers.length > 0xffff) throw new RangeError(`a record has ${r.headers.length} headers; the format carries at most 65535`);
  o = buf.writeUInt16BE(r.headers.length, o);
  for (const h of r.headers) {
    o = writeString16(buf, o, h.key, "header name");
    o = writeBytes32(buf, o, h.value);
  }
  o = writeBytes32(buf, o, r.body);
  buf.writeUInt32BE(o - start - 4, start);
  return o;
}

function writeString16(buf: Buffer, at: number, s: string, what: string): number {
  if (s.length === 0) return buf.writeUInt16BE(0, at);
  // `buf` was sized from Buffer.byteLength of every string, so the whole string fits.
  const n = buf.write(s, at + 2, "utf8");
  if (n > 0xffff) throw new RangeError(`${what} is ${n} bytes of UTF-8; the format carries at most 65535`);
  buf.writeUInt16BE(n, at);
  return at + 2 + n;
}

function writeBytes32(buf: Buffer, at: number, bytes: Uint8Array): number {
  const o = buf.writeUInt32BE(bytes.byteLength, at);
  buf.set(bytes, o);
  return o + bytes.byteLength;
}

function writeU64(buf: Buffer, at: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`expected a non-negative safe integer, got ${n}`);
  buf.writeUInt32BE(Math.floor(n / 2 ** 32), at);
  return buf.writeUInt32BE(n >>> 0, at + 4);
}

function readU64(view: DataView, at: number): number {
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  if (hi >= 2 ** 21) throw new BatchFormatError(`a 64-bit field at ${at} exceeds 2^53`);
  return hi * 2 ** 32 + lo;
}

/**
 * Reads a batch's header without checking the payload, or undefined if `data` is empty (a Raft
 * no-op). Throws BatchFormatError if `data` is not a v2 batch.
 */
export function readBatchHeader(data: Uint8Array): BatchHeader | undefined {
  if (data.byteLength === 0) return undefined;
  if (data.byteLength < BATCH_HEADER_BYTES || data[0] !== BATCH_MAGIC) {
    throw new BatchFormatError(`not a record batch v${BATCH_MAGIC}: ${data.byteLength} bytes, magic ${data[0]} (expected ${BATCH_MAGIC}, at least ${BATCH_HEADER_BYTES} bytes)`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    magic: view.getUint8(0),
    kind: view.getUint8(1),
    brokerTimestampMs: view.getFloat64(2),
    crc: view.getUint32(10),
    codec: view.getUint8(14),
    count: view.getUint32(16),
    uncompressedBytes: view.getUint32(20),
    largestRecordBytes: view.getUint32(24),
    producerId: readU64(view, 28),
    producerEpoch: view.getUint32(36),
    baseSequence: view.getUint32(40),
  };
}

/** Writes the broker timestamp into a batch in place (outside the CRC-covered part). */
export function stampBrokerTimestamp(data: Uint8Array, brokerTimestampMs: number): void {
  new DataView(data.buffer, data.byteOffset, data.byteLength).setFloat64(2, brokerTimestampMs);
}

/** Bytes of the (possibly compressed) payload. */
export function payloadBytes(data: Uint8Array): number {
  return data.byteLength - BATCH_HEADER_BYTES;
}

/**
 * Checks a batch before it is stored: header, checksum, decompression to exactly the declared
 * size, and a walk over every record's framing (no record is materialised) against `limits`.
 * After this, every reader can decode the batch. Returns the header; throws BatchFormatError
 * (structure) or RecordLimitError (a limit) with a message that says what is wrong.
 */
export function validateBatch(data: Uint8Array, limits: BatchLimits): BatchHeader {
  const header = checkedHeader(data);
  if (header.count > limits.recordsMax) throw new RecordLimitError("records", `the batch has ${header.count} records; at most ${limits.recordsMax} are accepted per batch, split it`);
  if (header.uncompressedBytes > limits.uncompressedBytesMax) {
    throw new RecordLimitError("batch", `the batch's records are ${header.uncompressedBytes} bytes uncompressed; at most ${limits.uncompressedBytesMax} are accepted per batch, split it`);
  }
  if (header.largestRecordBytes > limits.maxRecordBytes) {
    throw new RecordLimitError("record", `the batch declares a record of ${header.largestRecordBytes} bytes; the topic accepts records up to ${limits.maxRecordBytes} bytes`);
  }
  const section = decompress(header.codec, data.subarray(BATCH_HEADER_BYTES), header.uncompressedBytes);
  const largest = walkRecords(section, header.count, limits.maxRecordBytes);
  if (largest !== header.largestRecordBytes) {
    throw new BatchFormatError(`the batch declares its largest record as ${header.largestRecordBytes} bytes, but it is ${largest}`);
  }
  return header;
}

/** A batch exceeds a limit (not malformed): the broker answers RECORD_TOO_LARGE or INVALID_ARGUMENT. */
export class RecordLimitError extends Error {
  override readonly name = "RecordLimitError";
  constructor(readonly limit: "record" | "batch" | "records", message: string) {
    super(message);
  }
}

/** The header, after checking magic, kind, codec, flags, count and checksum. */
function checkedHeader(data: Uint8Array): BatchHeader {
  const header = readBatchHeader(data);
  if (header === undefined) throw new BatchFormatError("the batch is empty");
  if (header.kind !== KIND_RECORDS) throw new BatchFormatError(`unknown batch kind ${header.kind}`);
  if (!isKnownCodec(header.codec)) throw new BatchFormatError(`unknown compression codec ${header.codec}`);
  if (data[15] !== 0) throw new BatchFormatError(`unknown batch flags ${data[15]}`);
  if (header.count === 0) throw new BatchFormatError("the batch has no records");
  const crc = crc32c(asBuffer(data).subarray(CRC_START));
  if (crc !== header.crc) throw new BatchFormatError(`the batch checksum does not match (stored ${hex(header.crc)}, computed ${hex(crc)}): it was damaged on the way`);
  return header;
}

/** Walks `count` records' framing; returns the largest encoded record size. */
function walkRecords(section: Buffer, count: number, maxRecordBytes: number): number {
  let o = 0;
  let largest = 0;
  for (let i = 0; i < count; i++) {
    if (o + 4 > section.byteLength) throw new BatchFormatError(`record ${i} starts past the end of the records (${section.byteLength} bytes)`);
    const size = 4 + section.readUInt32BE(o);
    if (size > maxRecordBytes) throw new RecordLimitError("record", `record ${i} is ${size} bytes; the topic accepts records up to ${maxRecordBytes} bytes`);
    const end = o + size;
    if (end > section.byteLength) throw new BatchFormatError(`record ${i} (${size} bytes at ${o}) overruns the records (${section.byteLength} bytes)`);
    walkRecord(new RecordReader(section, o + 4, end, i));
    largest = Math.max(largest, size);
    o = end;
  }
  if (o !== section.byteLength) throw new BatchFormatError(`${section.byteLength - o} bytes follow the last record`);
  return largest;
}

function walkRecord(r: RecordReader): void {
  r.skip(8); // producer timestamp: any f64
  const ttl = r.u64();
  if (!Number.isSafeInteger(ttl)) r.fail(`ttlMs ${ttl} is not a safe integer`);
  const priority = r.u8();
  if (priority > PRIORITY_MAX) r.fail(`priority ${priority} is above ${PRIORITY_MAX}`);
  if (r.skipBytes16() > RECORD_ID_BYTES_MAX) r.fail(`the id is longer than ${RECORD_ID_BYTES_MAX} bytes`);
  for (const field of ["correlationId", "replyTo", "contentType"]) {
    if (r.skipBytes16() > RECORD_STRING_BYTES_MAX) r.fail(`${field} is longer than ${RECORD_STRING_BYTES_MAX} bytes`);
  }
  r.skipBytes32();
  const headers = r.u16();
  if (headers > HEADERS_PER_RECORD_MAX) r.fail(`it has ${headers} headers; at most ${HEADERS_PER_RECORD_MAX} are allowed`);
  for (let h = 0; h < headers; h++) {
    const len = r.skipBytes16();
    if (len === 0) r.fail("a header name is empty");
    if (len > HEADER_KEY_BYTES_MAX) r.fail(`a header name is longer than ${HEADER_KEY_BYTES_MAX} bytes`);
    r.skipBytes32();
  }
  r.skipBytes32();
  r.end();
}

/** Bounds-checked reads within one record. */
class RecordReader {
  constructor(
    private readonly buf: Buffer,
    public o: number,
    private readonly limit: number,
    private readonly record: number,
  ) {}

  fail(why: string): never {
    throw new BatchFormatError(`record ${this.record}: ${why}`);
  }

  private need(n: number): void {
    if (this.o + n > this.limit) this.fail(`a field of ${n} bytes at ${this.o} overruns the record's end at ${this.limit}`);
  }

  skip(n: number): void {
    this.need(n);
    this.o += n;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.o++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.o);
    this.o += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    return hi * 2 ** 32 + lo;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.o);
    this.o += 8;
    return v;
  }

  skipBytes16(): number {
    const len = this.u16();
    this.skip(len);
    return len;
  }

  skipBytes32(): number {
    const len = this.u32();
    this.skip(len);
    return len;
  }

  bytes16(): Uint8Array {
    const len = this.u16();
    this.need(len);
    const v = this.buf.subarray(this.o, this.o + len);
    this.o += len;
    return v;
  }

  bytes32(): Uint8Array {
    const len = this.u32();
    this.need(len);
    const v = this.buf.subarray(this.o, this.o + len);
    this.o += len;
    return v;
  }

  string16(): string {
    return textDecoder.decode(this.bytes16());
  }

  end(): void {
    if (this.o !== this.limit) this.fail(`${this.limit - this.o} bytes follow its last field`);
  }
}

/**
 * Decodes every record of a batch whose first record has offset `baseOffset`, after checking its
 * checksum. Throws BatchFormatError on malformed data.
 */
export function decodeBatch(data: Uint8Array, baseOffset: number): StoredRecord[] {
  const header = checkedHeader(data);
  const section = decompress(header.codec, data.subarray(BATCH_HEADER_BYTES), header.uncompressedBytes);
  const out: StoredRecord[] = [];
  let o = 0;
  for (let i = 0; i < header.count; i++) {
    if (o + 4 > section.byteLength) throw new BatchFormatError(`record ${i} starts past the end of the records (${section.byteLength} bytes)`);
    const end = o + 4 + section.readUInt32BE(o);
    if (end > section.byteLength) throw new BatchFormatError(`record ${i} overruns the records (${section.byteLength} bytes)`);
    out.push(readRecord(new RecordReader(section, o + 4, end, i), baseOffset + i, header.brokerTimestampMs));
    o = end;
  }
  if (o !== section.byteLength) throw new BatchFormatError(`${section.byteLength - o} bytes follow the last record`);
  return out;
}

function readRecord(r: RecordReader, offset: number, brokerTimestampMs: number): StoredRecord {
  const producerTimestampMs = r.f64();
  const ttlMs = r.u64();
  const priority = r.u8();
  const id = r.string16();
  const correlationId = r.string16();
  const replyTo = r.string16();
  const contentType = r.string16();
  const key = r.bytes32();
  const headerCount = r.u16();
  const headers: RecordHeader[] = [];
  for (let h = 0; h < headerCount; h++) headers.push({ key: r.string16(), value: r.bytes32() });
  const body = r.bytes32();
  r.end();
  return { id, key, headers, body, producerTimestampMs, correlationId, replyTo, contentType, ttlMs, priority, offset, brokerTimestampMs };
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}



/**
 * The stored form of a produced batch: the data of one Raft entry. Records travel and rest as
 * one opaque batch; the partition only needs the header (kind, count, broker timestamp) to assign
 * offsets, and decodes records only to serve fetches.
 *
 * Layout (big-endian):
 *   u8 magic=1 | u8 kind | u32 count | f64 brokerTimestampMs | records...
 *   record: u16 idLen id | u32 keyLen key | u16 headerCount (u16 kLen k | u32 vLen v)* |
 *           u32 bodyLen body | f64 producerTimestampMs
 */
import { assert } from "../lib/assert.js";

export const BATCH_MAGIC = 1;
export const KIND_RECORDS = 1;
const HEADER_BYTES = 1 + 1 + 4 + 8;

export interface RecordHeader {
  readonly key: string;
  readonly value: Uint8Array;
}

/** A record as produced (offset and broker timestamp come from the partition). */
export interface ProducedRecord {
  readonly id: string;
  readonly key: Uint8Array;
  readonly headers: readonly RecordHeader[];
  readonly body: Uint8Array;
  readonly producerTimestampMs: number;
}

export interface StoredRecord extends ProducedRecord {
  readonly offset: number;
  readonly brokerTimestampMs: number;
}

export interface BatchHeader {
  readonly kind: number;
  readonly count: number;
  readonly brokerTimestampMs: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Bytes a record occupies in a batch (used for size limits). */
export function recordSizeBytes(r: ProducedRecord): number {
  let size = 2 + byteLengthUtf8(r.id) + 4 + r.key.byteLength + 2 + 4 + r.body.byteLength + 8;
  for (const h of r.headers) size += 2 + byteLengthUtf8(h.key) + 4 + h.value.byteLength;
  return size;
}

function byteLengthUtf8(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Encodes records into one batch. */
export function encodeBatch(records: readonly ProducedRecord[], brokerTimestampMs: number): Uint8Array {
  assert(records.length > 0, "a batch needs at least one record");
  let size = HEADER_BYTES;
  for (const r of records) size += recordSizeBytes(r);
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  o = buf.writeUInt8(BATCH_MAGIC, o);
  o = buf.writeUInt8(KIND_RECORDS, o);
  o = buf.writeUInt32BE(records.length, o);
  o = buf.writeDoubleBE(brokerTimestampMs, o);
  for (const r of records) o = writeRecord(buf, o, r);
  assert(o === size, () => `batch size mismatch: wrote ${o}, expected ${size}`);
  return buf;
}

function writeRecord(buf: Buffer, start: number, r: ProducedRecord): number {
  let o = start;
  const id = textEncoder.encode(r.id);
  o = buf.writeUInt16BE(id.byteLength, o);
  o += Buffer.from(id.buffer, id.byteOffset, id.byteLength).copy(buf, o);
  o = buf.writeUInt32BE(r.key.byteLength, o);
  o += copyInto(buf, o, r.key);
  o = buf.writeUInt16BE(r.headers.length, o);
  for (const h of r.headers) {
    const k = textEncoder.encode(h.key);
    o = buf.writeUInt16BE(k.byteLength, o);
    o += copyInto(buf, o, k);
    o = buf.writeUInt32BE(h.value.byteLength, o);
    o += copyInto(buf, o, h.value);
  }
  o = buf.writeUInt32BE(r.body.byteLength, o);
  o += copyInto(buf, o, r.body);
  o = buf.writeDoubleBE(r.producerTimestampMs, o);
  return o;
}

function copyInto(buf: Buffer, at: number, src: Uint8Array): number {
  buf.set(src, at);
  return src.byteLength;
}

/** Reads a batch's header, or undefined if `data` is not a record batch (a no-op, say). Throws on a malformed header. */
export function readBatchHeader(data: Uint8Array): BatchHeader | undefined {
  if (data.byteLength === 0) return undefined;
  if (data.byteLength < HEADER_BYTES || data[0] !== BATCH_MAGIC) throw new Error(`malformed record batch header (${data.byteLength} bytes, magic ${data[0]})`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { kind: view.getUint8(1), count: view.getUint32(2), brokerTimestampMs: view.getFloat64(6) };
}

/** Decodes every record of a batch whose first record has offset `baseOffset`. Throws on malformed data. */
export function decodeBatch(data: Uint8Array, baseOffset: number): StoredRecord[] {
  try {
    return decodeRecords(data, baseOffset);
  } catch (e) {
    if (e instanceof RangeError) throw new Error(`malformed record batch (${data.byteLength} bytes at base offset ${baseOffset}): ${e.message}`);
    throw e;
  }
}

function decodeRecords(data: Uint8Array, baseOffset: number): StoredRecord[] {
  const header = readBatchHeader(data);
  if (header === undefined || header.kind !== KIND_RECORDS) return [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: StoredRecord[] = [];
  let o = HEADER_BYTES;
  for (let i = 0; i < header.count; i++) {
    const [record, next] = readRecord(buf, o, baseOffset + i, header.brokerTimestampMs);
    out.push(record);
    o = next;
  }
  if (o !== buf.byteLength) throw new Error(`malformed record batch: ${buf.byteLength - o} trailing bytes`);
  return out;
}

function readRecord(buf: Buffer, start: number, offset: number, brokerTimestampMs: number): [StoredRecord, number] {
  let o = start;
  const idLen = buf.readUInt16BE(o);
  o += 2;
  const id = textDecoder.decode(slice(buf, o, idLen));
  o += idLen;
  const keyLen = buf.readUInt32BE(o);
  o += 4;
  const key = slice(buf, o, keyLen);
  o += keyLen;
  const headerCount = buf.readUInt16BE(o);
  o += 2;
  const headers: RecordHeader[] = [];
  for (let h = 0; h < headerCount; h++) {
    const kLen = buf.readUInt16BE(o);
    o += 2;
    const k = textDecoder.decode(slice(buf, o, kLen));
    o += kLen;
    const vLen = buf.readUInt32BE(o);
    o += 4;
    headers.push({ key: k, value: slice(buf, o, vLen) });
    o += vLen;
  }
  const bodyLen = buf.readUInt32BE(o);
  o += 4;
  const body = slice(buf, o, bodyLen);
  o += bodyLen;
  const producerTimestampMs = buf.readDoubleBE(o);
  o += 8;
  return [{ id, key, headers, body, producerTimestampMs, offset, brokerTimestampMs }, o];
}

function slice(buf: Buffer, at: number, len: number): Uint8Array {
  if (at + len > buf.byteLength) throw new RangeError(`malformed record batch: field of ${len} bytes at ${at} overruns ${buf.byteLength}`);
  return buf.subarray(at, at + len);
}

/**
 * Record batch format v2: encode/decode round-trips any records with every codec (property), the
 * header is read without the payload, validateBatch accepts exactly what decodes and enforces the
 * limits, and malformed input — truncated, damaged (checksum), foreign magic/codec/flags, lying
 * sizes, overrunning lengths behind a recomputed checksum, decompression bombs — fails with a
 * BatchFormatError instead of returning records or allocating without bound.
 *
 * Property tests take their seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { crc32c } from "@node-rs/crc32";
import { compressSync as lz4CompressSync } from "lz4-napi";
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BatchFormatError,
  CODEC_GZIP,
  CODEC_LZ4,
  CODEC_NONE,
  KIND_RECORDS,
  RecordLimitError,
  decodeBatch,
  decompress,
  encodeBatch,
  isExpired,
  readBatchHeader,
  recordSizeBytes,
  stampBrokerTimestamp,
  validateBatch,
  type BatchLimits,
  type ProducedRecord,
} from "./index.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_612);
console.log(`record-batch property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);
const FC = { seed: SEED, numRuns: 150 };
const CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_LZ4] as const;
const LIMITS: BatchLimits = { maxRecordBytes: 1 << 20, recordsMax: 100_000, uncompressedBytesMax: 32 << 20 };

const bytesArb = fc.uint8Array({ maxLength: 64 });
/** Full-range code points (no lone surrogates: those are not representable in UTF-8). */
const textArb = (maxLength: number) => fc.string({ unit: "binary", maxLength });
const timestampArb = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.double());
/** Bodies that compress (repeated text) as well as ones that do not (random bytes). */
const bodyArb = fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.string({ maxLength: 40 }).map((s) => new TextEncoder().encode(s.repeat(20))));

const recordArb: fc.Arbitrary<ProducedRecord> = fc.record({
  id: textArb(40),
  key: bytesArb,
  headers: fc.array(fc.record({ key: textArb(20).filter((k) => k.length > 0), value: bytesArb }), { maxLength: 5 }),
  body: bodyArb,
  producerTimestampMs: timestampArb,
  correlationId: textArb(30),
  replyTo: textArb(30),
  contentType: textArb(20),
  ttlMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  priority: fc.integer({ min: 0, max: 9 }),
});
const recordsArb = fc.array(recordArb, { minLength: 1, maxLength: 8 });
const codecArb = fc.constantFrom(...CODECS);
const producerArb = fc.record({
  producerId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  producerEpoch: fc.integer({ min: 0, max: 0xffff_ffff }),
  baseSequence: fc.integer({ min: 0, max: 0xffff_ffff }),
});

function rec(id: string, body: string, extra: Partial<ProducedRecord> = {}): ProducedRecord {
  return { id, key: new Uint8Array(), headers: [], body: new TextEncoder().encode(body), producerTimestampMs: 1, ...extra };
}

/** Comparable plain form of a record (Uint8Array views become arrays, defaults filled in). */
function plain(r: ProducedRecord): unknown {
  return {
    id: r.id,
    key: [...r.key],
    headers: r.headers.map((h) => ({ key: h.key, value: [...h.value] })),
    body: [...r.body],
    producerTimestampMs: r.producerTimestampMs,
    correlationId: r.correlationId ?? "",
    replyTo: r.replyTo ?? "",
    contentType: r.contentType ?? "",
    ttlMs: r.ttlMs ?? 0,
    priority: r.priority ?? 0,
  };
}

/** Recomputes the checksum after a test edited the covered bytes, so the structural checks are reached. */
function reseal(batch: Uint8Array): Uint8Array {
  const b = Buffer.from(batch);
  b.writeUInt32BE(crc32c(b.subarray(14)), 10);
  return b;
}

const compressible = (n: number): ProducedRecord[] => Array.from({ length: n }, (_, i) => rec(`id-${i}`, "hello raftmq ".repeat(40)));

test("property: decode(encode(records)) gives back every record and field, with every codec, consecutive offsets and the broker timestamp", () => {
  fc.assert(
    fc.property(recordsArb, timestampArb, fc.nat({ max: 2 ** 40 }), codecArb, producerArb, (records, brokerTs, baseOffset, codec, producer) => {
      const batch = encodeBatch(records, brokerTs, { codec, producer });
      const header = validateBatch(batch, LIMITS);
      assert.equal(header.count, records.length);
      assert.deepEqual([header.producerId, header.producerEpoch, header.baseSequence], [producer.producerId, producer.producerEpoch, producer.baseSequence]);
      const decoded = decodeBatch(batch, baseOffset);
      assert.equal(decoded.length, records.length);
      decoded.forEach((d, i) => {
        assert.equal(d.offset, baseOffset + i);
        assert.ok(Object.is(d.brokerTimestampMs, brokerTs), `broker timestamp ${d.brokerTimestampMs} != ${brokerTs}`);
        assert.deepEqual(plain(d), plain(records[i]!));
      });
    }),
    FC,
  );
});

test("every codec is used when it makes the batch smaller, and falls back to none when it does not", () => {
  const records = compressible(20);
  const plainSize = encodeBatch(records, 0).byteLength;
  for (const codec of [CODEC_GZIP, CODEC_LZ4]) {
    const batch = encodeBatch(records, 0, { codec });
    assert.equal(readBatchHeader(batch)!.codec, codec);
    assert.ok(batch.byteLength < plainSize / 5, `codec ${codec}: ${batch.byteLength} bytes vs ${plainSize} uncompressed`);
    assert.deepEqual(decodeBatch(batch, 0).map(plain), records.map(plain));
  }
  const incompressible = [rec("r", "", { body: randomBytes(256) })];
  assert.equal(readBatchHeader(encodeBatch(incompressible, 0, { codec: CODEC_GZIP }))!.codec, CODEC_NONE, "gzip of 256 random bytes is larger: stored uncompressed");
  for (const codec of [CODEC_GZIP, CODEC_LZ4]) {
    assert.ok(encodeBatch(incompressible, 0, { codec }).byteLength <= encodeBatch(incompressible, 0).byteLength, `codec ${codec} never makes a batch larger`);
  }
});

test("a worked example: header fields at their documented offsets", () => {
  const records = [rec("a", "xyz", { correlationId: "c-1", replyTo: "inbox.7", contentType: "text/plain", ttlMs: 5_000, priority: 3 })];
  const batch = Buffer.from(encodeBatch(records, 1_700_000_000_123, { producer: { producerId: 2 ** 40 + 5, producerEpoch: 7, baseSequence: 41 } }));
  assert.equal(batch[0], BATCH_MAGIC);
  assert.equal(batch[1], KIND_RECORDS);
  assert.equal(batch.readDoubleBE(2), 1_700_000_000_123);
  assert.equal(batch.readUInt32BE(10), crc32c(batch.subarray(14)));
  assert.equal(batch[14], CODEC_NONE);
  assert.equal(batch.readUInt32BE(16), 1);
  assert.equal(batch.readUInt32BE(20), recordSizeBytes(records[0]!));
  assert.equal(batch.readUInt32BE(24), recordSizeBytes(records[0]!));
  assert.equal(batch.readUInt32BE(28) * 2 ** 32 + batch.readUInt32BE(32), 2 ** 40 + 5);
  assert.deepEqual([batch.readUInt32BE(36), batch.readUInt32BE(40)], [7, 41]);
  assert.equal(batch.byteLength, BATCH_HEADER_BYTES + recordSizeBytes(records[0]!));
});

test("stampBrokerTimestamp changes only the timestamp: the checksum still holds", () => {
  const batch = Buffer.from(encodeBatch(compressible(3), 0, { codec: CODEC_LZ4 }));
  stampBrokerTimestamp(batch, 12_345);
  assert.equal(validateBatch(batch, LIMITS).brokerTimestampMs, 12_345);
  assert.deepEqual(decodeBatch(batch, 0).map((r) => r.brokerTimestampMs), [12_345, 12_345, 12_345]);
});

test("readBatchHeader: empty data is a no-op entry; short or foreign data throws BatchFormatError", () => {
  assert.equal(readBatchHeader(new Uint8Array()), undefined);
  assert.throws(() => readBatchHeader(new Uint8Array([BATCH_MAGIC, KIND_RECORDS, 0])), BatchFormatError);
  const v1 = Buffer.from(encodeBatch([rec("a", "x")], 1));
  v1[0] = 1;
  assert.throws(() => readBatchHeader(v1), /not a record batch v2.*magic 1/);
  assert.throws(() => decodeBatch(v1, 0), BatchFormatError);
});

test("readBatchHeader and decodeBatch work on a view into a larger buffer", () => {
  const batch = encodeBatch([rec("a", "x"), rec("b", "y")], 99, { codec: CODEC_GZIP });
  const big = new Uint8Array(batch.byteLength + 10);
  big.set(batch, 5);
  const view = big.subarray(5, 5 + batch.byteLength);
  assert.equal(readBatchHeader(view)!.count, 2);
  assert.deepEqual(decodeBatch(view, 0).map(plain), [rec("a", "x"), rec("b", "y")].map(plain));
  validateBatch(view, LIMITS);
});

test("property: any change to a byte the checksum covers is detected by validate and decode", () => {
  fc.assert(
    fc.property(recordsArb, codecArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (records, codec, pick, xor) => {
      const batch = Buffer.from(encodeBatch(records, 1, { codec }));
      const at = 14 + (pick % (batch.byteLength - 14));
      batch[at] = batch[at]! ^ xor;
      assert.throws(() => validateBatch(batch, LIMITS), BatchFormatError);
      assert.throws(() => decodeBatch(batch, 0), BatchFormatError);
    }),
    FC,
  );
});

test("property: a batch truncated anywhere fails with a BatchFormatError and never returns records", () => {
  fc.assert(
    fc.property(recordsArb, codecArb, fc.nat(), (records, codec, cutSeed) => {
      const batch = encodeBatch(records, 1, { codec });
      const cut = 1 + (cutSeed % (batch.byteLength - 1));
      assert.throws(() => decodeBatch(batch.subarray(0, cut), 0), BatchFormatError);
      assert.throws(() => validateBatch(batch.subarray(0, cut), LIMITS), BatchFormatError);
      // Even with a checksum that matches the truncated bytes.
      if (cut > 14) assert.throws(() => validateBatch(reseal(batch.subarray(0, cut)), LIMITS), BatchFormatError);
    }),
    FC,
  );
});

test("property: random bytes behind a valid header and checksum never validate nor decode", () => {
  fc.assert(
    fc.property(codecArb, fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4096 }), (codec, payload, count, size) => {
      const header = Buffer.from(encodeBatch([rec("a", "x")], 0)).subarray(0, BATCH_HEADER_BYTES);
      header[14] = codec;
      header.writeUInt32BE(count, 16);
      header.writeUInt32BE(size, 20);
      header.writeUInt32BE(size, 24);
      const batch = reseal(Buffer.concat([header, payload]));
      let decoded = false;
      try {
        validateBatch(batch, LIMITS);
        decodeBatch(batch, 0);
        decoded = true;
      } catch (e) {
        assert.ok(e instanceof BatchFormatError || e instanceof RecordLimitError, `unexpected ${String(e)}`);
      }
      // Random bytes may, very rarely, be a valid record section; then they must decode consistently.
      if (decoded) assert.equal(decodeBatch(batch, 0).length, count);
    }),
    FC,
  );
});

test("unknown kind, codec or flags are refused", () => {
  for (const [at, value, message] of [[1, 7, /unknown batch kind 7/], [14, 9, /unknown compression codec 9/], [15, 1, /unknown batch flags 1/]] as const) {
    const batch = Buffer.from(encodeBatch([rec("a", "x")], 1));
    batch[at] = value;
    assert.throws(() => validateBatch(reseal(batch), LIMITS), message);
    assert.throws(() => decodeBatch(reseal(batch), 0), message);
  }
});

test("a count that disagrees with the records present is refused", () => {
  for (const count of [0, 1, 3, 0xffff_ffff]) {
    const batch = Buffer.from(encodeBatch([rec("a", "x"), rec("b", "y")], 1));
    batch.writeUInt32BE(count, 16);
    assert.throws(() => validateBatch(reseal(batch), LIMITS), (e) => e instanceof BatchFormatError || e instanceof RecordLimitError, `count ${count}`);
    assert.throws(() => decodeBatch(reseal(batch), 0), BatchFormatError, `count ${count}`);
  }
});

test("a declared uncompressed size that lies is refused for every codec", () => {
  for (const codec of CODECS) {
    for (const delta of [-1, 1, 1000]) {
      const batch = Buffer.from(encodeBatch(compressible(4), 1, { codec }));
      batch.writeUInt32BE(batch.readUInt32BE(20) + delta, 20);
      assert.throws(() => validateBatch(reseal(batch), LIMITS), BatchFormatError, `codec ${codec}, size off by ${delta}`);
    }
  }
});

test("a declared largest record size that lies is refused", () => {
  const batch = Buffer.from(encodeBatch([rec("a", "x"), rec("b", "yy")], 1));
  batch.writeUInt32BE(batch.readUInt32BE(24) - 1, 24);
  assert.throws(() => validateBatch(reseal(batch), LIMITS), /declares its largest record/);
});

test("decompression bombs fail without expanding: gzip and lz4 are bounded by the declared size", () => {
  const huge = Buffer.alloc(64 << 20); // 64 MiB of zeros compress to a few KiB
  const gz = gzipSync(huge);
  assert.throws(() => decompress(CODEC_GZIP, gz, 1000), BatchFormatError);
  const lz = lz4CompressSync(huge);
  assert.throws(() => decompress(CODEC_LZ4, lz, 1000), /size prefix says 67108864 bytes; the header declares 1000/);
  // An lz4 prefix that claims a small size over a payload that expands further.
  const lying = Buffer.from(lz4CompressSync(Buffer.alloc(5000)));
  lying.writeUInt32LE(100, 0);
  assert.throws(() => decompress(CODEC_LZ4, lying, 100), BatchFormatError);
  assert.throws(() => decompress(CODEC_GZIP, Buffer.from("not gzip at all"), 10), /does not decompress/);
  assert.throws(() => decompress(CODEC_LZ4, Buffer.from([1]), 10), /shorter than its size prefix/);
});

/** The first record's field offsets in the records section (uncompressed batch of one record). */
function lengthFields(r: ProducedRecord): { field: string; at: number; width: 2 | 4 }[] {
  const len = (s: string | undefined): number => Buffer.byteLength(s ?? "", "utf8");
  let o = BATCH_HEADER_BYTES;
  const out: { field: string; at: number; width: 2 | 4 }[] = [{ field: "record length", at: o, width: 4 }];
  o += 4 + 8 + 8 + 1;
  for (const [field, value] of [["id", r.id], ["correlationId", r.correlationId], ["replyTo", r.replyTo], ["contentType", r.contentType]] as const) {
    out.push({ field, at: o, width: 2 });
    o += 2 + len(value);
  }
  out.push({ field: "key", at: o, width: 4 });
  o += 4 + r.key.byteLength;
  out.push({ field: "headerCount", at: o, width: 2 });
  o += 2;
  r.headers.forEach((h, i) => {
    out.push({ field: `header ${i} name`, at: o, width: 2 });
    o += 2 + len(h.key);
    out.push({ field: `header ${i} value`, at: o, width: 4 });
    o += 4 + h.value.byteLength;
  });
  out.push({ field: "body", at: o, width: 4 });
  return out;
}

test("property: a length field changed behind a valid checksum fails validate and decode with a BatchFormatError", () => {
  fc.assert(
    fc.property(recordArb, fc.nat(), fc.integer({ min: 1, max: 1000 }), fc.boolean(), (r, pick, delta, grow) => {
      const batch = Buffer.from(encodeBatch([r], 1));
      const fields = lengthFields(r);
      const f = fields[pick % fields.length]!;
      const old = f.width === 2 ? batch.readUInt16BE(f.at) : batch.readUInt32BE(f.at);
      const value = grow ? Math.min(old + delta, f.width === 2 ? 0xffff : 0xffff_ffff) : Math.max(0, old - delta);
      if (value === old) return;
      if (f.width === 2) batch.writeUInt16BE(value, f.at);
      else batch.writeUInt32BE(value, f.at);
      const sealed = reseal(batch);
      assert.throws(() => validateBatch(sealed, LIMITS), (e) => e instanceof BatchFormatError || e instanceof RecordLimitError, `${f.field} ${old} -> ${value} validated`);
      assert.throws(() => decodeBatch(sealed, 0), BatchFormatError, `${f.field} ${old} -> ${value} decoded`);
    }),
    FC,
  );
});

test("validateBatch enforces the topic's record limit on uncompressed records, and the batch limits", () => {
  const records = [rec("a", "x".repeat(100)), rec("b", "x".repeat(500))];
  const big = recordSizeBytes(records[1]!);
  for (const codec of CODECS) {
    const batch = encodeBatch(records, 0, { codec });
    validateBatch(batch, { ...LIMITS, maxRecordBytes: big });
    assert.throws(() => validateBatch(batch, { ...LIMITS, maxRecordBytes: big - 1 }), (e) => e instanceof RecordLimitError && e.limit === "record" && new RegExp(`${big} bytes`).test(e.message));
    assert.throws(() => validateBatch(batch, { ...LIMITS, recordsMax: 1 }), (e) => e instanceof RecordLimitError && e.limit === "records");
    assert.throws(() => validateBatch(batch, { ...LIMITS, uncompressedBytesMax: 100 }), (e) => e instanceof RecordLimitError && e.limit === "batch");
  }
});

test("validateBatch refuses record fields the broker does not accept: priority above 9, empty header names", () => {
  assert.throws(() => validateBatch(encodeBatch([rec("a", "x", { priority: 10 })], 0), LIMITS), /priority 10 is above 9/);
  assert.throws(() => validateBatch(encodeBatch([rec("a", "x", { headers: [{ key: "", value: new Uint8Array() }] })], 0), LIMITS), /header name is empty/);
  assert.throws(() => validateBatch(encodeBatch([rec("a".repeat(1025), "x")], 0), LIMITS), /id is longer than 1024/);
  assert.throws(() => validateBatch(encodeBatch([rec("a", "x", { replyTo: "r".repeat(1025) })], 0), LIMITS), /replyTo is longer than 1024/);
});

test("encodeBatch refuses what the format cannot carry", () => {
  assert.throws(() => encodeBatch([], 0), /at least one record/);
  assert.throws(() => encodeBatch([rec("a", "x", { priority: 256 })], 0), RangeError);
  assert.throws(() => encodeBatch([rec("a", "x", { ttlMs: -1 })], 0), RangeError);
  assert.throws(() => encodeBatch([rec("x".repeat(70_000), "x")], 0), /id is 70000 bytes/);
});

test("property: recordSizeBytes is exactly each record's share of an uncompressed batch", () => {
  fc.assert(
    fc.property(recordsArb, (records) => {
      const batch = encodeBatch(records, 0);
      const sum = records.reduce((s, r) => s + recordSizeBytes(r), 0);
      assert.equal(batch.byteLength, BATCH_HEADER_BYTES + sum);
      assert.equal(readBatchHeader(batch)!.uncompressedBytes, sum);
    }),
    FC,
  );
});

test("recordSizeBytes counts UTF-8 bytes, not UTF-16 code units", () => {
  const ascii = recordSizeBytes(rec("a", ""));
  assert.equal(recordSizeBytes(rec("é", "")), ascii + 1);
  assert.equal(recordSizeBytes(rec("🚀", "")), ascii + 3);
  assert.equal(recordSizeBytes(rec("a", "", { contentType: "ü" })), ascii + 2);
  assert.equal(recordSizeBytes(rec("a", "", { headers: [{ key: "ключ", value: new Uint8Array(3) }] })), ascii + 2 + 8 + 4 + 3);
});

test("isExpired: a TTL counts from the broker timestamp; 0 never expires", () => {
  assert.equal(isExpired({ ttlMs: 0, brokerTimestampMs: 0 }, Number.MAX_SAFE_INTEGER), false);
  assert.equal(isExpired({ ttlMs: 100, brokerTimestampMs: 1_000 }, 1_099), false);
  assert.equal(isExpired({ ttlMs: 100, brokerTimestampMs: 1_000 }, 1_100), true);
});

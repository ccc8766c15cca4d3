/**
 * The record batch codec: encode/decode round-trips any records (property), the header is read
 * without decoding records, sizes agree with the encoding, and structurally malformed input
 * (truncated, bad magic, trailing bytes, overrunning lengths) throws instead of returning records.
 *
 * Property tests take their seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BATCH_MAGIC,
  KIND_RECORDS,
  decodeBatch,
  encodeBatch,
  readBatchHeader,
  recordSizeBytes,
  type ProducedRecord,
} from "./record-batch.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_612);
console.log(`record-batch property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);
const FC = { seed: SEED, numRuns: 200 };

/** Bytes of the batch header: magic, kind, count, broker timestamp. */
const HEADER_BYTES = 14;

const bytesArb = fc.uint8Array({ maxLength: 64 });
/** Full-range code points (no lone surrogates: those are not representable in UTF-8). */
const textArb = (maxLength: number) => fc.string({ unit: "binary", maxLength });
const timestampArb = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.double({ noNaN: false }),
);

const recordArb: fc.Arbitrary<ProducedRecord> = fc.record({
  id: textArb(40),
  key: bytesArb,
  headers: fc.array(fc.record({ key: textArb(20), value: bytesArb }), { maxLength: 5 }),
  body: fc.uint8Array({ maxLength: 512 }),
  producerTimestampMs: timestampArb,
});
const recordsArb = fc.array(recordArb, { minLength: 1, maxLength: 8 });

function rec(id: string, body: string, extra: Partial<ProducedRecord> = {}): ProducedRecord {
  return { id, key: new Uint8Array(), headers: [], body: new TextEncoder().encode(body), producerTimestampMs: 1, ...extra };
}

/** Comparable plain form of a record (Uint8Array views become arrays). */
function plain(r: ProducedRecord): unknown {
  return {
    id: r.id,
    key: [...r.key],
    headers: r.headers.map((h) => ({ key: h.key, value: [...h.value] })),
    body: [...r.body],
    producerTimestampMs: r.producerTimestampMs,
  };
}

test("property: decode(encode(records)) gives back every record, with consecutive offsets and the broker timestamp", () => {
  fc.assert(
    fc.property(recordsArb, timestampArb, fc.nat({ max: 2 ** 40 }), (records, brokerTs, baseOffset) => {
      const decoded = decodeBatch(encodeBatch(records, brokerTs), baseOffset);
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

test("a worked example round-trips: unicode ids and header keys, empty and binary fields", () => {
  const records: ProducedRecord[] = [
    { id: "ордер-1 🚀", key: new Uint8Array([0, 255]), headers: [{ key: "trace-ид", value: new Uint8Array([1]) }, { key: "", value: new Uint8Array() }], body: new Uint8Array([0, 1, 2]), producerTimestampMs: 1_700_000_000_123 },
    { id: "", key: new Uint8Array(), headers: [], body: new Uint8Array(), producerTimestampMs: 0 },
  ];
  const decoded = decodeBatch(encodeBatch(records, 42.5), 7);
  assert.deepEqual(decoded.map(plain), records.map(plain));
  assert.deepEqual(decoded.map((r) => r.offset), [7, 8]);
  assert.deepEqual(decoded.map((r) => r.brokerTimestampMs), [42.5, 42.5]);
});

test("property: readBatchHeader reads kind, count and broker timestamp without the records", () => {
  fc.assert(
    fc.property(recordsArb, timestampArb, (records, brokerTs) => {
      const header = readBatchHeader(encodeBatch(records, brokerTs));
      assert.ok(header !== undefined);
      assert.equal(header.kind, KIND_RECORDS);
      assert.equal(header.count, records.length);
      assert.ok(Object.is(header.brokerTimestampMs, brokerTs));
    }),
    FC,
  );
});

test("readBatchHeader: empty data is not a batch (a no-op entry); a short or foreign header throws", () => {
  assert.equal(readBatchHeader(new Uint8Array()), undefined);
  assert.throws(() => readBatchHeader(new Uint8Array([BATCH_MAGIC, KIND_RECORDS, 0])), /malformed record batch header/);
  const batch = encodeBatch([rec("a", "x")], 1);
  const wrongMagic = Uint8Array.from(batch);
  wrongMagic[0] = 2;
  assert.throws(() => readBatchHeader(wrongMagic), /malformed record batch header.*magic 2/);
  assert.throws(() => decodeBatch(wrongMagic, 0), /malformed record batch header/);
});

test("readBatchHeader works on a view into a larger buffer (byteOffset is honoured)", () => {
  const batch = encodeBatch([rec("a", "x"), rec("b", "y")], 99);
  const big = new Uint8Array(batch.byteLength + 10);
  big.set(batch, 5);
  const view = big.subarray(5, 5 + batch.byteLength);
  assert.deepEqual(readBatchHeader(view), { kind: KIND_RECORDS, count: 2, brokerTimestampMs: 99 });
  assert.deepEqual(decodeBatch(view, 0).map(plain), [rec("a", "x"), rec("b", "y")].map(plain));
});

test("a batch of another kind decodes to no records (forward compatibility), not to garbage", () => {
  const batch = Uint8Array.from(encodeBatch([rec("a", "x")], 1));
  batch[1] = 7;
  assert.equal(readBatchHeader(batch)?.kind, 7);
  assert.deepEqual(decodeBatch(batch, 0), []);
});

test("property: a batch truncated anywhere throws and never returns records", () => {
  fc.assert(
    fc.property(recordsArb, fc.nat(), (records, cutSeed) => {
      const batch = encodeBatch(records, 1);
      const cut = 1 + (cutSeed % (batch.byteLength - 1)); // 1 .. length-1
      assert.throws(() => decodeBatch(batch.subarray(0, cut), 0), `a batch cut to ${cut} of ${batch.byteLength} bytes decoded`);
    }),
    FC,
  );
});

test("malformed input: every truncation point fails with an error that names the record batch", () => {
  // A clear error says what is malformed, not Node's "The value of "offset" is out of range".
  const batch = encodeBatch([rec("ab", "xyz", { key: new Uint8Array([1, 2]), headers: [{ key: "h", value: new Uint8Array([9]) }] })], 10);
  const unclear: string[] = [];
  for (let cut = 1; cut < batch.byteLength; cut++) {
    try {
      decodeBatch(batch.subarray(0, cut), 0);
      assert.fail(`a batch cut to ${cut} bytes decoded`);
    } catch (e) {
      const message = (e as Error).message;
      if (!/malformed record batch/.test(message)) unclear.push(`cut ${cut}: ${message}`);
    }
  }
  assert.deepEqual(unclear, [], `truncated batches fail with unclear errors:\n${unclear.join("\n")}`);
});

test("property: trailing bytes after the last record are rejected", () => {
  fc.assert(
    fc.property(recordsArb, fc.uint8Array({ minLength: 1, maxLength: 16 }), (records, extra) => {
      const batch = encodeBatch(records, 1);
      const padded = new Uint8Array(batch.byteLength + extra.byteLength);
      padded.set(batch);
      padded.set(extra, batch.byteLength);
      assert.throws(() => decodeBatch(padded, 0), /malformed record batch: \d+ trailing bytes/);
    }),
    FC,
  );
});

test("a count larger than the records present throws; a smaller count leaves trailing bytes and throws", () => {
  const batch = Uint8Array.from(encodeBatch([rec("a", "x"), rec("b", "y")], 1));
  const view = new DataView(batch.buffer);
  view.setUint32(2, 3);
  assert.throws(() => decodeBatch(batch, 0));
  view.setUint32(2, 0xffff_ffff);
  assert.throws(() => decodeBatch(batch, 0));
  view.setUint32(2, 1);
  assert.throws(() => decodeBatch(batch, 0), /trailing bytes/);
});

/** Offsets of the length fields of the first record of a batch made by `encodeBatch([r])`. */
function lengthFieldOffsets(r: ProducedRecord): { field: string; at: number; width: 2 | 4 }[] {
  const enc = (s: string): number => Buffer.byteLength(s, "utf8");
  let o = HEADER_BYTES;
  const out: { field: string; at: number; width: 2 | 4 }[] = [{ field: "id", at: o, width: 2 }];
  o += 2 + enc(r.id);
  out.push({ field: "key", at: o, width: 4 });
  o += 4 + r.key.byteLength;
  out.push({ field: "headerCount", at: o, width: 2 });
  o += 2;
  r.headers.forEach((h, i) => {
    out.push({ field: `header ${i} key`, at: o, width: 2 });
    o += 2 + enc(h.key);
    out.push({ field: `header ${i} value`, at: o, width: 4 });
    o += 4 + h.value.byteLength;
  });
  out.push({ field: "body", at: o, width: 4 });
  return out;
}

test("property: a length field that overruns the batch throws and never returns records", () => {
  fc.assert(
    fc.property(recordArb, fc.nat(), fc.integer({ min: 1, max: 1000 }), (r, pick, overrun) => {
      const batch = Uint8Array.from(encodeBatch([r], 1));
      const fields = lengthFieldOffsets(r);
      const f = fields[pick % fields.length]!;
      const view = new DataView(batch.buffer);
      const remaining = batch.byteLength - f.at - f.width;
      const value = Math.min(remaining + overrun, f.width === 2 ? 0xffff : 0xffff_ffff);
      if (value <= remaining) return; // cannot overrun with this width
      if (f.width === 2) view.setUint16(f.at, value);
      else view.setUint32(f.at, value);
      assert.throws(() => decodeBatch(batch, 0), `an overrunning ${f.field} length (${value}) decoded`);
    }),
    FC,
  );
});

test("an overrunning body length names the field, its size and the batch size", () => {
  const r = rec("id", "body");
  const batch = Uint8Array.from(encodeBatch([r], 1));
  const body = lengthFieldOffsets(r).find((f) => f.field === "body")!;
  new DataView(batch.buffer).setUint32(body.at, 1_000_000);
  assert.throws(() => decodeBatch(batch, 0), /malformed record batch: field of 1000000 bytes at \d+ overruns \d+/);
});

test("property: recordSizeBytes is exactly each record's share of the encoded batch", () => {
  fc.assert(
    fc.property(recordsArb, (records) => {
      const batch = encodeBatch(records, 0);
      const sum = records.reduce((s, r) => s + recordSizeBytes(r), 0);
      assert.equal(batch.byteLength, HEADER_BYTES + sum);
      for (const r of records) assert.equal(encodeBatch([r], 0).byteLength - HEADER_BYTES, recordSizeBytes(r));
    }),
    FC,
  );
});

test("recordSizeBytes counts UTF-8 bytes, not UTF-16 code units", () => {
  const ascii = recordSizeBytes(rec("a", ""));
  assert.equal(recordSizeBytes(rec("é", "")), ascii + 1);
  assert.equal(recordSizeBytes(rec("🚀", "")), ascii + 3);
  assert.equal(recordSizeBytes(rec("a", "", { headers: [{ key: "ключ", value: new Uint8Array(3) }] })), ascii + 2 + 8 + 4 + 3);
});

test("encodeBatch refuses an empty batch", () => {
  assert.throws(() => encodeBatch([], 0), /at least one record/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../raft/index.js";
import { checksum, decodeEntry, encodeEntry } from "./entry-codec.js";
import { StorageCorruptionError } from "./errors.js";

const entry = (index: number, term: number, type: Entry["type"], data: number[]): Entry => ({ index, term, type, data: Uint8Array.from(data) });

test("the checksum is CRC-32C (Castagnoli), by its standard check value", () => {
  assert.equal(checksum(new TextEncoder().encode("123456789")), 0xe3069283);
});

test("entries round-trip: normal, conf, empty data, large terms and indexes", () => {
  for (const e of [entry(1, 1, "normal", [1, 2, 3]), entry(7, 3, "conf", [123]), entry(2 ** 40, 2 ** 45, "normal", [])]) {
    const back = decodeEntry(4, e.index, encodeEntry(e));
    assert.deepEqual({ ...back, data: [...back.data] }, { ...e, data: [...e.data] });
  }
});

test("every single-bit flip anywhere in a stored entry is caught, naming group and index", () => {
  const value = encodeEntry(entry(42, 9, "normal", [10, 20, 30, 40]));
  let caught = 0;
  for (let byte = 0; byte < value.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(value);
      damaged[byte] = damaged[byte]! ^ (1 << bit);
      assert.throws(() => decodeEntry(3, 42, damaged), (e: unknown) => e instanceof StorageCorruptionError && e.group === 3 && e.index === 42);
      caught++;
    }
  }
  assert.equal(caught, value.length * 8);
});

test("a value read under another index, or cut short, is caught", () => {
  const value = encodeEntry(entry(42, 9, "normal", [1]));
  assert.throws(() => decodeEntry(3, 43, value), /checksum mismatch/);
  assert.throws(() => decodeEntry(3, 42, value.subarray(0, value.length - 1)), /checksum mismatch/);
  assert.throws(() => decodeEntry(3, 42, value.subarray(0, 5)), /fewer than its header/);
});

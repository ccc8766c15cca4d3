import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../lib/assert.js";
import { Inflights } from "./inflights.js";

test("inflights are bounded by count: full after maxCount messages, adding more is a programmer error", () => {
  const inf = new Inflights(3, 1_000_000);
  inf.add(10, 1);
  inf.add(20, 1);
  assert.equal(inf.full(), false);
  inf.add(30, 1);
  assert.equal(inf.length, 3);
  assert.equal(inf.full(), true);
  assert.throws(() => inf.add(40, 1), AssertionError);
});

test("inflights are bounded by bytes: full once the bytes in flight reach maxBytes, even with few messages", () => {
  const inf = new Inflights(100, 100);
  inf.add(1, 40);
  inf.add(2, 40);
  assert.equal(inf.inflightBytes, 80);
  assert.equal(inf.full(), false, "80 of 100 bytes");
  inf.add(3, 30);
  assert.equal(inf.inflightBytes, 110);
  assert.equal(inf.full(), true, "110 of 100 bytes: one message may overshoot, then the stream pauses");
  inf.freeLE(1);
  assert.equal(inf.inflightBytes, 70);
  assert.equal(inf.full(), false, "acknowledging the first message frees its bytes");
});

test("exactly maxBytes in flight is full", () => {
  const inf = new Inflights(100, 100);
  inf.add(1, 100);
  assert.equal(inf.full(), true);
});

test("maxBytes 0 disables the byte limit", () => {
  const inf = new Inflights(2, 0);
  inf.add(1, 1e9);
  assert.equal(inf.full(), false);
  inf.add(2, 1e9);
  assert.equal(inf.full(), true, "still bounded by count");
});

test("freeLE frees every message whose last index is <= to, in order, with their bytes", () => {
  //  sent:   (5, 10B) (7, 20B) (9, 30B) (12, 40B)
  //  freeLE(8)  → frees 5 and 7         → 2 left, 70B
  //  freeLE(8)  → nothing (idempotent)
  //  freeLE(4)  → nothing (older than the oldest)
  //  freeLE(12) → frees 9 and 12        → empty
  const inf = new Inflights(10, 1000);
  inf.add(5, 10);
  inf.add(7, 20);
  inf.add(9, 30);
  inf.add(12, 40);
  inf.freeLE(8);
  assert.equal(inf.length, 2);
  assert.equal(inf.inflightBytes, 70);
  inf.freeLE(8);
  inf.freeLE(4);
  assert.equal(inf.length, 2);
  assert.equal(inf.inflightBytes, 70);
  inf.freeLE(12);
  assert.equal(inf.length, 0);
  assert.equal(inf.inflightBytes, 0);
  inf.freeLE(100); // on empty: no-op
  assert.equal(inf.length, 0);
});

test("the ring wraps around: add 1..10, free 1..5, add 11..15, free up to 12", () => {
  const inf = new Inflights(10, 0);
  for (let i = 1; i <= 10; i++) inf.add(i, i);
  assert.equal(inf.full(), true);
  inf.freeLE(5);
  assert.equal(inf.length, 5);
  assert.equal(inf.inflightBytes, 6 + 7 + 8 + 9 + 10);
  for (let i = 11; i <= 15; i++) inf.add(i, i); // these occupy the slots of 1..5
  assert.equal(inf.full(), true);
  inf.freeLE(12);
  assert.equal(inf.length, 3);
  assert.equal(inf.inflightBytes, 13 + 14 + 15);
  inf.add(16, 16);
  inf.freeLE(15);
  assert.equal(inf.length, 1);
  assert.equal(inf.inflightBytes, 16);
  inf.freeLE(16);
  assert.equal(inf.length, 0);
});

test("reset forgets everything", () => {
  const inf = new Inflights(2, 10);
  inf.add(1, 5);
  inf.add(2, 5);
  assert.equal(inf.full(), true);
  inf.reset();
  assert.equal(inf.length, 0);
  assert.equal(inf.inflightBytes, 0);
  assert.equal(inf.full(), false);
  inf.add(3, 1);
  inf.freeLE(3);
  assert.equal(inf.length, 0);
});

test("property: inflights behave like a bounded FIFO of (index, bytes) (model-based, seed 20240611)", () => {
  type Op = { kind: "add"; bytes: number } | { kind: "free"; back: number } | { kind: "reset" };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 50 }).map((bytes) => ({ kind: "add" as const, bytes })) },
    { weight: 3, arbitrary: fc.integer({ min: -2, max: 6 }).map((back) => ({ kind: "free" as const, back })) },
    { weight: 1, arbitrary: fc.constant({ kind: "reset" as const }) },
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 120 }), fc.array(op, { maxLength: 60 }), (maxCount, maxBytes, ops) => {
      const inf = new Inflights(maxCount, maxBytes);
      let model: { index: number; bytes: number }[] = [];
      let lastIndex = 0;
      const modelBytes = () => model.reduce((s, m) => s + m.bytes, 0);
      const modelFull = () => model.length === maxCount || (maxBytes !== 0 && modelBytes() >= maxBytes);
      for (const o of ops) {
        if (o.kind === "add") {
          if (modelFull()) continue; // the leader never adds to a full inflights
          lastIndex += 1 + (o.bytes % 3); // strictly increasing last indexes, as a leader sends them
          inf.add(lastIndex, o.bytes);
          model.push({ index: lastIndex, bytes: o.bytes });
        } else if (o.kind === "free") {
          const to = lastIndex - o.back;
          inf.freeLE(to);
          model = model.filter((m) => m.index > to);
        } else {
          inf.reset();
          model = [];
        }
        assert.equal(inf.length, model.length);
        assert.equal(inf.inflightBytes, modelBytes());
        assert.equal(inf.full(), modelFull());
      }
    }),
    { seed: 20240611, numRuns: 300 },
  );
});

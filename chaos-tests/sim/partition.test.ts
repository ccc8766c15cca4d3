/** Partition shapes: which directed links each blocks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { linkKey, planPartition } from "./partition.js";

const ids = [1, 2, 3, 4, 5];

test("partition: symmetric blocks both directions between the sides, nothing within a side", () => {
  const p = planPartition("symmetric", ids, 0b00110)!; // ids at positions 1 and 2 (2, 3) on side B
  assert.deepEqual(p.sideA, [1, 4, 5]);
  assert.deepEqual(p.sideB, [2, 3]);
  assert.ok(p.blocked.has(linkKey(1, 2)) && p.blocked.has(linkKey(2, 1)));
  assert.ok(!p.blocked.has(linkKey(1, 4)) && !p.blocked.has(linkKey(2, 3)));
});

test("partition: oneWay blocks only A → B", () => {
  const p = planPartition("oneWay", ids, 0b00001, 3)!;
  assert.ok(p.sideA.includes(3), "the focus node is on side A");
  for (const a of p.sideA) {
    for (const b of p.sideB) {
      assert.ok(p.blocked.has(linkKey(a, b)));
      assert.ok(!p.blocked.has(linkKey(b, a)));
    }
  }
});

test("partition: a bridge node reaches both sides, which cannot reach each other", () => {
  const p = planPartition("bridge", ids, 0b0101, 3)!;
  assert.equal(p.bridge, 3);
  assert.ok(!p.sideA.includes(3) && !p.sideB.includes(3));
  for (const x of ids) {
    assert.ok(!p.blocked.has(linkKey(3, x)) && !p.blocked.has(linkKey(x, 3)));
  }
  for (const a of p.sideA) for (const b of p.sideB) assert.ok(p.blocked.has(linkKey(a, b)) && p.blocked.has(linkKey(b, a)));
});

test("partition: any mask gives two non-empty sides covering every node once", () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 7 }), fc.nat({ max: 0xffff }), fc.constantFrom("symmetric", "oneWay", "bridge" as const), fc.boolean(), (n, mask, shape, focus) => {
      const all = Array.from({ length: n }, (_, i) => i + 1);
      const p = planPartition(shape, all, mask, focus ? n : undefined);
      if (shape === "bridge" && n < 3) return assert.equal(p, undefined);
      assert.ok(p !== undefined && p.sideA.length > 0 && p.sideB.length > 0);
      const covered = [...p.sideA, ...p.sideB, ...(p.bridge === undefined ? [] : [p.bridge])].sort((a, b) => a - b);
      assert.deepEqual(covered, all);
      if (focus && shape !== "bridge") assert.ok(p.sideA.includes(n));
      if (focus && shape === "bridge") assert.equal(p.bridge, n);
    }),
    { seed: 1 },
  );
});

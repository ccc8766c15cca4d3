import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRandom, type Random } from "./random.js";

function draw(r: Random, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.nextUint32());
  return out;
}

test("the same seed gives the same sequence, a different seed a different one", () => {
  const a = draw(new SeededRandom(42), 1000);
  const b = draw(new SeededRandom(42), 1000);
  const c = draw(new SeededRandom(43), 1000);
  assert.deepEqual(a, b);
  const same = a.filter((x, i) => x === c[i]).length;
  assert.ok(same < 5, `seeds 42 and 43 share ${same} of 1000 values`);
  for (const x of a) assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32, `not a uint32: ${x}`);
});

test("the sequence is pinned: a change of generator shows up here (and would change every simulation seed)", () => {
  // Recorded from this implementation (xoshiro128** seeded through splitmix32). A recorded seed
  // must replay the same simulation after an upgrade, so changing these values is a breaking change.
  assert.deepEqual(draw(new SeededRandom(1), 3), [2442144158, 3238099751, 3819917871]);
  assert.deepEqual(draw(new SeededRandom(1).fork(), 2), [2659582926, 1751985058]);
  const r = new SeededRandom(123);
  assert.deepEqual([r.int(10), r.int(10), r.int(10), r.int(1000), r.intBetween(5, 9)], [1, 5, 9, 80, 9]);
  // Seed 0 is valid too and does not produce a degenerate stream.
  const z = draw(new SeededRandom(0), 100);
  assert.ok(new Set(z).size > 95, "seed 0 must not produce a degenerate stream");
});

test("fork() gives an independent stream: using the fork does not shift the parent", () => {
  const parent = new SeededRandom(7);
  const fork = parent.fork();
  const forkValues = draw(fork, 500); // consume a lot from the fork
  const parentAfter = draw(parent, 100);

  const control = new SeededRandom(7);
  control.fork(); // forking consumes one value of the parent, using the fork consumes none
  assert.deepEqual(parentAfter, draw(control, 100));

  // The fork is not a copy of the parent's stream, nor of a fresh generator with the parent's seed.
  const fresh = draw(new SeededRandom(7), 500);
  assert.ok(forkValues.filter((x, i) => x === fresh[i]).length < 5);
  assert.ok(forkValues.filter((x, i) => x === parentAfter[i]).length < 5);
});

test("forks are deterministic and successive forks differ", () => {
  const a = new SeededRandom(99);
  const b = new SeededRandom(99);
  const a1 = draw(a.fork(), 50);
  const a2 = draw(a.fork(), 50);
  assert.deepEqual(a1, draw(b.fork(), 50));
  assert.deepEqual(a2, draw(b.fork(), 50));
  assert.ok(a1.filter((x, i) => x === a2[i]).length < 3, "two forks of one parent must not share a stream");
});

test("int(bound) stays in [0, bound) for small, odd and maximal bounds", () => {
  const r = new SeededRandom(5);
  for (let i = 0; i < 200; i++) assert.equal(r.int(1), 0);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const x = r.int(7);
    assert.ok(Number.isInteger(x) && x >= 0 && x < 7, `int(7) gave ${x}`);
    seen.add(x);
  }
  assert.equal(seen.size, 7, "every value of int(7) appears in 2000 draws");
  for (let i = 0; i < 1000; i++) {
    const x = r.int(2 ** 32);
    assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
    const y = r.int(2 ** 31 + 1); // the worst case for modulo bias: almost half the values are rejected
    assert.ok(Number.isInteger(y) && y >= 0 && y <= 2 ** 31);
  }
});

test("int(10) is roughly uniform (chi-square over 100 000 draws)", () => {
  const r = new SeededRandom(2024);
  const n = 100_000;
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < n; i++) counts[r.int(10)]!++;
  const expected = n / 10;
  let chi2 = 0;
  for (const c of counts) chi2 += (c - expected) ** 2 / expected;
  // 9 degrees of freedom: P(chi2 > 27.88) = 0.001. The seed is fixed, so this never flakes.
  assert.ok(chi2 < 27.88, `chi-square ${chi2.toFixed(2)} for counts ${counts.join(",")}`);
});

test("int(2^31 + 1) has no modulo bias towards the low half", () => {
  // Without rejection sampling, x % (2^31+1) over uint32 makes [0, 2^31-1) twice as likely as the top.
  const r = new SeededRandom(11);
  const bound = 2 ** 31 + 1;
  let low = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) if (r.int(bound) < bound / 2) low++;
  // Unbiased: about half. Biased (plain modulo): about two thirds.
  assert.ok(Math.abs(low / n - 0.5) < 0.02, `low half fraction ${low / n}`);
});

test("bad bounds throw a RangeError", () => {
  const r = new SeededRandom(1);
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32 + 1]) {
    assert.throws(() => r.int(bad), RangeError, `int(${bad}) must throw`);
  }
  assert.throws(() => r.intBetween(5, 4), RangeError);
});

test("intBetween is inclusive at both ends; float is in [0, 1); chance(0) and chance(1) are certain", () => {
  const r = new SeededRandom(3);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const x = r.intBetween(-2, 2);
    assert.ok(x >= -2 && x <= 2);
    seen.add(x);
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [-2, -1, 0, 1, 2]);
  assert.equal(r.intBetween(9, 9), 9);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    assert.equal(r.chance(0), false);
    assert.equal(r.chance(1), true);
  }
});

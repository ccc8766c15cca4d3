import { test } from "node:test";
import assert from "node:assert/strict";
import { murmur2, partitionForKey, Partitioner } from "./partitioner.js";

test("murmur2 matches Apache Kafka's Utils.murmur2 test vectors", () => {
  // From Kafka's UtilsTest.testMurmur2: keyed records co-partition with Kafka clients.
  const vectors: Array<[string, number]> = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];
  for (const [key, hash] of vectors) assert.equal(murmur2(Buffer.from(key)), hash, key);
});

test("partitionForKey is toPositive(murmur2) modulo the partition count", () => {
  assert.equal(partitionForKey(Buffer.from("21"), 7), (-973932308 & 0x7fffffff) % 7);
  for (let i = 0; i < 1000; i++) {
    const p = partitionForKey(Buffer.from(`key-${i}`), 6);
    assert.ok(Number.isInteger(p) && p >= 0 && p < 6);
  }
});

test("keyed records always map to the same partition; keyless ones go round-robin per topic", () => {
  const partitioner = new Partitioner();
  const key = Buffer.from("user-42");
  const first = partitioner.partition("t", key, 6);
  for (let i = 0; i < 10; i++) assert.equal(partitioner.partition("t", key, 6), first);
  assert.deepEqual([0, 1, 2, 3].map(() => partitioner.partition("t", undefined, 3)), [0, 1, 2, 0]);
  assert.deepEqual([0, 1].map(() => partitioner.partition("u", Buffer.alloc(0), 3)), [0, 1], "an empty key counts as no key; another topic has its own turn");
});

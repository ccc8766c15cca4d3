import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../lib/assert.js";
import { allEntriesRange, entryKey, groupKey, GroupKeyKind, groupRange, nodeMetaKey, parseGroupKey, termRunKey } from "./keys.js";

const inRange = (key: Buffer, r: { gte: Buffer; lt: Buffer }): boolean => Buffer.compare(key, r.gte) >= 0 && Buffer.compare(key, r.lt) < 0;

test("entry keys sort like their indexes, across every byte boundary up to 2^53 - 1", () => {
  const indexes = [0, 1, 255, 256, 65_535, 65_536, 2 ** 24, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
  const keys = indexes.map((i) => entryKey(9, i));
  const sorted = [...keys].sort(Buffer.compare);
  assert.deepEqual(sorted.map((k) => parseGroupKey(k)!.index), indexes);
});

test("a group's keys sort by kind and stay inside its range, apart from its neighbours'", () => {
  const g = 256;
  const kinds = [groupKey(g, GroupKeyKind.dropMarker), groupKey(g, GroupKeyKind.hardState), groupKey(g, GroupKeyKind.logEnd), groupKey(g, GroupKeyKind.snapshotMeta), groupKey(g, GroupKeyKind.snapshotData), termRunKey(g, 5), entryKey(g, 1), entryKey(g, Number.MAX_SAFE_INTEGER)];
  assert.deepEqual([...kinds].sort(Buffer.compare), kinds);
  for (const k of kinds) assert.ok(inRange(k, groupRange(g)));
  for (const k of [entryKey(g - 1, Number.MAX_SAFE_INTEGER), groupKey(g + 1, GroupKeyKind.dropMarker), nodeMetaKey("identity")]) assert.ok(!inRange(k, groupRange(g)));
  assert.ok(inRange(entryKey(0xffff_ffff, 3), groupRange(0xffff_ffff)), "the last group id has a range too");
  assert.ok(!inRange(termRunKey(g, 9), allEntriesRange(g)) && inRange(entryKey(g, 0), allEntriesRange(g)));
});

test("parsing inverts encoding and rejects malformed keys", () => {
  assert.deepEqual(parseGroupKey(entryKey(3, 2 ** 40)), { group: 3, kind: GroupKeyKind.entry, index: 2 ** 40 });
  assert.deepEqual(parseGroupKey(termRunKey(4, 17)), { group: 4, kind: GroupKeyKind.termRun, index: 17 });
  assert.deepEqual(parseGroupKey(groupKey(5, GroupKeyKind.hardState)), { group: 5, kind: GroupKeyKind.hardState, index: 0 });
  assert.equal(parseGroupKey(nodeMetaKey("identity")), undefined);
  assert.equal(parseGroupKey(entryKey(3, 1).subarray(0, 10)), undefined);
  assert.equal(parseGroupKey(Buffer.concat([groupKey(5, GroupKeyKind.hardState), Buffer.of(0)])), undefined);
  assert.equal(parseGroupKey(Buffer.of(2, 0, 0, 0, 1, 0x07)), undefined, "unknown kind");
  const huge = entryKey(3, 1);
  huge.writeUInt32BE(2 ** 21, 6);
  assert.equal(parseGroupKey(huge), undefined, "an index beyond 2^53 is not a valid key");
});

test("numbers that are not u64-safe integers and ids that are not u32 are programmer errors", () => {
  assert.throws(() => entryKey(1, -1), AssertionError);
  assert.throws(() => entryKey(1, 1.5), AssertionError);
  assert.throws(() => entryKey(1, 2 ** 53), AssertionError);
  assert.throws(() => entryKey(2 ** 32, 1), AssertionError);
});

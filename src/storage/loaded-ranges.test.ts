import { test } from "node:test";
import assert from "node:assert/strict";
import { LoadedRange, LoadedRanges } from "./loaded-ranges.js";
import { ents } from "./testing/fixtures.js";

// ents(…, 1, 76) entries weigh 100 bytes each (76 data + 24).
const range = (group: number, lo: number, hi: number) => new LoadedRange(group, ents(lo, hi - 1, 1, 76));

test("beyond the budget the least recently used ranges go first, never the one just added", () => {
  const loaded = new LoadedRanges(1000);
  loaded.add(range(1, 10, 14)); // 400 bytes
  loaded.add(range(2, 10, 14)); // 800
  assert.ok(loaded.find(1, 12), "reading group 1's range makes it the most recent");
  loaded.add(range(3, 10, 14)); // 1200 > 1000: group 2's range goes
  assert.equal(loaded.find(2, 12), undefined);
  assert.ok(loaded.find(1, 12) && loaded.find(3, 12));
  loaded.add(range(4, 0, 20)); // 2000 on its own: everything else goes, it stays
  assert.deepEqual([loaded.find(1, 12), loaded.find(3, 12)], [undefined, undefined]);
  assert.equal(loaded.find(4, 19)?.hi, 20);
  assert.equal(loaded.bytes, 2000);
});

test("a new range replaces the group's ranges it overlaps; others stay", () => {
  const loaded = new LoadedRanges(10_000);
  loaded.add(range(1, 10, 20));
  loaded.add(range(1, 30, 40));
  loaded.add(range(1, 15, 25));
  assert.equal(loaded.find(1, 12), undefined);
  assert.deepEqual([loaded.find(1, 15)?.lo, loaded.find(1, 35)?.lo], [15, 30]);
  assert.equal(loaded.bytes, 2000);
});

test("truncation and compaction cut ranges down; dropping a group forgets all of it", () => {
  const loaded = new LoadedRanges(10_000);
  loaded.add(range(1, 10, 20));
  loaded.add(range(2, 10, 20));
  loaded.truncateFrom(1, 15);
  assert.deepEqual([loaded.find(1, 14)?.hi, loaded.find(1, 15)], [15, undefined]);
  loaded.dropThrough(1, 11);
  assert.deepEqual([loaded.find(1, 11), loaded.find(1, 12)?.lo], [undefined, 12]);
  loaded.dropGroup(2);
  assert.equal(loaded.find(2, 12), undefined);
  assert.equal(loaded.bytes, 300);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { LogUnavailableError } from "../../raft/index.js";
import { StorageCorruptionError } from "../errors.js";
import { bootstrapWrite, ents, gw, memoryHarness } from "../testing/fixtures.js";
import { raftStoreSuite } from "../testing/raft-store-suite.js";
import { MemoryDisk } from "./memory-disk.js";
import { openMemoryRaftStore } from "./memory-raft-store.js";

raftStoreSuite("memory store", () => memoryHarness());

test("memory store: a crash loses the writes made without sync since the last synced one", async () => {
  const disk = new MemoryDisk();
  const store = await openMemoryRaftStore({ disk });
  await store.write([bootstrapWrite(1)], true);
  await store.write([gw(1, { entries: ents(2, 5, 1) })], false);
  await store.write([gw(2, { hardState: { term: 3, vote: 2, commit: 0 } })], true); // makes 2..5 durable too
  await store.write([gw(1, { entries: ents(6, 9, 1) })], false);
  await store.write([gw(1, { entries: ents(5, 5, 2) })], false); // replaces 5..9 with 5
  await store.dropGroup(3); // a synced no-op change still syncs everything before it
  await store.write([gw(1, { entries: ents(6, 7, 2) })], false);
  disk.crash();
  assert.throws(() => store.storage(1).lastIndex(), /crashed/, "the crashed store's views refuse reads");
  const after = await openMemoryRaftStore({ disk });
  const v = after.storage(1);
  assert.equal(v.lastIndex(), 5, "the unsynced append of 6..7 is gone; the synced replacement is kept");
  assert.equal(v.term(5), 2);
  assert.deepEqual(after.storage(2).initialState().hardState, { term: 3, vote: 2, commit: 0 });
  await after.close();
});

test("memory store: a damaged entry makes open refuse and a load of it fail", async () => {
  const disk = new MemoryDisk();
  const store = await openMemoryRaftStore({ disk, cacheBytesPerGroup: 1 });
  await store.write([bootstrapWrite(1)], true);
  await store.write([gw(1, { entries: ents(2, 9, 1) })], true);
  disk.damageEntry(1, 4);
  assert.throws(() => store.storage(1).entries(3, 5, 1e9), LogUnavailableError);
  await assert.rejects(store.load(1, 3, 5), (e: unknown) => e instanceof StorageCorruptionError && e.group === 1 && e.index === 4);
  assert.throws(() => store.storage(1).lastIndex(), StorageCorruptionError, "the group stops after the damage is found");
  await assert.rejects(store.write([gw(1, { entries: ents(10, 10, 1) })], true), /group 1 is stopped/);
  await store.close();
  await assert.rejects(openMemoryRaftStore({ disk }), (e: unknown) => e instanceof StorageCorruptionError && e.group === 1 && e.index === 4);
});

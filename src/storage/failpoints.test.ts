/**
 * The storage failpoints (lib/failpoints.ts) on the RocksDB store: where each crash point fires
 * (shown by what a reopened store or the raw engine holds after a crash callback that throws),
 * and that `storage/lose-unsynced` acknowledges writes unwritten so a crash loses them. A "crash"
 * here abandons the store without closing it; with lose-unsynced, it first cuts the engine's
 * writes off (as a dead process writes nothing more) and closes the engine under the store.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailpointCrash, parseFailpoints, type CrashFailpoint, type Failpoints } from "../lib/failpoints.js";
import type { GroupId } from "../lib/ids.js";
import { openEngine } from "./engine.js";
import { entryKey, groupKey, GroupKeyKind } from "./keys.js";
import { openRaftStore, type RocksRaftStore } from "./rocks-raft-store.js";
import { decodeSnapshotMeta } from "./state-codec.js";
import { bootstrapWrite, ents, gw, shape, snap, SpyEngine } from "./testing/fixtures.js";

const G: GroupId = 7;

/** Runs `body` with a fresh data directory and a store opener; removes the directory afterwards. */
async function withDir(body: (dir: string, open: (failpoints?: Failpoints) => Promise<RocksRaftStore>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "raftmq-failpoints-"));
  const opened: RocksRaftStore[] = [];
  const open = async (failpoints?: Failpoints): Promise<RocksRaftStore> => {
    const store = await openRaftStore({ dir, clusterId: "c1", nodeId: 1, failpoints });
    opened.push(store);
    return store;
  };
  try {
    await body(dir, open);
  } finally {
    for (const s of opened) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const crashed = (name: CrashFailpoint) => (e: unknown): boolean => e instanceof FailpointCrash && e.failpoint === name;

describe("failpoints: raft-store crash points", () => {
  test("before-write crashes before the round's batch is written: a reopened store lacks its entries", async () => {
    await withDir(async (_dir, open) => {
      // Hit 1: the bootstrap round. Rounds with nothing to write are not counted.
      const store = await open(parseFailpoints("raft-store/before-write=crash:2"));
      await store.write([bootstrapWrite(G)], true);
      await store.write([], true);
      await store.write([], false);
      await assert.rejects(store.write([gw(G, { entries: ents(2, 4, 1), hardState: { term: 1, vote: 1, commit: 1 } })], true), crashed("raft-store/before-write"));
      assert.equal(store.storage(G).lastIndex(), 1, "the view did not change either");
      await store.close();
      const reopened = await open();
      assert.equal(reopened.storage(G).lastIndex(), 1, "nothing of the round reached the disk");
      assert.deepEqual(reopened.storage(G).initialState().hardState, { term: 1, vote: 0, commit: 1 });
    });
  });

  test("after-write crashes once the batch is durable, before the round completes: a reopened store has its entries", async () => {
    await withDir(async (_dir, open) => {
      const store = await open(parseFailpoints("raft-store/after-write=crash:2"));
      await store.write([bootstrapWrite(G)], true);
      await assert.rejects(store.write([gw(G, { entries: ents(2, 4, 1), hardState: { term: 1, vote: 1, commit: 1 } })], true), crashed("raft-store/after-write"));
      await store.close();
      const reopened = await open();
      assert.equal(reopened.storage(G).lastIndex(), 4);
      assert.deepEqual(shape(reopened.storage(G).entries(2, 5, 1e9)), ["2:1", "3:1", "4:1"]);
      assert.deepEqual(reopened.storage(G).initialState().hardState, { term: 1, vote: 1, commit: 1 });
    });
  });

  test("snapshot-write fires on compaction after the snapshot is stored and before its entries are cleared", async () => {
    await withDir(async (dir, open) => {
      const store = await open(parseFailpoints("raft-store/snapshot-write=crash"));
      await store.write([bootstrapWrite(G)], true); // a snapshot over an empty log: nothing to clear, not counted
      await store.write([gw(G, { entries: ents(2, 9, 1), hardState: { term: 1, vote: 1, commit: 9 } })], true);
      await assert.rejects(store.compact(G, snap(5, 1)), crashed("raft-store/snapshot-write"));
      await store.close();
      const engine = await openEngine(dir);
      try {
        const meta = await engine.get(groupKey(G, GroupKeyKind.snapshotMeta));
        assert.equal(decodeSnapshotMeta(G, meta!).metadata.index, 5, "the snapshot is stored");
        for (let i = 2; i <= 5; i++) assert.ok((await engine.get(entryKey(G, i))) !== undefined, `entry ${i} is not cleared yet`);
      } finally {
        await engine.close();
      }
      const reopened = await open();
      assert.deepEqual([reopened.storage(G).firstIndex(), reopened.storage(G).lastIndex()], [6, 9], "the next open finishes the clean-up");
    });
  });

  test("snapshot-write counts compactions and snapshots installed over stored entries, not bootstrap snapshots", async () => {
    await withDir(async (_dir, open) => {
      const hits: CrashFailpoint[] = [];
      const record = (name: CrashFailpoint): void => void hits.push(name);
      const store = await open(parseFailpoints("raft-store/snapshot-write=crash:1", record));
      await store.write([bootstrapWrite(G)], true);
      await store.write([gw(G, { entries: ents(2, 9, 1) })], true);
      assert.deepEqual(hits, []);
      await store.compact(G, snap(3, 1));
      assert.deepEqual(hits, ["raft-store/snapshot-write"], "the compaction fired it (crash:1)");
      // Crash points fire once; a second configuration counts a snapshot install by a write round.
      await store.close();
      const counted: CrashFailpoint[] = [];
      const again = await open(parseFailpoints("raft-store/snapshot-write=crash:2", (name) => void counted.push(name)));
      await again.write([bootstrapWrite(8)], true); // not counted: group 8 has no entries to replace
      await again.write([gw(G, { snapshot: snap(12, 2), hardState: { term: 2, vote: 0, commit: 12 } })], true); // hit 1
      assert.deepEqual(counted, []);
      await again.write([gw(8, { entries: ents(2, 3, 1) })], true);
      await again.write([gw(8, { snapshot: snap(20, 3), hardState: { term: 3, vote: 0, commit: 20 } })], true); // hit 2
      assert.deepEqual(counted, ["raft-store/snapshot-write"]);
      assert.equal(again.storage(G).firstIndex(), 13);
    });
  });
});

describe("failpoints: storage/lose-unsynced", () => {
  test("writes are acknowledged unwritten; reads see them without writing them out; a crash loses only what was not written out", async () => {
    const dir = await mkdtemp(join(tmpdir(), "raftmq-failpoints-"));
    try {
      const spy = new SpyEngine(await openEngine(dir));
      const store = await openRaftStore({ dir, clusterId: "c1", nodeId: 1, engine: spy, failpoints: parseFailpoints("storage/lose-unsynced=on") });
      // From here to the power cut, each step runs on microtasks only, so the write-back timer cannot interleave.
      const before = spy.writes.length;
      await store.write([bootstrapWrite(G), bootstrapWrite(G + 1)], true);
      await store.write([gw(G, { entries: ents(2, 4, 1), hardState: { term: 1, vote: 1, commit: 4 } })], true);
      assert.equal(spy.writes.length, before, "acknowledged (even a synced write) without reaching the engine");
      assert.deepEqual(shape(await store.readEntries(G, 2, 5, 1e9)), ["2:1", "3:1", "4:1"], "a read sees every earlier write");
      assert.equal(spy.writes.length, before, "the read did not write the queue out");
      await store.dropGroup(G + 1); // its clear writes the queue out first, in order
      assert.ok(spy.writes.length > before, "a clear wrote the queue out");
      assert.equal(spy.writes[before]!.sync, false, "never synced");
      await store.write([gw(G, { entries: ents(5, 6, 1), hardState: { term: 1, vote: 1, commit: 6 } })], true);
      assert.equal(store.storage(G).lastIndex(), 6, "acknowledged and visible to the core");
      // Power cut: the dead process writes nothing more; the engine closes under the store.
      spy.failWrites = new Error("power cut");
      await spy.close();

      const reopened = await openRaftStore({ dir, clusterId: "c1", nodeId: 1 });
      try {
        assert.equal(reopened.storage(G).lastIndex(), 4, "entries 5 and 6 were acknowledged but lost");
        assert.deepEqual(reopened.storage(G).initialState().hardState, { term: 1, vote: 1, commit: 4 });
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("without the switch every synced write reaches the engine before it is acknowledged", async () => {
    const dir = await mkdtemp(join(tmpdir(), "raftmq-failpoints-"));
    try {
      const spy = new SpyEngine(await openEngine(dir));
      const store = await openRaftStore({ dir, clusterId: "c1", nodeId: 1, engine: spy, failpoints: parseFailpoints("broker/dedup-off=on") });
      const before = spy.writes.length;
      await store.write([bootstrapWrite(G)], true);
      assert.deepEqual(spy.writes.slice(before).map((w) => w.sync), [true]);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

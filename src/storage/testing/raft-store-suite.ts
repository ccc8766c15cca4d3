/**
 * The behaviour every RaftStore must show, as one suite that each implementation runs against its
 * own harness (rocks-raft-store.test.ts, memory/memory-raft-store.test.ts).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../lib/assert.js";
import type { GroupId } from "../../lib/ids.js";
import { SeededRandom } from "../../lib/random.js";
import type { RaftStore } from "../../multiraft/ports.js";
import type { Entry } from "../../raft/index.js";
import { LogCompactedError, LogUnavailableError, RawNode, SnapshotUnavailableError } from "../../raft/index.js";
import { DataDirInUseError, IdentityMismatchError } from "../errors.js";
import { bootstrapWrite, ent, ents, gw, shape, snap, text, type StoreHarness } from "./fixtures.js";

const G: GroupId = 7;
const BIG = Number.MAX_SAFE_INTEGER;

/** Runs `body` on a fresh harness and always disposes of it. */
function withHarness(make: () => Promise<StoreHarness>, body: (h: StoreHarness) => Promise<void>): () => Promise<void> {
  return async () => {
    const h = await make();
    try {
      await body(h);
    } finally {
      await h.dispose();
    }
  };
}

/** A group bootstrapped at (1, 1) with entries 2..last of `term`, synced. */
async function seeded(store: RaftStore, last: number, term = 2, bytes?: number): Promise<void> {
  await store.write([bootstrapWrite(G)], true);
  await store.write([gw(G, { entries: ents(2, last, term, bytes), hardState: { term, vote: 1, commit: 1 } })], true);
}

async function reopen(h: StoreHarness, store: RaftStore, options = {}): Promise<RaftStore> {
  await store.close();
  return h.open(options);
}

/** Declares the shared behaviour tests for one implementation. */
export function raftStoreSuite(name: string, make: () => Promise<StoreHarness>): void {
  describe(`${name}: the RaftStore contract`, () => {
    roundTripTests(make);
    replacementTests(make);
    cacheTests(make);
    consumerAndDropTests(make);
    refusalTests(make);
    coreIntegrationTests(make);
  });
}

function roundTripTests(make: () => Promise<StoreHarness>): void {
  test("a new store is empty and an unknown group reads as an empty log", withHarness(make, async (h) => {
    const store = await h.open();
    assert.deepEqual(store.groups(), []);
    const v = store.storage(3);
    assert.deepEqual([v.firstIndex(), v.lastIndex(), v.term(0)], [1, 0, 0]);
    assert.deepEqual(v.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, confState: { voters: [], learners: [] } });
    assert.equal(v.snapshot().metadata.index, 0);
    assert.deepEqual(v.entries(1, 1, BIG), []);
  }));

  test("a bootstrapped group survives close and reopen", withHarness(make, async (h) => {
    let store = await h.open();
    await store.write([bootstrapWrite(G, [1, 2, 3])], true);
    store = await reopen(h, store);
    assert.deepEqual(store.groups(), [G]);
    const v = store.storage(G);
    assert.deepEqual([v.firstIndex(), v.lastIndex(), v.term(1)], [2, 1, 1]);
    assert.deepEqual(v.initialState(), { hardState: { term: 1, vote: 0, commit: 1 }, confState: { voters: [1, 2, 3], learners: [] } });
    assert.deepEqual(v.snapshot().metadata, { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } });
    assert.throws(() => v.term(0), LogCompactedError);
    assert.throws(() => v.entries(1, 2, BIG), LogCompactedError);
  }));

  test("entries and hard state of several groups round-trip, written in one round", withHarness(make, async (h) => {
    let store = await h.open();
    await store.write([bootstrapWrite(1), bootstrapWrite(2), bootstrapWrite(3)], true);
    await store.write(
      [gw(1, { entries: ents(2, 4, 1), hardState: { term: 1, vote: 1, commit: 3 } }), gw(2, { entries: [ent(2, 1), ent(3, 2)] }), gw(3, { hardState: { term: 5, vote: 2, commit: 1 } })],
      true,
    );
    store = await reopen(h, store);
    assert.deepEqual([...store.groups()].sort(), [1, 2, 3]);
    assert.deepEqual(shape(store.storage(1).entries(2, 5, BIG)), ["2:1", "3:1", "4:1"]);
    assert.equal(text(store.storage(1).entries(3, 4, BIG)[0]!.data), "e3t1");
    assert.deepEqual(store.storage(1).initialState().hardState, { term: 1, vote: 1, commit: 3 });
    assert.deepEqual(shape(store.storage(2).entries(2, 4, BIG)), ["2:1", "3:2"]);
    assert.deepEqual(store.storage(3).initialState().hardState, { term: 5, vote: 2, commit: 1 });
    assert.equal(store.storage(3).lastIndex(), 1);
  }));

  test("close() lets the changes already asked for finish, then refuses new ones", withHarness(make, async (h) => {
    let store = await h.open();
    const writing = store.write([bootstrapWrite(G)], true);
    const appending = store.write([gw(G, { entries: ents(2, 3, 1) })], false);
    await store.close();
    await Promise.all([writing, appending]);
    assert.throws(() => store.storage(G), AssertionError);
    store = await h.open();
    assert.equal(store.storage(G).lastIndex(), 3);
  }));

  test("writes made without sync are kept across a clean close", withHarness(make, async (h) => {
    let store = await h.open();
    await store.write([bootstrapWrite(G)], false);
    await store.write([gw(G, { entries: ents(2, 3, 1) })], false);
    store = await reopen(h, store);
    assert.equal(store.storage(G).lastIndex(), 3);
  }));

  test("large snapshot data is there once after open (to restore from), then read back on demand", withHarness(make, async (h) => {
    let store = await h.open({ snapshotCacheBytesMax: 8 });
    const data = new Uint8Array(100).map((_, i) => i);
    await store.write([gw(G, { snapshot: snap(5, 2, [1], data), hardState: { term: 2, vote: 0, commit: 5 } })], true);
    assert.throws(() => store.storage(G).snapshot(), SnapshotUnavailableError, "the writer had the data; the view did not keep it");
    store = await reopen(h, store, { snapshotCacheBytesMax: 8 });
    const v = store.storage(G);
    assert.deepEqual(v.snapshot().data, data, "handed out once after open, for the state machine's restore");
    assert.throws(() => v.snapshot(), SnapshotUnavailableError);
    let got: Uint8Array | undefined;
    const deadline = Date.now() + 5000; // the read runs on the binding's thread pool: allow for a busy machine
    while (got === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      try {
        got = v.snapshot().data;
      } catch (e) {
        if (!(e instanceof SnapshotUnavailableError)) throw e;
      }
    }
    assert.deepEqual(got, data);
    assert.throws(() => v.snapshot(), SnapshotUnavailableError, "large data is handed out once, then read again");
    assert.deepEqual(v.initialState().confState, { voters: [1], learners: [] }, "the metadata is always at hand");
  }));
}

function replacementTests(make: () => Promise<StoreHarness>): void {
  test("a conflicting append replaces the stored suffix, before and after reopen", withHarness(make, async (h) => {
    let store = await h.open();
    await seeded(store, 10, 1);
    await store.write([gw(G, { entries: [ent(6, 2), ent(7, 2)], hardState: { term: 2, vote: 2, commit: 5 } })], true);
    const check = (s: RaftStore): void => {
      const v = s.storage(G);
      assert.equal(v.lastIndex(), 7);
      assert.deepEqual(shape(v.entries(2, 8, BIG)), ["2:1", "3:1", "4:1", "5:1", "6:2", "7:2"]);
      assert.deepEqual([v.term(5), v.term(6), v.term(7)], [1, 2, 2]);
    };
    check(store);
    store = await reopen(h, store);
    check(store);
    // Appending after the replacement continues the new suffix.
    await store.write([gw(G, { entries: [ent(8, 3)] })], true);
    store = await reopen(h, store);
    assert.deepEqual(shape(store.storage(G).entries(6, 9, BIG)), ["6:2", "7:2", "8:3"]);
  }));

  test("a snapshot in a write replaces the whole log and entries after it follow", withHarness(make, async (h) => {
    let store = await h.open();
    await seeded(store, 10, 1);
    await store.write([gw(G, { snapshot: snap(20, 3), entries: [ent(19, 3), ent(20, 3), ent(21, 3), ent(22, 4)], hardState: { term: 4, vote: 0, commit: 20 } })], true);
    const check = (s: RaftStore): void => {
      const v = s.storage(G);
      assert.deepEqual([v.firstIndex(), v.lastIndex(), v.term(20), v.term(21), v.term(22)], [21, 22, 3, 3, 4]);
      assert.throws(() => v.entries(10, 12, BIG), LogCompactedError);
      assert.deepEqual(shape(v.entries(21, 23, BIG)), ["21:3", "22:4"]);
    };
    check(store);
    store = await reopen(h, store);
    check(store);
    // A snapshot below the stored one is ignored.
    await store.write([gw(G, { snapshot: snap(15, 3) })], true);
    assert.equal(store.storage(G).firstIndex(), 21);
  }));

  test("a snapshot below the log's end replaces the longer log entirely", withHarness(make, async (h) => {
    let store = await h.open();
    await seeded(store, 30, 1);
    await store.write([gw(G, { snapshot: snap(12, 2), hardState: { term: 2, vote: 0, commit: 12 } })], true);
    store = await reopen(h, store);
    const v = store.storage(G);
    assert.deepEqual([v.firstIndex(), v.lastIndex(), v.term(12)], [13, 12, 2]);
  }));

  test("compaction keeps the snapshot, drops the entries up to it, and keeps terms beyond", withHarness(make, async (h) => {
    let store = await h.open();
    await store.write([bootstrapWrite(G)], true);
    await store.write([gw(G, { entries: [...ents(2, 5, 1), ...ents(6, 9, 2)], hardState: { term: 2, vote: 1, commit: 9 } })], true);
    await store.compact(G, snap(7, 2, [1, 2, 3], new Uint8Array([9, 9])));
    const check = (s: RaftStore): void => {
      const v = s.storage(G);
      assert.deepEqual([v.firstIndex(), v.lastIndex(), v.term(7), v.term(8), v.term(9)], [8, 9, 2, 2, 2]);
      assert.throws(() => v.term(6), LogCompactedError);
      assert.throws(() => v.entries(7, 9, BIG), LogCompactedError);
      assert.deepEqual(shape(v.entries(8, 10, BIG)), ["8:2", "9:2"]);
      assert.deepEqual(v.snapshot().data, new Uint8Array([9, 9]));
    };
    check(store);
    store = await reopen(h, store);
    check(store);
    await assert.rejects(store.readEntries(G, 5, 10, BIG), LogCompactedError);
    // Compacting everything leaves an empty log that appends continue.
    await store.compact(G, snap(9, 2));
    await store.write([gw(G, { entries: [ent(10, 3)] })], true);
    store = await reopen(h, store);
    assert.deepEqual([store.storage(G).firstIndex(), store.storage(G).lastIndex(), store.storage(G).term(10)], [10, 10, 3]);
  }));
}

function cacheTests(make: () => Promise<StoreHarness>): void {
  test("term(i) answers for every index after reopen without loading any entry", withHarness(make, async (h) => {
    let store = await h.open({ cacheBytesPerGroup: 1 });
    await store.write([bootstrapWrite(G)], true);
    await store.write([gw(G, { entries: [...ents(2, 40, 1), ...ents(41, 80, 3), ...ents(81, 100, 7)], hardState: { term: 7, vote: 1, commit: 90 } })], true);
    store = await reopen(h, store, { cacheBytesPerGroup: 1 });
    const v = store.storage(G);
    assert.deepEqual([1, 2, 40, 41, 80, 81, 100].map((i) => v.term(i)), [1, 1, 1, 3, 3, 7, 7]);
    assert.throws(() => v.entries(50, 51, BIG), LogUnavailableError, "the entries themselves are not in memory");
    assert.deepEqual(shape(v.entries(100, 101, BIG)), ["100:7"], "the last entry stays cached");
  }));

  test("a read beyond the cache misses; load() fills it and the read succeeds", withHarness(make, async (h) => {
    let store = await h.open({ cacheBytesPerGroup: 1000 });
    await seeded(store, 200, 2, 100);
    store = await reopen(h, store, { cacheBytesPerGroup: 1000 });
    const v = store.storage(G);
    assert.deepEqual(shape(v.entries(195, 201, BIG)).length, 6, "recent entries are cached");
    assert.throws(() => v.entries(10, 20, BIG), (e: unknown) => e instanceof LogUnavailableError && e.lo === 10 && e.hi === 20);
    assert.deepEqual(v.takeMisses(), [{ lo: 10, hi: 20 }]);
    assert.deepEqual(v.takeMisses(), [], "misses are handed out once");
    await store.load(G, 10, 20);
    assert.deepEqual(shape(v.entries(10, 20, BIG)), shape(ents(10, 19, 2)));
    assert.equal(text(v.entries(15, 16, BIG)[0]!.data), text(ent(15, 2, 100).data));
    // A read that runs from a loaded range into a gap misses at the first missing index.
    assert.throws(() => v.entries(15, 30, BIG), (e: unknown) => e instanceof LogUnavailableError && e.lo === 20);
    assert.deepEqual(v.takeMisses(), [{ lo: 20, hi: 30 }]);
  }));

  test("one load lets a core read of up to loadBytesMax succeed", withHarness(make, async (h) => {
    const store = await h.open({ cacheBytesPerGroup: 1, loadBytesMax: 500, loadedBytesMax: 1000 });
    await seeded(store, 100, 2, 100); // 124 bytes per entry
    const v = store.storage(G);
    assert.throws(() => v.entries(10, 100, 500), LogUnavailableError);
    for (const m of v.takeMisses()) await store.load(G, m.lo, m.hi);
    assert.deepEqual(shape(v.entries(10, 100, 500)), shape(ents(10, 13, 2)), "4 entries fit in 500 bytes; the 5th, loaded too, shows where to stop");
  }));

  test("entries() honours maxBytes with at least one entry, across loaded and cached entries", withHarness(make, async (h) => {
    const store = await h.open({ cacheBytesPerGroup: 1000 });
    await seeded(store, 60, 2, 100);
    const v = store.storage(G);
    await store.load(G, 2, 61);
    assert.equal(v.entries(2, 61, 1).length, 1);
    assert.equal(v.entries(2, 61, 3 * 124).length, 3);
    assert.deepEqual(shape(v.entries(2, 61, BIG)), shape(ents(2, 60, 2)));
  }));

  test("a conflicting append drops replaced entries from loaded ranges", withHarness(make, async (h) => {
    const store = await h.open({ cacheBytesPerGroup: 300 });
    await seeded(store, 50, 2, 100);
    const v = store.storage(G);
    await store.load(G, 2, 50);
    assert.equal(v.entries(20, 21, BIG)[0]!.term, 2);
    await store.write([gw(G, { entries: ents(20, 21, 3), hardState: { term: 3, vote: 1, commit: 1 } })], true);
    assert.deepEqual(shape(v.entries(18, 22, BIG)), ["18:2", "19:2", "20:3", "21:3"]);
    assert.equal(v.lastIndex(), 21);
  }));

  test("a load racing a conflicting append never serves replaced entries", withHarness(make, async (h) => {
    const store = await h.open({ cacheBytesPerGroup: 1 });
    await seeded(store, 50, 2);
    const v = store.storage(G);
    const loading = store.load(G, 2, 50);
    const writing = store.write([gw(G, { entries: ents(10, 12, 3) })], true);
    await Promise.all([loading, writing]);
    assert.equal(v.lastIndex(), 12);
    for (let i = 2; i <= 12; i++) {
      try {
        assert.equal(v.entries(i, i + 1, BIG)[0]!.term, i >= 10 ? 3 : 2, `entry ${i}`);
      } catch (e) {
        if (!(e instanceof LogUnavailableError)) throw e; // not loaded is fine; wrong data is not
      }
    }
  }));
}

function consumerAndDropTests(make: () => Promise<StoreHarness>): void {
  test("readEntries reads from disk: at least one entry, within maxBytes, clamped to the log", withHarness(make, async (h) => {
    const store = await h.open({ cacheBytesPerGroup: 1 });
    await seeded(store, 30, 2, 50);
    assert.deepEqual(shape(await store.readEntries(G, 5, 10, BIG)), shape(ents(5, 9, 2)));
    assert.equal((await store.readEntries(G, 5, 10, 1)).length, 1);
    assert.equal((await store.readEntries(G, 5, 30, 2 * 74)).length, 2);
    assert.deepEqual(shape(await store.readEntries(G, 28, 100, BIG)), ["28:2", "29:2", "30:2"]);
    assert.deepEqual(await store.readEntries(G, 31, 40, BIG), []);
    assert.deepEqual(await store.readEntries(99, 1, 40, BIG), [], "an unknown group has no entries");
    await assert.rejects(store.readEntries(G, 1, 5, BIG), LogCompactedError);
    assert.equal(text((await store.readEntries(G, 7, 8, BIG))[0]!.data), text(ent(7, 2, 50).data));
  }));

  test("dropGroup removes every trace of a group", withHarness(make, async (h) => {
    let store = await h.open();
    await seeded(store, 10);
    await store.write([bootstrapWrite(8)], true);
    const old = store.storage(G);
    await store.dropGroup(G);
    assert.deepEqual(store.groups(), [8]);
    assert.throws(() => old.lastIndex(), /dropped/, "a view of a dropped group refuses reads");
    assert.equal(store.storage(G).lastIndex(), 0, "the group starts over as a new replica");
    store = await reopen(h, store);
    assert.deepEqual(store.groups(), [8]);
    assert.equal(store.storage(G).lastIndex(), 0);
    assert.deepEqual(await store.readEntries(G, 1, 10, BIG), []);
  }));
}

function refusalTests(make: () => Promise<StoreHarness>): void {
  test("a data directory of another cluster or node is refused, naming both", withHarness(make, async (h) => {
    const store = await h.open({ clusterId: "alpha", nodeId: 1 });
    await store.write([bootstrapWrite(G)], true);
    await store.close();
    await assert.rejects(h.open({ clusterId: "beta", nodeId: 1 }), (e: unknown) => {
      assert.ok(e instanceof IdentityMismatchError);
      assert.equal(e.code, "IDENTITY_MISMATCH");
      assert.match(e.message, /cluster "alpha".*cluster "beta"/);
      return true;
    });
    await assert.rejects(h.open({ clusterId: "alpha", nodeId: 2 }), /node 1 of cluster "alpha", not to node 2/);
    const again = await h.open({ clusterId: "alpha", nodeId: 1 });
    assert.deepEqual(again.groups(), [G]);
  }));

  test("a second open while the store is open is refused", withHarness(make, async (h) => {
    const store = await h.open();
    await assert.rejects(h.open(), (e: unknown) => e instanceof DataDirInUseError && e.code === "DATA_DIR_IN_USE" && /in use by another process/.test(e.message));
    await store.close();
    await (await h.open()).close();
  }));

  test("appends that would leave a gap or commit past the log are refused before anything is written", withHarness(make, async (h) => {
    let store = await h.open();
    await seeded(store, 5);
    await assert.rejects(store.write([gw(G, { entries: [ent(8, 2)] })], true), AssertionError);
    await assert.rejects(store.write([gw(G, { entries: [ent(6, 2)], hardState: { term: 2, vote: 1, commit: 7 } })], true), AssertionError);
    await assert.rejects(store.write([gw(G, { entries: [ent(6, 1)] })], true), AssertionError, "terms never decrease");
    await assert.rejects(store.write([gw(G, { entries: [ent(6, 2)] }), gw(G, { entries: [ent(7, 2)] })], true), AssertionError);
    assert.equal(store.storage(G).lastIndex(), 5);
    store = await reopen(h, store);
    assert.equal(store.storage(G).lastIndex(), 5);
  }));
}

function coreIntegrationTests(make: () => Promise<StoreHarness>): void {
  test("a single-voter Raft group runs on the store and restarts from it", withHarness(make, async (h) => {
    let store = await h.open({ cacheBytesPerGroup: 64 });
    await store.write([bootstrapWrite(G, [1])], true);
    let node = new RawNode({ id: 1, storage: store.storage(G), random: new SeededRandom(1) });
    node.campaign();
    const applied: string[] = [];
    await drive(store, node, applied);
    for (const word of ["a", "b", "c", "d"]) {
      assert.equal(node.propose(new TextEncoder().encode(word)).ok, true);
      await drive(store, node, applied);
    }
    assert.deepEqual(applied, ["a", "b", "c", "d"]);
    const last = node.status().lastIndex;
    store = await reopen(h, store, { cacheBytesPerGroup: 64 });
    node = new RawNode({ id: 1, storage: store.storage(G), random: new SeededRandom(1) });
    assert.equal(node.status().lastIndex, last);
    const reapplied: string[] = [];
    for (let round = 0; round < 20 && reapplied.length < 4; round++) {
      await drive(store, node, reapplied);
      for (const m of store.storage(G).takeMisses()) await store.load(G, m.lo, m.hi);
      node.tick();
    }
    assert.deepEqual(reapplied, ["a", "b", "c", "d"], "committed entries are re-delivered after a restart, loading what the cache lacks");
  }));
}

/**
 * The host's ready loop for one group, as multiraft runs it. hasReady() stays true while
 * committed entries are waiting for a load, so the loop stops at a Ready that brings nothing.
 */
async function drive(store: RaftStore, node: RawNode, applied: string[]): Promise<void> {
  for (let round = 0; round < 100 && node.hasReady(); round++) {
    const rd = node.ready();
    await store.write([{ group: G, snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState }], rd.mustSync);
    for (const e of rd.committedEntries as Entry[]) if (e.type === "normal" && e.data.length > 0) applied.push(new TextDecoder().decode(e.data));
    node.advance();
    const idle = rd.entries.length === 0 && rd.committedEntries.length === 0 && rd.hardState === undefined && rd.snapshot === undefined && rd.messages.length === 0;
    if (idle) return;
  }
}

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import type { GroupId } from "../lib/ids.js";
import type { RaftStore } from "../multiraft/ports.js";
import { openEngine, type Engine } from "./engine.js";
import { DataDirInUseError, StorageCorruptionError } from "./errors.js";
import { entryKey, groupKey, GroupKeyKind, groupRange, parseGroupKey, termRunKey } from "./keys.js";
import { entrySizeBytes, LogUnavailableError } from "../raft/index.js";
import { bootstrapWrite, ents, gw, rocksHarness, settle, shape, snap, SpyEngine } from "./testing/fixtures.js";
import { raftStoreSuite } from "./testing/raft-store-suite.js";

raftStoreSuite("rocksdb store", () => rocksHarness());

const G: GroupId = 7;

/** A store with group G: bootstrap, entries 2..5 of term 1 and 6..9 of term 2, commit 9; closed. */
async function seededDir(): Promise<Awaited<ReturnType<typeof rocksHarness>>> {
  const h = await rocksHarness();
  const store = await h.open();
  await store.write([bootstrapWrite(G)], true);
  await store.write([gw(G, { entries: [...ents(2, 5, 1), ...ents(6, 9, 2)], hardState: { term: 2, vote: 1, commit: 9 } })], true);
  await store.close();
  return h;
}

/** Opens the raw engine on `dir`, runs `change`, closes it. */
async function tamper(dir: string, change: (e: Engine) => Promise<void>): Promise<void> {
  const engine = await openEngine(dir);
  try {
    await change(engine);
  } finally {
    await engine.close();
  }
}

function corruptionAt(group: GroupId, index: number, message?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(e)}`);
    assert.equal(e.code, "STORAGE_CORRUPTION");
    assert.deepEqual([e.group, e.index], [group, index], e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

describe("rocksdb store: group commit", () => {
  test("one write round for many groups is one batch with one sync", async () => {
    let spy: SpyEngine | undefined;
    const h = await rocksHarness((e) => (spy = new SpyEngine(e)));
    try {
      const store = await h.open();
      const before = spy!.writes.length;
      await store.write([bootstrapWrite(1), bootstrapWrite(2), bootstrapWrite(3)], true);
      assert.equal(spy!.writes.length, before + 1);
      const round = spy!.writes[before]!;
      assert.equal(round.sync, true);
      assert.deepEqual([...new Set(round.ops.map((op) => parseGroupKey(op.key)?.group))].sort(), [1, 2, 3]);
      await store.write([gw(1, { entries: ents(2, 3, 1) }), gw(2, { entries: ents(2, 2, 1) })], false);
      assert.equal(spy!.writes.length, before + 2);
      assert.equal(spy!.writes[before + 1]!.sync, false);
      // A synced round with nothing to write still makes the unsynced one durable, with one fsync.
      await store.write([], true);
      assert.deepEqual(spy!.writes.slice(before + 2).map((w) => w.sync), [true]);
      await store.write([], true);
      assert.equal(spy!.writes.length, before + 3, "nothing unsynced: no batch at all");
    } finally {
      await h.dispose();
    }
  });

  test("a failed batch changes no view and stops further changes until reopened", async () => {
    let spy: SpyEngine | undefined;
    const h = await rocksHarness((e) => (spy = new SpyEngine(e)));
    try {
      let store: RaftStore = await h.open();
      await store.write([bootstrapWrite(G)], true);
      spy!.failWrites = new Error("No space left on device");
      await assert.rejects(store.write([gw(G, { entries: ents(2, 4, 1) })], true), /No space left/);
      assert.equal(store.storage(G).lastIndex(), 1);
      spy!.failWrites = undefined;
      await assert.rejects(store.write([gw(G, { entries: ents(2, 4, 1) })], true), /must be reopened/);
      await store.close();
      store = await h.open();
      await store.write([gw(G, { entries: ents(2, 4, 1) })], true);
      assert.equal(store.storage(G).lastIndex(), 4);
    } finally {
      await h.dispose();
    }
  });
});

describe("rocksdb store: reads racing a write", () => {
  test("reads overlapping a suffix replacement are dropped and retried, never taken for corruption", async () => {
    let spy: SpyEngine | undefined;
    const h = await rocksHarness((e) => (spy = new SpyEngine(e)));
    let release = (): void => {};
    try {
      const store = await h.open({ cacheBytesPerGroup: 1 });
      await store.write([bootstrapWrite(G)], true);
      await store.write([gw(G, { entries: [...ents(2, 5, 1), ...ents(6, 9, 2)] })], true);
      spy!.holdCompletion = new Promise((resolve) => (release = resolve));
      // Replaces 4..9 by a single entry 4: on disk at once, in the view only once the write completes.
      const writing = store.write([gw(G, { entries: ents(4, 4, 3) })], true);
      await settle(); // the write starts
      await spy!.landed;
      await store.load(G, 2, 9);
      assert.throws(() => store.storage(G).entries(2, 3, 1e9), LogUnavailableError, "the load overlapped the replacement and was dropped");
      const reading = store.readEntries(G, 2, 10, 1e9);
      for (let k = 0; k < 5; k++) await settle();
      release();
      spy!.holdCompletion = undefined;
      await writing;
      assert.deepEqual(shape(await reading), ["2:1", "3:1", "4:3"]);
      await store.load(G, 2, 4);
      assert.deepEqual(shape(store.storage(G).entries(2, 5, 1e9)), ["2:1", "3:1", "4:3"]);
    } finally {
      release();
      await h.dispose();
    }
  });
});

describe("rocksdb store: consumer reads", () => {
  test("a read within the tail cache is served from memory, a read before it from disk, with the same entries", async () => {
    let spy: SpyEngine | undefined;
    const h = await rocksHarness((e) => (spy = new SpyEngine(e)));
    try {
      // A cache of 2 entries' worth: 8..9 stay in memory, 2..7 are only on disk.
      const store = await h.open({ cacheBytesPerGroup: 2 * entrySizeBytes(ents(9, 9, 2)[0]!) });
      await store.write([bootstrapWrite(G)], true);
      await store.write([gw(G, { entries: [...ents(2, 5, 1), ...ents(6, 9, 2)], hardState: { term: 2, vote: 1, commit: 9 } })], true);
      const tailStart = 8;
      const scans = spy!.scans;
      assert.deepEqual(shape(await store.readEntries(G, tailStart, 10, 1e9)), shape(ents(tailStart, 9, 2)));
      assert.deepEqual(shape(await store.readEntries(G, 9, 10, 1)), ["9:2"], "at least one entry, even above maxBytes");
      assert.equal(spy!.scans, scans, "tail reads do not touch the disk");
      assert.deepEqual(shape(await store.readEntries(G, 2, 10, 1e9)), ["2:1", "3:1", "4:1", "5:1", "6:2", "7:2", "8:2", "9:2"]);
      assert.equal(spy!.scans, scans + 1, "a read before the tail goes to the disk");
    } finally {
      await h.dispose();
    }
  });
});

describe("rocksdb store: open refuses damaged or truncated data", () => {
  test("every single flipped byte of a stored entry is caught, naming group and index", async () => {
    const h = await seededDir();
    try {
      let original: Buffer | undefined;
      await tamper(h.dir, async (e) => void (original = await e.get(entryKey(G, 5))));
      for (let k = 0; k < original!.length; k++) {
        const damaged = Buffer.from(original!);
        damaged[k] = damaged[k]! ^ 0x10;
        await tamper(h.dir, (e) => e.write([{ type: "put", key: entryKey(G, 5), value: damaged }], true));
        await assert.rejects(h.open(), corruptionAt(G, 5), `flipped byte ${k}`);
      }
      await tamper(h.dir, (e) => e.write([{ type: "put", key: entryKey(G, 5), value: original! }], true));
      const store = await h.open();
      assert.deepEqual(shape(store.storage(G).entries(2, 10, 1e9)).length, 8, "the restored entry opens again");
    } finally {
      await h.dispose();
    }
  });

  test("an entry stored under another index is caught", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, async (e) => {
        const six = await e.get(entryKey(G, 6));
        await e.write([{ type: "put", key: entryKey(G, 7), value: six! }], true);
      });
      await assert.rejects(h.open(), corruptionAt(G, 7, /checksum/));
    } finally {
      await h.dispose();
    }
  });

  test("a missing entry in the middle is caught at the first missing index", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, (e) => e.write([{ type: "del", key: entryKey(G, 4) }, { type: "del", key: entryKey(G, 5) }], true));
      await assert.rejects(h.open(), corruptionAt(G, 4, /entry 4 is missing/));
    } finally {
      await h.dispose();
    }
  });

  test("a truncated log end is caught, whether or not the lost entries were committed", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, (e) => e.write([{ type: "del", key: entryKey(G, 9) }], true));
      await assert.rejects(h.open(), corruptionAt(G, 9, /missing/));
      await tamper(h.dir, (e) => e.write([{ type: "del", key: groupKey(G, GroupKeyKind.logEnd) }], true));
      await assert.rejects(h.open(), corruptionAt(G, 2, /log end record is missing/));
    } finally {
      await h.dispose();
    }
  });

  test("term runs that disagree with the entries are caught", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, (e) => e.write([{ type: "del", key: termRunKey(G, 6) }], true));
      await assert.rejects(h.open(), corruptionAt(G, 6, /term run/));
    } finally {
      await h.dispose();
    }
  });

  test("damaged hard state, snapshot metadata or snapshot data is caught", async () => {
    for (const kind of [GroupKeyKind.hardState, GroupKeyKind.snapshotMeta, GroupKeyKind.snapshotData, GroupKeyKind.logEnd]) {
      const h = await seededDir();
      try {
        await tamper(h.dir, async (e) => {
          const key = groupKey(G, kind);
          const value = Buffer.from((await e.get(key))!);
          // Empty (the bootstrap snapshot's data): any byte is damage. Else flip the last bit.
          const damaged = value.length === 0 ? Buffer.of(1) : Buffer.concat([value.subarray(0, -1), Buffer.of(value[value.length - 1]! ^ 1)]);
          await e.write([{ type: "put", key, value: damaged }], true);
        });
        await assert.rejects(h.open(), (e: unknown) => e instanceof StorageCorruptionError && e.group === G, `damaged kind ${kind}`);
      } finally {
        await h.dispose();
      }
    }
  });

  test("an unknown key inside a group's range is caught", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, (e) => e.write([{ type: "put", key: Buffer.concat([groupKey(G, GroupKeyKind.hardState), Buffer.of(1)]), value: Buffer.of() }], true));
      await assert.rejects(h.open(), corruptionAt(G, 0, /unknown key/));
    } finally {
      await h.dispose();
    }
  });
});

describe("rocksdb store: interrupted operations and the LOCK", () => {
  test("entries left below the snapshot by an interrupted compaction are ignored and cleared", async () => {
    const h = await seededDir();
    try {
      let four: Buffer | undefined;
      await tamper(h.dir, async (e) => void (four = await e.get(entryKey(G, 4))));
      let store = await h.open();
      await store.compact(G, snap(6, 2));
      await store.close();
      await tamper(h.dir, (e) => e.write([{ type: "put", key: entryKey(G, 4), value: four! }], true));
      store = await h.open();
      assert.deepEqual([store.storage(G).firstIndex(), store.storage(G).lastIndex()], [7, 9]);
      await store.close();
      await tamper(h.dir, async (e) => assert.equal(await e.get(entryKey(G, 4)), undefined, "the leftover is gone"));
    } finally {
      await h.dispose();
    }
  });

  test("a drop interrupted after its marker is finished on the next open", async () => {
    const h = await seededDir();
    try {
      await tamper(h.dir, (e) => e.write([{ type: "put", key: groupKey(G, GroupKeyKind.dropMarker), value: Buffer.of() }], true));
      const store = await h.open();
      assert.deepEqual(store.groups(), []);
      await store.close();
      await tamper(h.dir, async (e) => {
        for await (const kv of e.scan(groupRange(G))) assert.fail(`key ${kv.key.toString("hex")} survived the drop`);
      });
    } finally {
      await h.dispose();
    }
  });

  test("another process cannot open the directory while this one holds it", async () => {
    const h = await rocksHarness();
    try {
      const store = await h.open();
      const script = `
        const { openEngine } = await import(process.argv[1]);
        try { await (await openEngine(process.argv[2])).close(); console.log("opened"); }
        catch (e) { console.log(e.name + ": " + e.message); }`;
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", script, new URL("./engine.js", import.meta.url).href, h.dir], { encoding: "utf8" });
      assert.match(out, new RegExp(`DataDirInUseError: data directory ${h.dir} is in use by another process`));
      await store.close();
      const again = execFileSync(process.execPath, ["--input-type=module", "-e", script, new URL("./engine.js", import.meta.url).href, h.dir], { encoding: "utf8" });
      assert.equal(again.trim(), "opened");
    } finally {
      await h.dispose();
    }
  });

  test("a second engine in this process is refused with DataDirInUseError", async () => {
    const h = await rocksHarness();
    try {
      const engine = await openEngine(h.dir);
      await assert.rejects(openEngine(h.dir), DataDirInUseError);
      await engine.close();
    } finally {
      await h.dispose();
    }
  });
});

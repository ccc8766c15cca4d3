/**
 * A {@link RaftStore} in memory, with the RocksDB store's semantics, for tests of the layers
 * above and for the simulator. It shares the read views (and so the bounded cache, the misses and
 * `load()`) and the write planning with the real store; only the "disk" differs: a
 * {@link MemoryDisk} that outlives the store, so a test can close and reopen, or `crash()` the
 * disk to lose the writes made without sync.
 *
 * Every operation completes after at least one microtask, like real I/O, and changes run one at
 * a time in call order; nothing depends on timers, so runs are deterministic.
 */
import { assert } from "../../lib/assert.js";
import type { GroupId, LogIndex, NodeId } from "../../lib/ids.js";
import type { GroupWrite, RaftStore } from "../../multiraft/ports.js";
import type { Entry, Snapshot } from "../../raft/index.js";
import { entrySizeBytes, LogCompactedError } from "../../raft/index.js";
import { checksum } from "../entry-codec.js";
import { StorageCorruptionError } from "../errors.js";
import { GroupView, type RestoredGroup, type ViewContext } from "../group-view.js";
import { LoadedRanges } from "../loaded-ranges.js";
import { resolveCacheOptions, type CacheOptions, type ResolvedCacheOptions } from "../options.js";
import { PendingSet, SerialQueue } from "../serial-queue.js";
import { runsOf } from "../term-runs.js";
import { planCompaction, planGroupWrite } from "../write-plan.js";
import { MemoryDisk, type DiskGroup, type DiskHolder } from "./memory-disk.js";

export interface MemoryRaftStoreOptions extends CacheOptions {
  /** The disk to open; a new empty one by default. Keep it to reopen or crash. */
  readonly disk?: MemoryDisk;
  /** Default "test". */
  readonly clusterId?: string;
  /** Default 1. */
  readonly nodeId?: NodeId;
}

/**
 * Opens a store on `options.disk` (checking identity and damage like the RocksDB store). Throws
 * {@link DataDirInUseError} while another store holds the disk.
 */
export async function openMemoryRaftStore(options: MemoryRaftStoreOptions = {}): Promise<MemoryRaftStore> {
  const store = new MemoryRaftStore(options.disk ?? new MemoryDisk(), resolveCacheOptions(options));
  store.open({ clusterId: options.clusterId ?? "test", nodeId: options.nodeId ?? 1 });
  await Promise.resolve();
  return store;
}

export class MemoryRaftStore implements RaftStore, DiskHolder {
  private readonly views = new Map<GroupId, GroupView>();
  private readonly loaded: LoadedRanges;
  private readonly ctx: ViewContext;
  private readonly changes = new SerialQueue();
  private readonly pending = new PendingSet();
  private state: "new" | "open" | "closed" | "crashed" = "new";

  /** Use {@link openMemoryRaftStore}. */
  constructor(readonly disk: MemoryDisk, private readonly options: ResolvedCacheOptions) {
    this.loaded = new LoadedRanges(options.loadedBytesMax);
    this.ctx = { options, loaded: this.loaded, requestSnapshotData: (view) => this.loadSnapshotData(view) };
  }

  /** Claims the disk, checks identity and builds the views. Called once by openMemoryRaftStore. */
  open(identity: { clusterId: string; nodeId: NodeId }): void {
    this.disk.acquire(this);
    try {
      this.disk.checkIdentity(identity);
      for (const [group, g] of this.disk.groups()) this.views.set(group, GroupView.restore(group, this.ctx, this.restored(group, g)));
    } catch (e) {
      this.disk.release(this);
      throw e;
    }
    this.state = "open";
  }

  groups(): readonly GroupId[] {
    return [...this.views.values()].filter((v) => v.persisted).map((v) => v.group);
  }

  storage(group: GroupId): GroupView {
    this.checkOpen();
    let view = this.views.get(group);
    if (view === undefined) {
      view = new GroupView(group, this.ctx);
      this.views.set(group, view);
    }
    return view;
  }

  write(writes: readonly GroupWrite[], sync: boolean): Promise<void> {
    this.checkOpen();
    return this.changes.run(async () => {
      const plans = writes.map((w) => {
        const view = this.storage(w.group);
        view.checkWritable();
        return planGroupWrite(view, w);
      });
      assert(new Set(plans.map((p) => p.group)).size === plans.length, "a write round names a group twice");
      await this.io();
      this.checkLive();
      this.disk.apply(plans.length > 0 ? { kind: "write", plans } : undefined, sync);
      for (const p of plans) this.storage(p.group).applyPlan(p, p.snapshot === undefined ? 0 : checksum(p.snapshot.data));
    });
  }

  compact(group: GroupId, snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    return this.changes.run(async () => {
      const view = this.views.get(group);
      view?.checkWritable();
      const plan = view === undefined ? undefined : planCompaction(view, snapshot);
      await this.io();
      this.checkLive();
      if (view === undefined || plan === undefined) return;
      this.disk.apply({ kind: "compact", plan }, true);
      view.applyCompaction(plan, checksum(snapshot.data));
    });
  }

  async load(group: GroupId, lo: LogIndex, hi: LogIndex): Promise<void> {
    this.checkOpen();
    const view = this.views.get(group);
    if (view === undefined || view.failed !== undefined) return;
    const epoch = view.epoch;
    const entries = this.readDisk(view, Math.max(lo, view.snapshotIndex + 1), Math.min(hi, view.tailStart), this.options.loadBytesMax, true);
    await this.io();
    if (entries.length > 0) view.addLoaded(entries, epoch);
  }

  async readEntries(group: GroupId, lo: LogIndex, hi: LogIndex, maxBytes: number): Promise<Entry[]> {
    this.checkOpen();
    await this.io();
    const view = this.views.get(group);
    if (view === undefined) return [];
    if (view.failed !== undefined) throw view.failed;
    if (lo <= view.snapshotIndex) throw new LogCompactedError(lo);
    return this.readDisk(view, lo, Math.min(hi, view.lastStoredIndex + 1), maxBytes, false);
  }

  dropGroup(group: GroupId): Promise<void> {
    this.checkOpen();
    return this.changes.run(async () => {
      await this.io();
      this.checkLive();
      this.disk.apply({ kind: "drop", group }, true);
      this.views.get(group)?.fail(new Error(`group ${group} was dropped from this node`));
      this.views.delete(group);
      this.loaded.dropGroup(group);
    });
  }

  async close(): Promise<void> {
    if (this.state !== "open") return;
    await this.changes.idle();
    await this.pending.settled();
    this.retire("closed", new Error("the raft store is closed"));
  }

  /** Called by the disk's crash(): the store stops; writes not yet synced are gone. */
  crashed(): void {
    this.retire("crashed", new Error("the raft store's disk crashed; open a new store on it"));
  }

  private retire(state: "closed" | "crashed", error: Error): void {
    this.state = state;
    for (const view of this.views.values()) view.fail(error);
    this.disk.release(this);
  }

  /**
   * Entries [lo, hi) from the disk, at most maxBytes (at least one), or with `withCrossing` up
   * to and including the entry that crosses maxBytes (as loads do). Damage is corruption, as in
   * the RocksDB store.
   */
  private readDisk(view: GroupView, lo: LogIndex, hi: LogIndex, maxBytes: number, withCrossing: boolean): Entry[] {
    const g = this.disk.groups().get(view.group);
    const out: Entry[] = [];
    if (g === undefined) return out;
    const first = (g.snapshot?.metadata.index ?? 0) + 1;
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = g.entries[i - first];
      assert(e !== undefined && e.index === i, () => `memory disk of group ${view.group} has no entry ${i}`);
      if (this.disk.isDamaged(view.group, i)) {
        const error = new StorageCorruptionError(view.group, i, "entry checksum mismatch (simulated damage)");
        view.fail(error);
        throw error;
      }
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes && !withCrossing) break;
      out.push(e);
      if (size > maxBytes) break;
    }
    return out;
  }

  private restored(group: GroupId, g: DiskGroup): RestoredGroup {
    const snapIndex = g.snapshot?.metadata.index ?? 0;
    g.entries.forEach((e) => {
      if (this.disk.isDamaged(group, e.index)) throw new StorageCorruptionError(group, e.index, "entry checksum mismatch (simulated damage)");
    });
    const snapshotData = g.snapshot?.data ?? new Uint8Array();
    return {
      hardState: g.hardState ?? { term: 0, vote: 0, commit: 0 },
      snapshot: {
        metadata: g.snapshot?.metadata ?? { index: 0, term: 0, confState: { voters: [], learners: [] } },
        dataBytes: g.snapshot?.data.byteLength ?? 0,
        dataCrc: g.snapshotCrc,
      },
      snapshotData,
      lastIndex: snapIndex + g.entries.length,
      runs: runsOf(g.entries),
      tail: tailOf(g.entries, this.options.cacheBytesPerGroup),
    };
  }

  private loadSnapshotData(view: GroupView): void {
    const index = view.snapshotIndex;
    const deliver = async (): Promise<void> => {
      await this.io();
      const snap = this.disk.groups().get(view.group)?.snapshot;
      if (snap !== undefined && snap.metadata.index === index) view.setSnapshotData(index, snap.data);
      else view.snapshotDataLoadEnded();
    };
    this.pending.track(this.changes.run(deliver));
  }

  /** Stands in for the disk's latency: one microtask. */
  private io(): Promise<void> {
    return Promise.resolve();
  }

  private checkOpen(): void {
    assert(this.state === "open", () => `the raft store is ${this.state}`);
  }

  /** After simulated I/O: a crash in between means the write never reached the disk. */
  private checkLive(): void {
    if (this.state === "crashed") throw new Error("the raft store's disk crashed during the operation");
  }
}

/** The last entries of `entries` within `maxBytes` (at least one if any). */
function tailOf(entries: readonly Entry[], maxBytes: number): Entry[] {
  let k = entries.length;
  let size = 0;
  while (k > 0) {
    size += entrySizeBytes(entries[k - 1]!);
    if (size > maxBytes && k < entries.length) break;
    k--;
  }
  return entries.slice(k);
}

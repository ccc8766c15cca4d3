/**
 * The durable {@link RaftStore}: every group of a node in one RocksDB database (keys.ts has the
 * layout). Reads the core makes are answered by each group's in-memory {@link GroupView}; writes
 * of a round go to disk as ONE write batch with at most one fsync, and the views change only after
 * the batch succeeded. Changes to disk (write, compact, dropGroup) run one at a time in call order;
 * loads and consumer reads run beside them, and a load that raced a change of the log is dropped.
 *
 * A failed write leaves the store failed: what reached the disk is unknown, so every later change
 * is refused with the same error, and the node must restart (and reopen, which verifies the data).
 *
 * Failpoints (lib/failpoints.ts, for fault testing only): `raft-store/before-write` and
 * `raft-store/after-write` around the batch of every round that has something to write,
 * `raft-store/snapshot-write` between a snapshot's batch and the clear of the entries it replaces,
 * and `storage/lose-unsynced` and `storage/power-loss`, which put a {@link LossyEngine} under the store.
 */
import { assert } from "../lib/assert.js";
import { NO_FAILPOINTS, type Failpoints } from "../lib/failpoints.js";
import type { GroupId, LogIndex, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import { silentLogger } from "../lib/logger.js";
import type { GroupWrite, RaftStore } from "../multiraft/ports.js";
import type { Entry, Snapshot } from "../raft/index.js";
import { entrySizeBytes, LogCompactedError } from "../raft/index.js";
import { openEngine, type Engine, type EngineOp } from "./engine.js";
import { checksum, decodeEntry, encodeEntry } from "./entry-codec.js";
import { StorageCorruptionError } from "./errors.js";
import { GroupView, type ViewContext } from "./group-view.js";
import { entryKey, entryRange, groupKey, GroupKeyKind, groupRange, nodeMetaKey, parseGroupKey, termRunKey } from "./keys.js";
import { LoadedRanges } from "./loaded-ranges.js";
import { LossyEngine } from "./lossy-engine.js";
import { resolveCacheOptions, type CacheOptions, type ResolvedCacheOptions } from "./options.js";
import { checkIdentity, scanGroups } from "./rocks-open.js";
import { PendingSet, SerialQueue } from "./serial-queue.js";
import { encodeHardState, encodeLogEnd, encodeSnapshotMeta, encodeTermRun } from "./state-codec.js";
import { planCompaction, planGroupWrite, type CompactionPlan, type GroupPlan } from "./write-plan.js";

export interface RaftStoreOptions extends CacheOptions {
  /** The data directory (created if missing). One node, one directory. */
  readonly dir: string;
  /** The cluster this node belongs to; recorded on first open and checked on every later one. */
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly logger?: Logger;
  /** An engine already open on `dir`, used instead of opening one (tests spy on it or inject faults). The store closes it. */
  readonly engine?: Engine;
  /** Fault-testing hooks (see the module comment). Default: none. */
  readonly failpoints?: Failpoints;
}

/**
 * Opens the store in `options.dir`: checks the directory's identity, then reads and verifies
 * every group (see rocks-open.ts). Throws {@link DataDirInUseError}, {@link IdentityMismatchError},
 * {@link StorageFormatError} or {@link StorageCorruptionError} instead of serving doubtful data.
 */
export async function openRaftStore(options: RaftStoreOptions): Promise<RocksRaftStore> {
  const cache = resolveCacheOptions(options);
  const logger = options.logger ?? silentLogger;
  const failpoints = options.failpoints ?? NO_FAILPOINTS;
  const opened = options.engine ?? (await openEngine(options.dir));
  const engine = failpoints.enabled("storage/lose-unsynced")
    ? new LossyEngine(opened)
    : failpoints.enabled("storage/power-loss")
      ? new LossyEngine(opened, { honourSync: true })
      : opened;
  try {
    await checkIdentity(engine, { clusterId: options.clusterId, nodeId: options.nodeId });
    const store = new RocksRaftStore(engine, cache, logger, failpoints);
    await store.restore();
    return store;
  } catch (e) {
    await engine.close();
    throw e;
  }
}

export class RocksRaftStore implements RaftStore {
  private readonly views = new Map<GroupId, GroupView>();
  private readonly loaded: LoadedRanges;
  private readonly ctx: ViewContext;
  private readonly changes = new SerialQueue();
  private readonly pending = new PendingSet();
  private unsynced = false;
  private failure: Error | undefined;
  private closed = false;

  /** Use {@link openRaftStore}. */
  constructor(
    private readonly engine: Engine,
    private readonly options: ResolvedCacheOptions,
    private readonly logger: Logger,
    private readonly failpoints: Failpoints = NO_FAILPOINTS,
  ) {
    this.loaded = new LoadedRanges(options.loadedBytesMax);
    this.ctx = { options, loaded: this.loaded, requestSnapshotData: (view) => this.loadSnapshotData(view) };
  }

  /** Reads every group from disk and finishes interrupted drops and clean-ups. Called once by openRaftStore. */
  async restore(): Promise<void> {
    const scan = await scanGroups(this.engine, this.options);
    for (const [group, state] of scan.groups) this.views.set(group, GroupView.restore(group, this.ctx, state));
    for (const group of scan.dropping) await this.finishDrop(group);
    for (const { group, through } of scan.stale) await this.engine.clear(entryRange(group, 0, through + 1));
    this.logger.info({ groups: scan.groups.size, finishedDrops: scan.dropping.length, staleCleared: scan.stale.length }, "opened raft store");
  }

  groups(): readonly GroupId[] {
    return [...this.views.values()].filter((v) => v.persisted).map((v) => v.group);
  }

  storage(group: GroupId): GroupView {
    this.checkOpen();
    return this.viewOf(group);
  }

  /** The group's view, created empty for a group with nothing stored. */
  private viewOf(group: GroupId): GroupView {
    let view = this.views.get(group);
    if (view === undefined) {
      view = new GroupView(group, this.ctx);
      this.views.set(group, view);
    }
    return view;
  }

  write(writes: readonly GroupWrite[], sync: boolean): Promise<void> {
    this.checkOpen();
    return this.changes.run(() => this.writeRound(writes, sync));
  }

  compact(group: GroupId, snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    return this.changes.run(() => this.compactGroup(group, snapshot));
  }

  load(group: GroupId, lo: LogIndex, hi: LogIndex): Promise<void> {
    this.checkOpen();
    return this.pending.track(this.loadRange(group, lo, hi));
  }

  readEntries(group: GroupId, lo: LogIndex, hi: LogIndex, maxBytes: number): Promise<Entry[]> {
    this.checkOpen();
    // Consumers at the tail (the common case) read what was just written: serve it from memory.
    const cached = this.views.get(group)?.cachedEntries(lo, hi, maxBytes);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.pending.track(this.readRange(group, lo, hi, maxBytes));
  }

  dropGroup(group: GroupId): Promise<void> {
    this.checkOpen();
    return this.changes.run(() => this.dropOne(group));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.changes.idle();
    await this.pending.settled();
    const closedError = new Error("the raft store is closed");
    for (const view of this.views.values()) view.fail(closedError);
    await this.engine.close();
    this.logger.info({}, "closed raft store");
  }

  // ---------------------------------------------------------------- writes

  private async writeRound(writes: readonly GroupWrite[], sync: boolean): Promise<void> {
    this.checkHealthy();
    const plans = writes.map((w) => {
      const view = this.viewOf(w.group);
      view.checkWritable();
      return planGroupWrite(view, w);
    });
    assert(new Set(plans.map((p) => p.group)).size === plans.length, "a write round names a group twice");
    const crcs = plans.map((p) => (p.snapshot === undefined ? 0 : checksum(p.snapshot.data)));
    const ops = plans.flatMap((p, k) => planOps(p, crcs[k]!));
    const planned = ops.length > 0;
    if (!planned) {
      if (!sync || !this.unsynced) return;
      ops.push({ type: "put", key: nodeMetaKey("sync-mark"), value: Buffer.alloc(0) }); // forces the fsync of earlier writes
    }
    const replacing = plans.filter((p) => p.truncatedFrom !== undefined).map((p) => this.viewOf(p.group));
    replacing.forEach((v) => v.beginChange());
    try {
      // The host has sent the leader's appends already (multiraft processBatch): "after append, before fsync".
      if (planned) this.failpoints.hit("raft-store/before-write");
      await this.guarded(() => this.engine.write(ops, sync));
      // Durable, and nothing acknowledged yet: "after fsync, before reply".
      if (planned) this.failpoints.hit("raft-store/after-write");
      this.unsynced = !sync;
      plans.forEach((p, k) => this.applied(p, crcs[k]!));
    } finally {
      replacing.forEach((v) => v.endChange());
    }
    // A snapshot installed over stored entries: stored, its entries not yet cleared.
    if (plans.some((p) => p.snapshot !== undefined && p.staleThrough !== undefined)) this.failpoints.hit("raft-store/snapshot-write");
    for (const p of plans) if (p.staleThrough !== undefined) await this.guarded(() => this.engine.clear(entryRange(p.group, 0, p.staleThrough! + 1)));
  }

  private applied(plan: GroupPlan, crc: number): void {
    if (plan.staleSnapshot) this.logger.warn({ group: plan.group }, "ignored a snapshot not newer than the stored one");
    this.viewOf(plan.group).applyPlan(plan, crc);
  }

  private async compactGroup(group: GroupId, snapshot: Snapshot): Promise<void> {
    this.checkHealthy();
    const view = this.views.get(group);
    if (view === undefined) return;
    view.checkWritable();
    const plan = planCompaction(view, snapshot);
    if (plan === undefined) return;
    const crc = checksum(snapshot.data);
    await this.guarded(() => this.engine.write(compactionOps(plan, crc), true));
    this.unsynced = false;
    view.applyCompaction(plan, crc);
    this.failpoints.hit("raft-store/snapshot-write"); // the snapshot is stored, the entries it replaces not yet cleared
    await this.guarded(() => this.engine.clear(entryRange(group, 0, snapshot.metadata.index + 1)));
  }

  private async dropOne(group: GroupId): Promise<void> {
    this.checkHealthy();
    const marker: EngineOp = { type: "put", key: groupKey(group, GroupKeyKind.dropMarker), value: Buffer.alloc(0) };
    const metadata = [GroupKeyKind.hardState, GroupKeyKind.logEnd, GroupKeyKind.snapshotMeta, GroupKeyKind.snapshotData].map((kind): EngineOp => ({ type: "del", key: groupKey(group, kind) }));
    await this.guarded(() => this.engine.write([marker, ...metadata], true));
    this.unsynced = false;
    this.views.get(group)?.fail(new Error(`group ${group} was dropped from this node`));
    this.views.delete(group);
    this.loaded.dropGroup(group);
    await this.guarded(() => this.finishDrop(group));
  }

  /** Deletes a dropped group's remaining keys, the marker last, so an interrupted drop is finished on the next open. */
  private async finishDrop(group: GroupId): Promise<void> {
    await this.engine.clear({ gte: groupKey(group, GroupKeyKind.hardState), lt: groupRange(group).lt });
    await this.engine.write([{ type: "del", key: groupKey(group, GroupKeyKind.dropMarker) }], false);
  }

  // ---------------------------------------------------------------- reads

  private async loadRange(group: GroupId, lo: LogIndex, hi: LogIndex): Promise<void> {
    const view = this.views.get(group);
    if (view === undefined || view.failed !== undefined) return;
    const from = Math.max(lo, view.snapshotIndex + 1);
    const to = Math.min(hi, view.tailStart);
    if (from >= to) return;
    const epoch = view.epoch;
    const entries = await this.readVerified(view, from, to, this.options.loadBytesMax, epoch, true);
    if (entries !== undefined) view.addLoaded(entries, epoch);
  }

  private async readRange(group: GroupId, lo: LogIndex, hi: LogIndex, maxBytes: number): Promise<Entry[]> {
    for (;;) {
      const view = this.views.get(group);
      if (view === undefined) return [];
      if (view.failed !== undefined) throw view.failed;
      if (lo <= view.snapshotIndex) throw new LogCompactedError(lo);
      const to = Math.min(hi, view.lastStoredIndex + 1);
      if (lo >= to) return [];
      const entries = await this.readVerified(view, lo, to, maxBytes, view.epoch, false);
      if (entries !== undefined) return entries;
      // The log changed during the read (suffix replaced or compacted): read again once it settled.
      await this.changes.idle();
    }
  }

  /**
   * Entries [lo, hi) from disk, at most maxBytes (at least one) — or, `withCrossing`, up to and
   * including the entry that crosses maxBytes (so that a core read of up to maxBytes can tell
   * where to stop) — checksums verified. Returns undefined when the read overlapped a change of
   * the group's log (it may have seen either side); a gap or damage in an unchanged log is
   * corruption: the view is retired and the error thrown.
   */
  private async readVerified(view: GroupView, lo: LogIndex, hi: LogIndex, maxBytes: number, epoch: number, withCrossing: boolean): Promise<Entry[] | undefined> {
    const out: Entry[] = [];
    let size = 0;
    let problem: StorageCorruptionError | undefined;
    try {
      for await (const { key, value } of this.engine.scan(entryRange(view.group, lo, hi))) {
        const index = lo + out.length;
        if (parseGroupKey(key)?.index !== index) break; // a gap: reported below
        const e = decodeEntry(view.group, index, value);
        size += entrySizeBytes(e);
        if (out.length > 0 && size > maxBytes && !withCrossing) break;
        out.push(e);
        if (size > maxBytes) break;
      }
      const limited = size > maxBytes;
      if (out.length < hi - lo && !limited) problem = new StorageCorruptionError(view.group, lo + out.length, "entry is missing");
    } catch (e) {
      if (!(e instanceof StorageCorruptionError)) throw e;
      problem = e;
    }
    if (view.failed !== undefined) throw view.failed;
    if (view.epoch !== epoch || view.changing || lo <= view.snapshotIndex) return undefined;
    if (problem !== undefined) {
      this.logger.error({ group: view.group, index: problem.index, err: problem }, "stored log is corrupt");
      view.fail(problem);
      throw problem;
    }
    return out;
  }

  private loadSnapshotData(view: GroupView): void {
    const { metadata, dataBytes, dataCrc } = view.storedSnapshot;
    const read = async (): Promise<void> => {
      const value = await this.engine.get(groupKey(view.group, GroupKeyKind.snapshotData));
      if (view.snapshotIndex !== metadata.index) return view.snapshotDataLoadEnded();
      if (value === undefined || value.length !== dataBytes || checksum(value) !== dataCrc) {
        const error = new StorageCorruptionError(view.group, metadata.index, "snapshot data does not match its recorded size and checksum");
        this.logger.error({ group: view.group, index: metadata.index }, "snapshot data is corrupt");
        return view.fail(error);
      }
      view.setSnapshotData(metadata.index, new Uint8Array(value.buffer, value.byteOffset, value.length));
    };
    // Queued with the changes, so that the data read matches the view's snapshot metadata.
    this.pending.track(
      this.changes.run(read).catch((e: unknown) => {
        this.logger.error({ group: view.group, err: e }, "reading snapshot data failed");
        view.snapshotDataLoadEnded();
      }),
    );
  }

  // ---------------------------------------------------------------- state

  private async guarded<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
      this.logger.error({ err: e }, "storage write failed; the store refuses further changes until reopened");
      throw e;
    }
  }

  private checkHealthy(): void {
    if (this.failure !== undefined) throw new Error("the raft store failed an earlier write and must be reopened", { cause: this.failure });
  }

  private checkOpen(): void {
    assert(!this.closed, "the raft store is closed");
  }
}

/** The batch operations of one group's plan: deletes before puts, so a put of a deleted key wins. */
function planOps(p: GroupPlan, snapshotCrc: number): EngineOp[] {
  const ops: EngineOp[] = [];
  if (p.snapshot !== undefined) ops.push(...snapshotOps(p.group, p.snapshot, snapshotCrc));
  if (p.deleteEntries !== undefined) {
    for (let i = p.deleteEntries.lo; i <= p.deleteEntries.hi; i++) ops.push({ type: "del", key: entryKey(p.group, i) });
  }
  for (const start of p.runDeletes) ops.push({ type: "del", key: termRunKey(p.group, start) });
  for (const e of p.entries) ops.push({ type: "put", key: entryKey(p.group, e.index), value: encodeEntry(e) });
  for (const r of p.runPuts) ops.push({ type: "put", key: termRunKey(p.group, r.start), value: encodeTermRun(r.term) });
  if (p.snapshot !== undefined || p.entries.length > 0) ops.push({ type: "put", key: groupKey(p.group, GroupKeyKind.logEnd), value: encodeLogEnd(p.lastIndex) });
  if (p.hardState !== undefined) ops.push({ type: "put", key: groupKey(p.group, GroupKeyKind.hardState), value: encodeHardState(p.hardState) });
  return ops;
}

function compactionOps(p: CompactionPlan, snapshotCrc: number): EngineOp[] {
  return [
    ...snapshotOps(p.group, p.snapshot, snapshotCrc),
    ...p.runDeletes.map((start): EngineOp => ({ type: "del", key: termRunKey(p.group, start) })),
    ...p.runPuts.map((r): EngineOp => ({ type: "put", key: termRunKey(p.group, r.start), value: encodeTermRun(r.term) })),
  ];
}

function snapshotOps(group: GroupId, snapshot: Snapshot, crc: number): EngineOp[] {
  const meta = encodeSnapshotMeta({ metadata: snapshot.metadata, dataBytes: snapshot.data.byteLength, dataCrc: crc });
  return [
    { type: "put", key: groupKey(group, GroupKeyKind.snapshotMeta), value: meta },
    { type: "put", key: groupKey(group, GroupKeyKind.snapshotData), value: Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.byteLength) },
  ];
}

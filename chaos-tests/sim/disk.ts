/**
 * The simulated disk of one node: what the core reads back (the page cache) and what survives a
 * crash (what was fsynced).
 *
 * A Ready's write with `sync` (the host syncs exactly when the core says `mustSync`, as
 * src/multiraft does) is durable once it completes, and it makes every earlier buffered write
 * durable too: the log is written in order, and an fsync covers all of it. A write without sync is
 * only buffered: the core reads it back at once, but a crash loses it, as RocksDB loses writes made
 * with `sync: false` on a power loss. So the host relies on `mustSync` being right: a vote or an
 * entry that a message acknowledges must have been synced before the message leaves.
 *
 *   write(sync=false) ─► live only (buffered) ──crash──► lost
 *   write(sync=true)  ─► live, and everything buffered so far becomes durable
 *
 * In a correct core only commit-index changes are written without sync, so `durableLog` (a copy of
 * the log as it was before the first buffered log write) is almost never needed and the live
 * storage doubles as the durable one.
 */
import type { LogIndex, Term } from "../../src/lib/ids.js";
import { MemoryStorage, type HardState, type Ready } from "../../src/raft/index.js";

/** One node's storage with a page cache: see the module comment. */
export class SimDisk {
  private live: MemoryStorage;
  /** The durable log, when buffered writes changed the log itself; undefined when the live log is all durable. */
  private durableLog: MemoryStorage | undefined;
  private durableHard: HardState;
  /** Writes since the last sync (lost on a crash). */
  private bufferedWrites = 0;

  constructor(storage: MemoryStorage) {
    this.live = storage;
    this.durableHard = storage.initialState().hardState;
  }

  /** What the core reads: the durable state plus buffered writes. */
  get storage(): MemoryStorage {
    return this.live;
  }

  /** The hard state a crash would leave. */
  get durableHardState(): HardState {
    return this.durableHard;
  }

  /** Number of writes a crash would lose now. */
  get buffered(): number {
    return this.bufferedWrites;
  }

  /** Whether a buffered (not yet durable) write changed the log itself (entries or snapshot). */
  get logBuffered(): boolean {
    return this.durableLog !== undefined;
  }

  /**
   * Writes a Ready's snapshot, entries and hard state (in that order), durably if `sync`.
   * Returns whether the snapshot was newer than the stored one (false means the core handed out a
   * stale snapshot; the caller reports it).
   */
  write(rd: Pick<Ready, "snapshot" | "entries" | "hardState">, sync: boolean): boolean {
    if (!sync && this.durableLog === undefined && (rd.snapshot !== undefined || rd.entries.length > 0)) {
      this.durableLog = copyLog(this.live);
    }
    let snapshotOk = true;
    if (rd.snapshot !== undefined) snapshotOk = this.live.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.live.append(rd.entries);
    if (rd.hardState !== undefined) this.live.setHardState(rd.hardState);
    if (sync) this.sync();
    else this.bufferedWrites++;
    return snapshotOk;
  }

  /** Makes everything written so far durable (an fsync; also used for host-side snapshot writes). */
  sync(): void {
    this.durableLog = undefined;
    this.durableHard = this.live.initialState().hardState;
    this.bufferedWrites = 0;
  }

  /** A crash: the page cache is gone, the durable state is what remains. Returns the number of writes lost. */
  crash(): number {
    const lost = this.bufferedWrites;
    if (lost === 0) return 0;
    if (this.durableLog !== undefined) this.live = this.durableLog;
    this.live.setHardState(this.durableHard);
    this.durableHard = this.live.initialState().hardState;
    this.durableLog = undefined;
    this.bufferedWrites = 0;
    return lost;
  }

  /** Replaces the storage wholesale (the planted lyingDisk control). */
  replace(storage: MemoryStorage): void {
    this.live = storage;
    this.durableLog = undefined;
    this.durableHard = storage.initialState().hardState;
    this.bufferedWrites = 0;
  }

  /**
   * Whether entry `i` of term `t` would survive a crash: it is covered by the durable snapshot or
   * compaction point, or the durable log holds it with that term.
   */
  durablyHas(i: LogIndex, t: Term): boolean {
    const d = this.durableLog ?? this.live;
    if (i < d.firstIndex()) return true;
    if (i > d.lastIndex()) return false;
    return d.term(i) === t;
  }

  /**
   * Whether acknowledging entry `i` is backed by the disk: the durable log holds the entry the
   * core reads at `i` (or `i` is covered by the durable snapshot or compaction point).
   */
  acknowledgeable(i: LogIndex): boolean {
    const d = this.durableLog ?? this.live;
    if (i < d.firstIndex()) return true;
    if (i > d.lastIndex()) return false;
    if (d === this.live) return true;
    const t = this.liveTerm(i);
    return t === undefined || d.term(i) === t;
  }

  /** The term of entry `i` in the live log (what the core reads), if it is there. */
  liveTerm(i: LogIndex): Term | undefined {
    const s = this.live;
    if (i < s.firstIndex() - 1 || i > s.lastIndex()) return undefined;
    return s.term(i);
  }
}

/**
 * An exact copy of a storage's snapshot, log (up to `lastIndex`) and hard state. The compaction
 * point may lie below the snapshot (a snapshot taken with a compaction lag): the copy keeps the
 * entries in between, as the original does.
 */
export function copyLog(s: MemoryStorage, lastIndex: LogIndex = s.lastIndex()): MemoryStorage {
  const copy = new MemoryStorage();
  const snap = s.snapshot();
  const compacted = s.firstIndex() - 1;
  if (compacted === snap.metadata.index) copy.applySnapshot(snap);
  else copy.applySnapshot({ metadata: { index: compacted, term: s.term(compacted), confState: snap.metadata.confState }, data: new Uint8Array() });
  if (lastIndex > compacted) copy.append(s.entries(compacted + 1, lastIndex + 1, Number.MAX_SAFE_INTEGER));
  if (snap.metadata.index > compacted) copy.createSnapshot(snap.metadata.index, snap.metadata.confState, snap.data);
  copy.setHardState(s.initialState().hardState);
  return copy;
}

/**
 * Small builders for storage tests: entries, snapshots, write rounds, harnesses that open a store
 * on fresh data and clean it up, and an engine wrapper that records what is written.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GroupId, LogIndex, Term } from "../../lib/ids.js";
import type { GroupWrite, RaftStore } from "../../multiraft/ports.js";
import type { Entry, HardState, Snapshot } from "../../raft/index.js";
import type { Engine, EngineOp, KeyRange, ScanOptions } from "../engine.js";
import { openEngine } from "../engine.js";
import { MemoryDisk } from "../memory/memory-disk.js";
import { openMemoryRaftStore } from "../memory/memory-raft-store.js";
import type { CacheOptions } from "../options.js";
import { openRaftStore } from "../rocks-raft-store.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An entry whose data names its index and term ("e5t2"), padded to `bytes` if given. */
export function ent(index: LogIndex, term: Term, bytes?: number): Entry {
  const text = `e${index}t${term}`;
  return { index, term, type: "normal", data: encoder.encode(bytes === undefined ? text : text.padEnd(bytes, ".")) };
}

/** Entries lo..hi (inclusive) of one term. */
export function ents(lo: LogIndex, hi: LogIndex, term: Term, bytes?: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, term, bytes));
  return out;
}

/** "index:term" pairs, for compact assertions. */
export function shape(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.index}:${e.term}`);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

export function snap(index: LogIndex, term: Term, voters: number[] = [1, 2, 3], data: Uint8Array = new Uint8Array()): Snapshot {
  return { metadata: { index, term, confState: { voters, learners: [] } }, data };
}

/** One group's share of a round. */
export function gw(group: GroupId, parts: { entries?: Entry[]; hardState?: HardState; snapshot?: Snapshot }): GroupWrite {
  return { group, entries: parts.entries ?? [], hardState: parts.hardState, snapshot: parts.snapshot };
}

/** What a founding member persists first: the membership snapshot at (1, 1) and term 1 committed to 1. */
export function bootstrapWrite(group: GroupId, voters: number[] = [1, 2, 3]): GroupWrite {
  return gw(group, { snapshot: snap(1, 1, voters), hardState: { term: 1, vote: 0, commit: 1 } });
}

export interface HarnessOpenOptions extends CacheOptions {
  readonly clusterId?: string;
  readonly nodeId?: number;
}

/** Opens stores on one set of data (a temp directory, or a memory disk) and removes it at the end. */
export interface StoreHarness {
  readonly kind: "rocksdb" | "memory";
  open(options?: HarnessOpenOptions): Promise<RaftStore>;
  /** Closes every store this harness opened and deletes the data. */
  dispose(): Promise<void>;
}

/** A harness on a fresh temp directory under os.tmpdir(). */
export async function rocksHarness(wrap?: (e: Engine) => Engine): Promise<StoreHarness & { readonly dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "raftmq-storage-"));
  const opened: RaftStore[] = [];
  return {
    kind: "rocksdb",
    dir,
    async open(o: HarnessOpenOptions = {}) {
      const engine = wrap === undefined ? undefined : wrap(await openEngine(dir));
      const store = await openRaftStore({ ...o, dir, clusterId: o.clusterId ?? "c1", nodeId: o.nodeId ?? 1, engine });
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A harness on a fresh memory disk. */
export async function memoryHarness(disk = new MemoryDisk()): Promise<StoreHarness & { readonly disk: MemoryDisk }> {
  const opened: RaftStore[] = [];
  return {
    kind: "memory",
    disk,
    async open(o: HarnessOpenOptions = {}) {
      const store = await openMemoryRaftStore({ ...o, disk, clusterId: o.clusterId ?? "c1", nodeId: o.nodeId ?? 1 });
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const s of opened) await s.close();
    },
  };
}

/** An engine that records every write, and can fail writes or hold their completion back. */
export class SpyEngine implements Engine {
  readonly writes: { ops: readonly EngineOp[]; sync: boolean }[] = [];
  /** Scans started. */
  scans = 0;
  failWrites: Error | undefined;
  /** While set, a write reaches the database but reports completion only once this resolves. */
  holdCompletion: Promise<void> | undefined;
  /** Resolves when the latest write has reached the database (whether or not its completion is held). */
  landed: Promise<void> = Promise.resolve();

  constructor(private readonly inner: Engine) {}

  get dir(): string {
    return this.inner.dir;
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.inner.get(key);
  }

  write(ops: readonly EngineOp[], sync: boolean): Promise<void> {
    if (this.failWrites !== undefined) return Promise.reject(this.failWrites);
    this.writes.push({ ops, sync });
    const hold = this.holdCompletion;
    const write = this.inner.write(ops, sync);
    this.landed = write.catch(() => undefined);
    return write.then(() => hold);
  }

  scan(range: KeyRange, options?: ScanOptions): AsyncGenerator<{ key: Buffer; value: Buffer }, void, undefined> {
    this.scans++;
    return this.inner.scan(range, options);
  }

  clear(range: KeyRange): Promise<void> {
    return this.inner.clear(range);
  }

  compactRange(range: KeyRange): Promise<void> {
    return this.inner.compactRange(range);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Lets pending I/O callbacks run (the binding answers on the event loop, the memory store on microtasks). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

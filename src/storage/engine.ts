/**
 * A small promise-based wrapper around the `rocksdb` binding, and the only file that imports it.
 * The rest of storage/ sees an {@link Engine}: get, atomic write batches, ordered range scans,
 * range clears and compaction, with binary keys and values.
 *
 * The binding runs each call on the libuv thread pool, so two calls made back to back may execute
 * in either order: callers that need an order (writes) must wait for one call before the next.
 * RocksDB's own LOCK file keeps a second process (or a second open in this process) out of a data
 * directory; that failure surfaces as {@link DataDirInUseError}.
 */
import { mkdir } from "node:fs/promises";
import rocksdbModule from "rocksdb";
import { DataDirInUseError } from "./errors.js";

// @types/rocksdb declares an ES default export, but the package is CommonJS and its
// module.exports IS the constructor, which is what a default import yields at run time.
type RocksDBConstructor = typeof rocksdbModule.default;
type RocksDB = ReturnType<RocksDBConstructor>;
const RocksDB = rocksdbModule as unknown as RocksDBConstructor;

/** One operation of an atomic write batch. */
export type EngineOp = { readonly type: "put"; readonly key: Buffer; readonly value: Buffer } | { readonly type: "del"; readonly key: Buffer };

/** Keys in [gte, lt). */
export interface KeyRange {
  readonly gte: Buffer;
  readonly lt: Buffer;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
}

export interface ScanOptions {
  /** Newest (highest) key first. Default false. */
  readonly reverse?: boolean;
  /** At most this many pairs. Default: no limit. */
  readonly limit?: number;
}

/** An open key-value database. Every method except close() requires the engine to be open. */
export interface Engine {
  readonly dir: string;
  /** The value of `key`, or undefined when absent. */
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Applies all `ops` atomically, in order; with `sync`, the write-ahead log is fsynced before resolving. */
  write(ops: readonly EngineOp[], sync: boolean): Promise<void>;
  /**
   * Pairs in `range`, in key order (or reverse), from a consistent point-in-time view taken when
   * the scan starts. Ending the loop early (break, throw) releases the iterator.
   */
  scan(range: KeyRange, options?: ScanOptions): AsyncGenerator<KeyValue, void, undefined>;
  /** Deletes every key in `range`. Not atomic as a whole and not synced: callers must tolerate a partial clear after a crash. */
  clear(range: KeyRange): Promise<void>;
  /** Asks RocksDB to compact the files holding `range` (reclaims space after large deletes). */
  compactRange(range: KeyRange): Promise<void>;
  /** Closes the database; waits for calls in flight. */
  close(): Promise<void>;
}

/** Bytes the binding reads ahead per iterator step during scans (its default is 16 KiB). */
const scanReadAheadBytes = 256 * 1024;

/**
 * Opens (creating if missing) the RocksDB database in `dir`. Throws {@link DataDirInUseError}
 * when another process or store holds it.
 */
export async function openEngine(dir: string): Promise<Engine> {
  await mkdir(dir, { recursive: true });
  const db = RocksDB(dir);
  try {
    await callback<void>((cb) => db.open(OPEN_OPTIONS, cb));
  } catch (e) {
    if (isLockError(e)) throw new DataDirInUseError(dir, e);
    throw e;
  }
  return new RocksEngine(dir, db);
}

/**
 * RocksDB options. The binding's defaults (4 MiB write buffer, 2 MiB files, snappy) made
 * compaction take half of a node's CPU under load (about 10x write amplification for record
 * batches that are mostly incompressible or already compressed by the client). Larger memtables
 * and files cut that; durability is unchanged (every acknowledged write is a synced batch).
 * Measured with `npm run bench`: 27.4k vs 18.0k records/s, compaction 8% vs 25% of a core,
 * at about 80 MiB more RSS per node (cluster/bench/README.md).
 */
const OPEN_OPTIONS = {
  createIfMissing: true,
  errorIfExists: false,
  compression: false,
  writeBufferSize: 64 * 1024 * 1024,
  maxFileSize: 64 * 1024 * 1024,
} as const;

function isLockError(e: unknown): boolean {
  // Another process: "IO error: While lock file: DIR/LOCK: Resource temporarily unavailable".
  // This process: "IO error: lock hold by current process, ... DIR/LOCK: No locks available".
  return e instanceof Error && /IO error/i.test(e.message) && /\bLOCK\b/.test(e.message);
}

class RocksEngine implements Engine {
  constructor(readonly dir: string, private readonly db: RocksDB) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    try {
      return await callback<Buffer>((cb) => this.db.get(key, { asBuffer: true }, (err, value) => cb(err, value as Buffer)));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async write(ops: readonly EngineOp[], sync: boolean): Promise<void> {
    const batch = ops.map((op) => (op.type === "put" ? { type: "put" as const, key: op.key, value: op.value } : { type: "del" as const, key: op.key }));
    await callback<void>((cb) => this.db.batch(batch, { sync }, cb));
  }

  async *scan(range: KeyRange, options: ScanOptions = {}): AsyncGenerator<KeyValue, void, undefined> {
    const iteratorOptions = {
      gte: range.gte,
      lt: range.lt,
      reverse: options.reverse ?? false,
      limit: options.limit ?? -1,
      keyAsBuffer: true,
      valueAsBuffer: true,
      highWaterMark: scanReadAheadBytes,
    };
    const it = this.db.iterator(iteratorOptions);
    try {
      for (;;) {
        const kv = await new Promise<KeyValue | undefined>((resolve, reject) => {
          it.next((err, key, value) => {
            if (err) reject(err);
            else resolve(key === undefined ? undefined : { key: key as Buffer, value: value as Buffer });
          });
        });
        if (kv === undefined) return;
        yield kv;
      }
    } finally {
      await callback<void>((cb) => it.end(cb));
    }
  }

  async clear(range: KeyRange): Promise<void> {
    await callback<void>((cb) => this.db.clear({ gte: range.gte, lt: range.lt }, cb));
  }

  async compactRange(range: KeyRange): Promise<void> {
    await callback<void>((cb) => this.db.compactRange(range.gte, range.lt, cb));
  }

  async close(): Promise<void> {
    await callback<void>((cb) => this.db.close(cb));
  }
}

function isNotFound(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (e as { code?: unknown }).code === "LEVEL_NOT_FOUND" || (e as { notFound?: unknown }).notFound === true || /^NotFound\b/.test(e.message);
}

function callback<T>(start: (cb: (err: Error | undefined | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => {
      if (err) reject(err);
      else resolve(value as T);
    });
  });
}

/**
 * The memory limits of a store's read views, shared by the RocksDB and the in-memory store, with
 * their defaults and the relations between them checked when a store opens.
 */

export interface CacheOptions {
  /** Bytes of each group's most recent entries kept in memory (at least the last entry). Default 1 MiB. */
  readonly cacheBytesPerGroup?: number;
  /**
   * Bytes that one `load()` brings into memory (at least one entry). For the core to make progress
   * through old ranges it must be at least the core's `maxMsgBytes` and `maxCommittedBytesPerReady`.
   * Default 4 MiB.
   */
  readonly loadBytesMax?: number;
  /** Bytes of loaded older entries kept for all groups together (least recently used go first). Default 64 MiB; at least 2 × loadBytesMax. */
  readonly loadedBytesMax?: number;
  /** Snapshot data up to this size stays in memory; larger data is read back when the core asks for it. Default 64 KiB. */
  readonly snapshotCacheBytesMax?: number;
}

export type ResolvedCacheOptions = Required<CacheOptions>;

/** Entry ranges a group remembers as missed between two `takeMisses()` calls. */
export const missesPerGroupMax = 16;

/** Fills in defaults and validates; throws a RangeError naming the bad option. */
export function resolveCacheOptions(o: CacheOptions): ResolvedCacheOptions {
  const r: ResolvedCacheOptions = {
    cacheBytesPerGroup: o.cacheBytesPerGroup ?? 1024 * 1024,
    loadBytesMax: o.loadBytesMax ?? 4 * 1024 * 1024,
    loadedBytesMax: o.loadedBytesMax ?? 64 * 1024 * 1024,
    snapshotCacheBytesMax: o.snapshotCacheBytesMax ?? 64 * 1024,
  };
  for (const name of ["cacheBytesPerGroup", "loadBytesMax", "loadedBytesMax"] as const) {
    if (!Number.isSafeInteger(r[name]) || r[name] <= 0) throw new RangeError(`storage: ${name} must be a positive integer, got ${r[name]}`);
  }
  if (!Number.isSafeInteger(r.snapshotCacheBytesMax) || r.snapshotCacheBytesMax < 0) {
    throw new RangeError(`storage: snapshotCacheBytesMax must be a non-negative integer, got ${r.snapshotCacheBytesMax}`);
  }
  if (r.loadedBytesMax < 2 * r.loadBytesMax) {
    throw new RangeError(`storage: loadedBytesMax (${r.loadedBytesMax}) must be at least 2 × loadBytesMax (${r.loadBytesMax})`);
  }
  return r;
}

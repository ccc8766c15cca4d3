/**
 * # Storage
 *
 * Durable storage for every Raft group of a node, behind the `RaftStore` port that multiraft
 * declares (multiraft/ports.ts). One RocksDB database per node holds all groups (keys.ts has the
 * layout); engine.ts is the only file that touches the `rocksdb` binding.
 *
 * **Writes.** The host hands each round's persistence work for all groups to `write()`, which
 * plans every group's share against its current state (write-plan.ts: a snapshot replaces the
 * log, entries replace any stored suffix from their first index, term runs follow), turns all of
 * it into ONE RocksDB write batch, and issues it with a single `sync: true` when asked (group
 * commit: one fsync per round, however many groups). Only after the batch succeeded do the
 * in-memory views change, so the core never reads what a crash could take back. Changes run one
 * at a time, in call order.
 *
 * **Reads.** The Raft core reads synchronously, but the log lives on disk. Each group's view
 * (group-view.ts) keeps what is small — hard state, snapshot metadata, first and last index, and
 * the term runs, so `term(i)` works for any index — plus a bounded tail of recent entries
 * (`cacheBytesPerGroup`). A read of older entries throws the core's `LogUnavailableError` and
 * records the range; the host collects those with `takeMisses()`, calls `load()` to bring the
 * range into a node-wide LRU of loaded ranges (`loadBytesMax` each, `loadedBytesMax` in total),
 * and the core retries on a later tick. Consumers read committed entries with `readEntries()`,
 * straight from disk.
 *
 * **Integrity.** Every entry carries a CRC-32C over index, term, type and data (entry-codec.ts),
 * other records carry their own. Opening verifies everything (rocks-open.ts): checksums, that
 * entries are contiguous from the snapshot, that the term runs match, that the commit index is
 * not beyond the log; any failure refuses to open with a `StorageCorruptionError` naming group and
 * index. A data directory records its cluster and node and refuses any other.
 *
 * **Testing.** memory/ holds a store with the same semantics on a `MemoryDisk` that can be
 * reopened or crashed (losing unsynced writes); testing/ holds the behaviour suite both pass.
 */
export { openRaftStore, RocksRaftStore, type RaftStoreOptions } from "./rocks-raft-store.js";
export { openMemoryRaftStore, MemoryRaftStore, type MemoryRaftStoreOptions } from "./memory/memory-raft-store.js";
export { MemoryDisk } from "./memory/memory-disk.js";
export type { CacheOptions } from "./options.js";
export type { GroupView } from "./group-view.js";
export type { Engine, EngineOp, KeyRange } from "./engine.js";
export { openEngine } from "./engine.js";
export { DataDirInUseError, IdentityMismatchError, StorageCorruptionError, StorageError, StorageFormatError, type StorageErrorCode } from "./errors.js";

/**
 * Errors of the storage layer. None of them is an operating error a client could act on: each
 * stops a group or refuses to start the node, and the message says what the operator should do.
 * Each class has a stable `code`, a `name` and, where another error caused it, a `cause`.
 */
import type { GroupId, LogIndex } from "../lib/ids.js";

export type StorageErrorCode = "STORAGE_CORRUPTION" | "DATA_DIR_IN_USE" | "IDENTITY_MISMATCH" | "STORAGE_FORMAT";

/** Base class of the storage errors. */
export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "StorageError";
  }
}

/**
 * Stored data failed a check (checksum, a missing entry, inconsistent metadata). The store never
 * serves such data: opening refuses, or the group stops at the first read of it.
 */
export class StorageCorruptionError extends StorageError {
  constructor(readonly group: GroupId, readonly index: LogIndex, what: string, cause?: unknown) {
    super(
      "STORAGE_CORRUPTION",
      `storage of group ${group} is corrupt at index ${index}: ${what}; ` +
        "do not serve from this replica: remove the group's data (or the node's data directory) and let the replica be rebuilt from its peers",
      cause,
    );
    this.name = "StorageCorruptionError";
  }
}

/** Another process (or another store in this process) holds the data directory open. */
export class DataDirInUseError extends StorageError {
  constructor(readonly dir: string, cause?: unknown) {
    super("DATA_DIR_IN_USE", `data directory ${dir} is in use by another process; stop that process or give this node its own data directory`, cause);
    this.name = "DataDirInUseError";
  }
}

/** The data directory belongs to another cluster or another node. */
export class IdentityMismatchError extends StorageError {
  constructor(readonly dir: string, readonly stored: string, readonly expected: string) {
    super(
      "IDENTITY_MISMATCH",
      `data directory ${dir} belongs to ${stored}, not to ${expected}; ` +
        "point this node at its own data directory, or empty the directory if its data is no longer wanted",
    );
    this.name = "IdentityMismatchError";
  }
}

/** The data directory was written by an incompatible version of the storage format. */
export class StorageFormatError extends StorageError {
  constructor(readonly dir: string, what: string) {
    super("STORAGE_FORMAT", `data directory ${dir} has an unsupported storage format (${what}); run a raftmq version that wrote it, or empty the directory`);
    this.name = "StorageFormatError";
  }
}

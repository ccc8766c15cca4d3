/**
 * The interfaces that the multi-raft host declares and that storage/ and transport/ implement.
 * multiraft never imports those modules; server/ wires the real implementations in, tests wire
 * in-memory ones.
 */
import type { GroupId, LogIndex, NodeId } from "../lib/ids.js";
import type { Entry, HardState, Message, Snapshot, Storage } from "../raft/index.js";

// ------------------------------------------------------------------ storage

/** One group's share of a persistence round (from one Ready). */
export interface GroupWrite {
  readonly group: GroupId;
  /** Replaces the whole log and the state machine image; written before `entries`. */
  readonly snapshot: Snapshot | undefined;
  /** Appended after discarding any stored suffix from `entries[0].index` on. */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
}

/**
 * The synchronous view of one group's stable log that the Raft core reads. It answers from
 * memory (hard state, term index, a bounded cache of recent entries) and throws
 * `LogUnavailableError` for entry ranges it must first load from disk; it records those misses
 * so that the host can load them (`RaftStore.load`) and let the core retry on a later tick.
 */
export interface GroupStorage extends Storage {
  /** The entry ranges [lo, hi) that reads missed since the last call, then forgets them. */
  takeMisses(): readonly { readonly lo: LogIndex; readonly hi: LogIndex }[];
}

/**
 * Durable storage for every Raft group of this node, in one database. Writes of one round for
 * all groups go into ONE write batch with at most ONE fsync (group commit).
 */
export interface RaftStore {
  /** The groups that have state on disk. */
  groups(): readonly GroupId[];
  /** The read view of one group; an unknown group gets an empty one (a new replica). */
  storage(group: GroupId): GroupStorage;
  /**
   * Persists one round for many groups as a single batch; with `sync`, durable (fsynced) before
   * the promise resolves. The read views reflect the writes once it resolves.
   */
  write(writes: readonly GroupWrite[], sync: boolean): Promise<void>;
  /** Records a snapshot taken at `snapshot.metadata.index` and deletes the entries up to it. */
  compact(group: GroupId, snapshot: Snapshot): Promise<void>;
  /** Loads entries [lo, hi) into the group's cache so that the core can read them. */
  load(group: GroupId, lo: LogIndex, hi: LogIndex): Promise<void>;
  /**
   * Reads committed entries for consumers: [lo, hi), at most maxBytes (at least one). Entries still
   * in the tail cache come from memory; older ones from disk, without entering the cache.
   */
  readEntries(group: GroupId, lo: LogIndex, hi: LogIndex, maxBytes: number): Promise<Entry[]>;
  /** Deletes every trace of a group. */
  dropGroup(group: GroupId): Promise<void>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ transport

/** A Raft message tagged with the group it belongs to. */
export interface GroupMessage {
  readonly group: GroupId;
  readonly message: Message;
}

/**
 * Node-to-node delivery of Raft messages. One long-lived stream per peer carries the messages of
 * all groups; `send` is fire-and-forget (Raft tolerates loss), bounded per peer, and reports
 * what it had to drop so that the host can tell the core (`reportUnreachable`, `reportSnapshot`).
 */
export interface Transport {
  /**
   * Queues the messages for `to`; all messages of one call travel in one frame when possible. An
   * empty list asks for a keep-alive: a frame without messages unless others go out anyway, which
   * reaches the peer's receive handler as an empty list (the host's proof that this node lives).
   */
  send(to: NodeId, messages: readonly GroupMessage[]): void;
  /**
   * Handler for messages arriving from peers, in the order each peer sent them. Called with an
   * empty list for a keep-alive; every call is a sign of life of `from`.
   */
  onReceive(handler: (from: NodeId, messages: readonly GroupMessage[]) => void): void;
  /** Handler for messages that could not be delivered to `to` (peer down, queue full, too large). */
  onUnreachable(handler: (to: NodeId, groups: readonly GroupId[]) => void): void;
  /** Handler for the outcome of a snapshot message (streamed in chunks). */
  onSnapshotStatus(handler: (to: NodeId, group: GroupId, ok: boolean) => void): void;
  close(): Promise<void>;
}

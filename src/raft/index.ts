/**
 * # The Raft core
 *
 * One `RawNode` is one Raft group's consensus state on one node. It does no I/O at all: no
 * sockets, no files, no timers, no clock, no `Math.random()` and no async. The host drives it:
 *
 *  - `tick()` on a fixed interval (elections and heartbeats are counted in ticks);
 *  - `step(message)` for every message from a peer; `propose()`, `proposeConfChange()`,
 *    `readIndex()`, `transferLeadership()` for local requests;
 *  - `hasReady()` / `ready()` to collect what to persist, send and apply, then `advance()`
 *    (see ready.ts for the exact order).
 *
 * The design follows the Raft thesis (Ongaro, 2014) and the shape of etcd's raft library:
 * leaders replicate with per-follower flow control (probe → replicate → snapshot, tracker/),
 * the log is a stable prefix in `Storage` plus an unstable suffix not yet persisted (log.ts),
 * PreVote (§9.6) and CheckQuorum/leases (§6.2) keep partitioned nodes from disrupting a healthy
 * leader, membership changes are single-server changes (§4.1) applied when committed, with one
 * pending at a time and the no-op-first rule, and reads use ReadIndex (§6.4).
 *
 * A leader counts itself towards a commit quorum only after the host reports its own entries
 * persisted (`advance()`), so a leader may send appends before its own fsync finishes without
 * ever acknowledging an entry that is not durable on a quorum.
 *
 * With the `quiesce` option, an idle group falls silent: its leader sends a last heartbeat marked
 * `quiesce` once every member holds the whole, committed log, and then neither side counts ticks
 * until something happens to the group (raft.ts, "quiescence"). The host must then watch the
 * leaders' nodes and call `wake()` on the followers of one that falls silent.
 */
export type { RaftConfig } from "./config.js";
export { DEFAULT_ELECTION_TICKS } from "./config.js";
export { isValidConfChange, nextConfState } from "./confchange.js";
export type { ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata } from "./messages.js";
export { decodeConfChange, encodeConfChange, entrySizeBytes, message } from "./messages.js";
export type { ProposalRejection, ProposeResult, RaftRole, ReadState, Ready, SoftState } from "./ready.js";
export type { InitialState, Storage } from "./storage.js";
export { bootstrapSnapshot, LogCompactedError, LogUnavailableError, MemoryStorage, SnapshotUnavailableError } from "./storage.js";
export type { ProgressStatus, Status } from "./raw-node.js";
export { RawNode } from "./raw-node.js";

/**
 * The data the Raft core exchanges with its host: log entries, hard state, snapshots and the
 * messages between peers. These are plain objects; the transport encodes them (transport/codec.ts
 * is the only place that sees both these and protobuf objects).
 */
import type { LogIndex, NodeId, Term } from "../lib/ids.js";

/** `normal` entries carry application data (empty data = the leader's no-op); `conf` entries carry an encoded {@link ConfChange}. */
export type EntryType = "normal" | "conf";

export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log: the current term, the vote in it, and the commit index. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

/** Membership of a group. A node is in at most one of the two lists. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  /** The last log index the snapshot covers, and its term. */
  readonly index: LogIndex;
  readonly term: Term;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

/** A point-in-time image of the state machine; replaces the log prefix up to `metadata.index`. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/**
 * A single-server membership change (Raft thesis §4.1). Only one may be pending at a time and the
 * leader accepts one only after it has committed an entry of its own term (the no-op-first rule).
 * `addVoter` of an existing learner promotes it; `removeNode` may remove the leader itself.
 */
export interface ConfChange {
  readonly type: "addVoter" | "addLearner" | "removeNode";
  readonly nodeId: NodeId;
}

export type MessageType =
  /** Leader → follower: entries after (logTerm, index), and the leader's commit. */
  | "app"
  /**
   * Follower → leader: `index` is the follower's last matching index, or the rejected index with a
   * hint; an acknowledgement also carries the follower's commit index in `commit`.
   */
  | "appResp"
  | "vote"
  | "voteResp"
  /** A vote request that changes no state (thesis §9.6); `term` is the term the candidate would use. */
  | "preVote"
  | "preVoteResp"
  /** Leader → follower: install the snapshot in `snapshot`. */
  | "snap"
  /**
   * Leader → follower: keep-alive, carrying min(commit, follower's match) and an optional read
   * context; with `quiesce`, the leader's last heartbeat before it falls silent (see raft.ts).
   */
  | "heartbeat"
  /** Follower → leader: answers a heartbeat; `commit` is the follower's commit index. */
  | "heartbeatResp"
  /** Leader → transferee: start an election now, ignoring leases (thesis §3.10). */
  | "timeoutNow"
  /** Follower → leader: ask for a read index for `context`. */
  | "readIndex"
  /** Leader → follower: the read index (`index`) for `context`. */
  | "readIndexResp";

/**
 * One message between peers of one group. All fields are always present, so that every message
 * has the same shape; unused fields hold their zero values.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  /** app: term of the entry at `index`. vote/preVote: term of the candidate's last entry. appResp reject: hint term. */
  readonly logTerm: Term;
  /** app: index preceding `entries`. vote/preVote: candidate's last index. appResp: see above. */
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  /** app, heartbeat: the leader's commit (see heartbeat). appResp, heartbeatResp: the follower's commit. */
  readonly commit: LogIndex;
  readonly reject: boolean;
  /** appResp reject: the follower's best guess of where the logs diverge. */
  readonly rejectHint: LogIndex;
  readonly snapshot: Snapshot | undefined;
  /** Read-index request context (heartbeat, readIndex, readIndexResp), or "transfer" on vote for a leadership transfer. */
  readonly context: string;
  /** heartbeat: the group is idle and the leader stops heartbeating; a caught-up follower quiesces too. */
  readonly quiesce: boolean;
}

const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]);

/** Builds a message with zero values for the fields not given. */
export function message(fields: Pick<Message, "type" | "from" | "to" | "term"> & Partial<Message>): Message {
  return {
    type: fields.type,
    from: fields.from,
    to: fields.to,
    term: fields.term,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? EMPTY_ENTRIES,
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    snapshot: fields.snapshot,
    context: fields.context ?? "",
    quiesce: fields.quiesce ?? false,
  };
}

/** Whether a message of this type is a response (it never starts an election or changes a leader). */
export function isResponse(type: MessageType): boolean {
  return (
    type === "appResp" ||
    type === "voteResp" ||
    type === "preVoteResp" ||
    type === "heartbeatResp" ||
    type === "readIndexResp"
  );
}

/** Approximate payload size of an entry, for flow control and batching limits. */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + 24;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Encodes a membership change as the data of a `conf` entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return textEncoder.encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId }));
}

/** Decodes the data of a `conf` entry. Throws on malformed data (a corrupt log is fatal for the group). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const parsed = JSON.parse(textDecoder.decode(data)) as { type?: unknown; nodeId?: unknown };
  const { type, nodeId } = parsed;
  if ((type !== "addVoter" && type !== "addLearner" && type !== "removeNode") || typeof nodeId !== "number") {
    throw new Error(`malformed conf change entry: ${textDecoder.decode(data)}`);
  }
  return { type, nodeId };
}

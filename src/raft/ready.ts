/**
 * What the host must do after the core changed: the contract between the pure core and its I/O.
 *
 * Process a {@link Ready} in this order, then call `advance()`:
 *  1. persist `snapshot` (if any), then `entries` (replacing any conflicting suffix), then
 *     `hardState` (if any) — durably (fsync) when `mustSync` is true;
 *  2. send `messages` (they may depend on what step 1 persisted: a vote, an append acknowledgement);
 *  3. restore the state machine from `snapshot` (if any), then apply `committedEntries` in order;
 *  4. deliver `readStates` to waiting readers once the state machine has applied up to their index.
 * `ready()` must not be called again until `advance()` has been called for the previous one.
 */
import type { LogIndex, NodeId, Term } from "../lib/ids.js";
import type { Entry, HardState, Message, Snapshot } from "./messages.js";

export type RaftRole = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state worth reporting to the host when it changes. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: RaftRole;
}

/** A linearizable read point: once the state machine has applied `index`, reads for `context` may be served. */
export interface ReadState {
  readonly index: LogIndex;
  readonly context: string;
}

export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** Whether step 1 must be durable before step 2 (term, vote or entries changed). */
  readonly mustSync: boolean;
}

/** Why a proposal was not appended. Each comes with the known leader, so a client can be redirected. */
export type ProposalRejection =
  /** This node is not the leader. */
  | "notLeader"
  /** A leadership transfer is in progress; retry after it. */
  | "transferring"
  /** Another membership change is not applied yet. */
  | "confChangePending"
  /** The leader has not yet committed an entry of its own term (no-op-first rule for membership changes). */
  | "leaderNotReady"
  /** The change would leave no voter, or names a node that is not in the required state. */
  | "invalidConfChange"
  /** Too many uncommitted bytes; back off. */
  | "overloaded";

export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | { readonly ok: false; readonly reason: ProposalRejection; readonly lead: NodeId };

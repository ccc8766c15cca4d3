/**
 * Operating errors: expected failures a caller can act on (retry elsewhere, fix the request).
 * Each has a stable `code` that travels to clients (gRPC trailers) and comes back as the same
 * class there; server/ maps every code to one gRPC status in a single exhaustive table.
 * Programmer errors are assertions (lib/assert.ts); corruption stops the group or the node.
 */
import type { GroupId, NodeId } from "./ids.js";

export type ErrorCode =
  | "NOT_LEADER"
  | "PROPOSAL_DROPPED"
  | "TIMEOUT"
  | "OVERLOADED"
  | "UNKNOWN_TOPIC"
  | "TOPIC_EXISTS"
  | "UNKNOWN_PARTITION"
  | "INVALID_ARGUMENT"
  | "RECORD_TOO_LARGE"
  | "OFFSET_OUT_OF_RANGE"
  | "UNAVAILABLE"
  | "SHUTTING_DOWN"
  /** An idempotent producer's batch does not follow its previous one (a gap, or a reused sequence). */
  | "OUT_OF_ORDER_SEQUENCE"
  /** An idempotent producer's epoch is older than the current one: a newer session took over. */
  | "PRODUCER_FENCED"
  /** A consumer group's coordinator does not know the member as the owner of the partition (expired, or the partition moved): heartbeat to learn the current assignment. */
  | "UNKNOWN_MEMBER"
  /** The operation (an offset reset) needs a consumer group without live members. */
  | "GROUP_NOT_EMPTY";

export interface BrokerErrorOptions {
  readonly cause?: unknown;
  /** For NOT_LEADER: the leader's node id, when known. */
  readonly leaderId?: NodeId;
  /** For NOT_LEADER: the leader's client address, when known. */
  readonly leaderAddress?: string;
}

/** Base class of operating errors. The message says what happened and what to do. */
export class BrokerError extends Error {
  readonly leaderId: NodeId | undefined;
  readonly leaderAddress: string | undefined;

  constructor(readonly code: ErrorCode, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BrokerError";
    this.leaderId = options.leaderId;
    this.leaderAddress = options.leaderAddress;
  }
}

/** This node does not lead the group; retry on the leader (if known). */
export class NotLeaderError extends BrokerError {
  constructor(readonly group: GroupId, leaderId: NodeId, reason: string, leaderAddress?: string) {
    super(
      "NOT_LEADER",
      `this node is not the leader of group ${group} (${reason})` +
        (leaderId > 0 ? `; the leader is node ${leaderId}${leaderAddress ? ` at ${leaderAddress}` : ""}` : "; no leader is known yet, retry shortly"),
      { leaderId: leaderId > 0 ? leaderId : undefined, leaderAddress },
    );
    this.name = "NotLeaderError";
  }
}

/** A proposal was accepted but will never commit (leader change, replica removed, shutdown). Retrying is safe for idempotent writes. */
export class ProposalDroppedError extends BrokerError {
  constructor(readonly group: GroupId, reason: string) {
    super("PROPOSAL_DROPPED", `the write to group ${group} was dropped: ${reason}; retry it`);
    this.name = "ProposalDroppedError";
  }
}

/** An operation did not finish in time. Its outcome is unknown: it may still take effect. */
export class TimeoutError extends BrokerError {
  constructor(what: string, timeoutMs: number) {
    super("TIMEOUT", `${what} did not complete within ${timeoutMs} ms; its outcome is unknown`);
    this.name = "TimeoutError";
  }
}

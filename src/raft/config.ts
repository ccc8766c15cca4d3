/**
 * Options of one Raft group, with their defaults and the relations between them validated at
 * construction (an invalid combination throws, naming the option).
 */
import type { LogIndex, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import type { Storage } from "./storage.js";

/** The default of {@link RaftConfig.electionTicks}. */
export const DEFAULT_ELECTION_TICKS = 10;

export interface RaftConfig {
  /** This node's id; never 0. */
  readonly id: NodeId;
  /** Stable storage (read-only for the core). */
  readonly storage: Storage;
  /** Seeded randomness for election timeouts. */
  readonly random: Random;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is drawn
   * uniformly from [electionTicks, 2 * electionTicks) at each reset. Default 10.
   */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats. Must be < electionTicks. Default 1. */
  readonly heartbeatTicks?: number;
  /** The index the host has applied up to on restart. Default: the snapshot's index. */
  readonly applied?: LogIndex;
  /** Upper bound on the bytes of entries in one append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxMsgBytes?: number;
  /** Append messages in flight per follower in replicate state. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Bytes of entries in flight per follower. Default 32 MiB. Must be >= maxMsgBytes. */
  readonly maxInflightBytes?: number;
  /** Bytes of uncommitted entries a leader accepts before rejecting proposals as overloaded. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /** Bytes of committed entries handed out by one Ready (at least one entry). Default 4 MiB. */
  readonly maxCommittedBytesPerReady?: number;
  /** Run a pre-vote round before a real election (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Leaders step down after an election timeout without hearing from a quorum; followers honour leases. Default true. */
  readonly checkQuorum?: boolean;
  /**
   * Quiescence of idle groups (CockroachDB's technique; default false). A leader whose group is
   * fully idle — every entry committed and applied, every member's log matching its own and
   * known to hold its commit index, no read, transfer or membership change pending — sends one
   * last heartbeat marked `quiesce` and stops heartbeating and counting CheckQuorum rounds; a
   * follower that receives it from its leader while caught up stops its election timer. Ticks
   * then cost nothing. Anything else wakes the group: any other message, a proposal, a read, a
   * campaign, a transfer, or `wake()`. A follower cannot tell a quiet leader from a dead one, so
   * the HOST must watch the leader's node and call `wake()` when it falls silent (multiraft does
   * this with node-level keep-alives); the follower then campaigns after its election timeout.
   */
  readonly quiesce?: boolean;
  /**
   * How a leader tells followers that the commit index moved (default false: at once). With
   * `lazyCommit` the news rides on the next append or heartbeat to each follower, so a lone write
   * costs one append and one acknowledgement per follower instead of two of each (and the
   * follower one synced write instead of two). Commits and acknowledgements are unchanged; a
   * follower applies committed entries up to a heartbeat interval later.
   */
  readonly lazyCommit?: boolean;
  readonly logger?: Logger;
}

export type ResolvedRaftConfig = Required<Omit<RaftConfig, "applied" | "logger">> & Pick<RaftConfig, "applied" | "logger">;

/** Fills in defaults and validates relations; throws a RangeError naming the bad option. */
export function resolveConfig(cfg: RaftConfig): ResolvedRaftConfig {
  const resolved: ResolvedRaftConfig = {
    id: cfg.id,
    storage: cfg.storage,
    random: cfg.random,
    electionTicks: cfg.electionTicks ?? DEFAULT_ELECTION_TICKS,
    heartbeatTicks: cfg.heartbeatTicks ?? 1,
    applied: cfg.applied,
    maxMsgBytes: cfg.maxMsgBytes ?? 1024 * 1024,
    maxInflightMsgs: cfg.maxInflightMsgs ?? 256,
    maxInflightBytes: cfg.maxInflightBytes ?? 32 * 1024 * 1024,
    maxUncommittedBytes: cfg.maxUncommittedBytes ?? 64 * 1024 * 1024,
    maxCommittedBytesPerReady: cfg.maxCommittedBytesPerReady ?? 4 * 1024 * 1024,
    preVote: cfg.preVote ?? true,
    checkQuorum: cfg.checkQuorum ?? true,
    quiesce: cfg.quiesce ?? false,
    lazyCommit: cfg.lazyCommit ?? false,
    logger: cfg.logger,
  };
  const positive = ["electionTicks", "heartbeatTicks", "maxMsgBytes", "maxInflightMsgs", "maxInflightBytes", "maxUncommittedBytes", "maxCommittedBytesPerReady"] as const;
  for (const name of positive) {
    const v = resolved[name];
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`raft config: ${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(resolved.id) || resolved.id <= 0) throw new RangeError(`raft config: id must be a positive integer, got ${resolved.id}`);
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    throw new RangeError(`raft config: heartbeatTicks (${resolved.heartbeatTicks}) must be less than electionTicks (${resolved.electionTicks})`);
  }
  if (resolved.maxInflightBytes < resolved.maxMsgBytes) {
    throw new RangeError(`raft config: maxInflightBytes (${resolved.maxInflightBytes}) must be at least maxMsgBytes (${resolved.maxMsgBytes})`);
  }
  return resolved;
}

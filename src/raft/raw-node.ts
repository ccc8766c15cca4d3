/**
 * The host-facing wrapper of one Raft group: turns the core's state changes into {@link Ready}
 * batches and takes the host's `advance()` back. See ready.ts for the processing order.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, NodeId, Term } from "../lib/ids.js";
import type { RaftConfig } from "./config.js";
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from "./messages.js";
import type { ProgressState } from "./tracker/progress.js";
import { Raft } from "./raft.js";
import { LogUnavailableError } from "./storage.js";
import type { ProposeResult, RaftRole, Ready, SoftState } from "./ready.js";

export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly inflight: number;
}

export interface Status {
  readonly id: NodeId;
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lead: NodeId;
  readonly role: RaftRole;
  readonly confState: ConfState;
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly leadTransferee: NodeId;
  /** The group is idle and ticks do nothing (config `quiesce`). */
  readonly quiesced: boolean;
  /** Leader only: the replication state of every member. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | undefined;
}

/** What a handed-out Ready promised, so that advance() can acknowledge exactly that. */
interface InProgress {
  readonly stableIndex: LogIndex;
  readonly stableTerm: Term;
  readonly snapshotIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly committedEntries: readonly Entry[];
}

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inProgress: InProgress | undefined = undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = { lead: this.raft.lead, role: this.raft.role };
    this.prevHard = this.raft.hardState();
  }

  /** Advances the logical clock by one tick. A no-op while quiesced. */
  tick(): void {
    this.raft.tick();
  }

  /** Whether the group is quiesced (config `quiesce`): ticks do nothing until something wakes it. */
  isQuiesced(): boolean {
    return this.raft.quiesced;
  }

  /**
   * Leaves quiescence (a no-op otherwise): a leader heartbeats at once, a follower restarts its
   * election timer. The host calls it on a quiesced follower when its leader's node falls silent,
   * so that the follower campaigns after its election timeout.
   */
  wake(): void {
    this.raft.wake();
  }

  /** The leader and role as of now; cheap, unlike status(). */
  softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  /** Starts an election now (skipping the timeout), with PreVote if configured. */
  campaign(): void {
    this.raft.hup(false);
  }

  /** Leader: appends `data` to the log. The result says the index it got, or why it was rejected. */
  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  /** Leader: appends a single-server membership change. It takes effect when applied. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(cc);
  }

  /** Handles a message from a peer. */
  step(m: Message): void {
    this.raft.step(m);
  }

  /** Leader: hands leadership to `to` (ignored on non-leaders and for non-voters). */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /**
   * Requests a linearizable read point for `context` (unique per request); the answer arrives in
   * `Ready.readStates`. Returns false if the request was dropped because no leader is known.
   */
  readIndex(context: string): boolean {
    return this.raft.readIndex(context);
  }

  /** The transport could not reach `id`: replicate to it cautiously (probe) until it answers. */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /** The transport finished (ok) or failed sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  /** Whether there is anything to persist, send or apply. Flushes batched proposal broadcasts. */
  hasReady(): boolean {
    if (this.inProgress !== undefined) return false;
    this.raft.flushBroadcast();
    const r = this.raft;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.entries.length > 0 || r.log.unstable.snapshot !== undefined) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    if (r.lead !== this.prevSoft.lead || r.role !== this.prevSoft.role) return true;
    return !hardStateEqual(r.hardState(), this.prevHard);
  }

  /**
   * Collects what to persist, send and apply. Must not be called again until {@link advance}.
   * Steps, ticks and proposals may happen between ready() and advance().
   */
  ready(): Ready {
    assert(this.inProgress === undefined, "ready() called again before advance()");
    const r = this.raft;
    r.flushBroadcast();
    const soft: SoftState = { lead: r.lead, role: r.role };
    const hard = r.hardState();
    const softChanged = soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role;
    const hardChanged = !hardStateEqual(hard, this.prevHard);
    const entries = r.log.unstable.entries.slice();
    const snapshot: Snapshot | undefined = r.log.unstable.snapshot;
    let committedEntries: readonly Entry[] = NO_ENTRIES;
    try {
      committedEntries = r.log.nextCommittedEntries();
    } catch (e) {
      if (!(e instanceof LogUnavailableError)) throw e; // retried on the next ready()
    }
    const last = entries[entries.length - 1];
    this.inProgress = {
      stableIndex: last?.index ?? 0,
      stableTerm: last?.term ?? 0,
      snapshotIndex: snapshot?.metadata.index ?? 0,
      appliedIndex: committedEntries[committedEntries.length - 1]?.index ?? 0,
      committedEntries,
    };
    if (this.inProgress.appliedIndex > 0) r.log.acceptApplying(this.inProgress.appliedIndex);
    const mustSync = entries.length > 0 || snapshot !== undefined || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote;
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hard : undefined,
      entries,
      snapshot,
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
      mustSync,
    };
    r.msgs = [];
    r.readStates = [];
    this.prevSoft = soft;
    this.prevHard = hard;
    return rd;
  }

  /**
   * The host has persisted, sent and applied the last Ready. Marks its entries stable and applied,
   * applies its membership changes, and lets a leader count its own persisted entries.
   */
  advance(): void {
    const p = this.inProgress;
    assert(p !== undefined, "advance() called without a ready()");
    this.inProgress = undefined;
    const r = this.raft;
    if (p.snapshotIndex > 0) {
      r.log.stableSnapTo(p.snapshotIndex);
      if (r.log.applied < p.snapshotIndex) r.log.appliedTo(p.snapshotIndex);
    }
    if (p.stableIndex > 0) {
      r.log.stableTo(p.stableIndex, p.stableTerm);
      if (r.log.termOrZero(p.stableIndex) === p.stableTerm) r.onPersisted(p.stableIndex);
    }
    if (p.appliedIndex > 0) {
      let bytes = 0;
      for (const e of p.committedEntries) bytes += e.data.byteLength;
      r.log.appliedTo(p.appliedIndex);
      r.reduceUncommitted(bytes);
      r.applyConfEntries(p.committedEntries);
    }
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (r.role === "leader") {
      progress = new Map();
      for (const [id, pr] of r.progress) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, inflight: pr.inflights.length });
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.role,
      confState: r.confState(),
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      quiesced: r.quiesced,
      progress,
    };
  }
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

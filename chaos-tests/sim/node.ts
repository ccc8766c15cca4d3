/**
 * One simulated node: a RawNode, its MemoryStorage (the durable disk) and its state machine.
 *
 * The ready loop is split into two scheduled events so that a crash can land anywhere in it:
 *
 *   input (tick/step/propose/...) ──► handOut (ready() at the same virtual ms, checked)
 *        ──► persist (after a random disk latency: persist, send, apply, serve reads, advance())
 *
 * Between handOut and persist the RawNode keeps taking steps and ticks (the core allows it), and
 * a crash in that window loses the handed-out Ready: nothing of it reaches storage, no message of
 * it is sent. A crash drops the RawNode, the state machine and pending reads; a restart rebuilds
 * all of them from storage alone.
 */
import type { LogIndex, NodeId, Term } from "../../src/lib/ids.js";
import type { Random } from "../../src/lib/random.js";
import {
  decodeConfChange,
  MemoryStorage,
  RawNode,
  type ConfChange,
  type Message,
  type ProposeResult,
  type RaftRole,
  type ReadState,
  type Ready,
  type Status,
} from "../../src/raft/index.js";
import type { Checker } from "./checker.js";
import type { RaftKnobs } from "./schedule.js";
import type { Coverage } from "./coverage.js";
import type { EventQueue, Timer } from "./event-queue.js";
import { OverlayLogView, type LogView } from "./log-view.js";
import { encodeProposal, proposalOf, StateMachine } from "./state-machine.js";
import { EventCode, type Trace } from "./trace.js";

/**
 * Deliberate host bugs, for the checker's negative controls (a checker is trusted only once it has
 * caught a planted bug). Never set outside tests.
 *
 *  - sendBeforePersist: send a Ready's messages when it is handed out, before it is persisted (a
 *    crash then loses votes and entries that were already acknowledged);
 *  - forgetHardState: never persist the hard state (a restarted node forgets its term and vote);
 *  - staleReads: answer reads from the local state machine without asking the core;
 *  - lyingDisk: a crash loses the last persisted entry beyond the commit index, although it was
 *    acknowledged (an fsync that lied).
 */
export type PlantedBug = "sendBeforePersist" | "forgetHardState" | "staleReads" | "lyingDisk";

/** Raft, timing and host options shared by all nodes of a cluster. */
export interface NodeOptions {
  readonly tickMs: number;
  /** The core's knobs (electionTicks and heartbeatTicks, if absent, take the core's defaults). */
  readonly raft: RaftKnobs;
  /** Disk latency of one Ready, drawn uniformly from [minDiskMs, maxDiskMs]. */
  readonly minDiskMs: number;
  readonly maxDiskMs: number;
  /** A deliberate host bug (negative controls only). */
  readonly plantedBug?: PlantedBug | undefined;
}

/** What a node needs from its cluster. */
export interface NodeEnv {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly checker: Checker;
  readonly coverage: Coverage;
  readonly options: NodeOptions;
  /** Hands a message to the network. */
  send(m: Message): void;
  /** The node applied a committed membership change. */
  onConfApplied(node: SimNode, cc: ConfChange, index: LogIndex): void;
  /** The node reported itself leader of `term` for the first time. */
  onLeader(node: SimNode, term: Term): void;
}

interface InFlightReady {
  readonly rd: Ready;
  readonly timer: Timer;
}

const ROLE_CODES: Record<RaftRole, number> = { follower: 1, preCandidate: 2, candidate: 3, leader: 4 };

/** One simulated node; see the module comment for its ready loop and crash semantics. */
export class SimNode {
  private raw: RawNode | undefined;
  private sm: StateMachine = StateMachine.empty();
  private handOutTimer: Timer | undefined;
  private inFlight: InFlightReady | undefined;
  private tickTimer: Timer | undefined;
  private pendingReads: ReadState[] = [];
  /** Leader term of the previous hand-out (0 if it was not a leader's), for the append-only check. */
  private leaderTermAtHandOut: Term = 0;
  private lastIndexHandedOut: LogIndex = 0;
  /** Stall watchdog: ticks since the last look, and each follower's match at that look. */
  /** Role and term as of the latest Ready or status(). */
  role: RaftRole = "follower";
  term: Term = 0;
  incarnation = 0;
  decommissioned = false;

  constructor(
    readonly id: NodeId,
    private disk: MemoryStorage,
    private readonly random: Random,
    private readonly env: NodeEnv,
  ) {}

  /** The node's durable storage. */
  get storage(): MemoryStorage {
    return this.disk;
  }

  /** Whether the node is running (not crashed, not decommissioned). */
  get alive(): boolean {
    return this.raw !== undefined;
  }

  /** Index of the last entry the state machine applied (0 when down). */
  get appliedIndex(): LogIndex {
    return this.sm.appliedIndex;
  }

  /** The fingerprint the state machine applied at `i`, if any. */
  appliedAt(i: LogIndex): string | undefined {
    return this.sm.fingerprintAt(i);
  }

  /** Starts (or restarts) the node from its storage alone. */
  start(): void {
    if (this.raw !== undefined || this.decommissioned) return;
    const { env } = this;
    this.incarnation++;
    const snap = this.storage.snapshot();
    this.sm = StateMachine.decode(snap);
    if (snap.metadata.index > 0) env.checker.onRestore(this.id, snap.metadata, this.sm);
    this.raw = new RawNode({
      id: this.id,
      storage: this.storage,
      random: this.random.fork(),
      ...env.options.raft,
    });
    const hs = this.storage.initialState().hardState;
    const st = this.raw.status();
    env.checker.onStart(this.id, hs, st.commit);
    this.role = st.role;
    this.term = st.term;
    this.leaderTermAtHandOut = 0;
    this.lastIndexHandedOut = st.lastIndex;
    env.trace.event(env.queue.now, this.id, this.incarnation === 1 ? EventCode.start : EventCode.restart, hs.term, hs.commit, snap.metadata.index, this.storage.lastIndex(), () =>
      `from disk: term ${hs.term} vote ${hs.vote} commit ${hs.commit} snapshot ${snap.metadata.index} last ${this.storage.lastIndex()}`,
    );
    if (this.tickTimer === undefined) this.scheduleTick(this.random.int(env.options.tickMs));
  }

  /** Loses everything not in storage. Returns whether a Ready was pending or in flight. */
  crash(): boolean {
    if (this.raw === undefined) return false;
    const unpersisted = this.inFlight !== undefined || this.handOutTimer !== undefined;
    this.raw = undefined;
    this.handOutTimer = cancel(this.handOutTimer);
    if (this.inFlight !== undefined) this.inFlight.timer.cancelled = true;
    this.inFlight = undefined;
    this.pendingReads = [];
    this.sm = StateMachine.empty();
    this.role = "follower";
    if (this.env.options.plantedBug === "lyingDisk") this.disk = withoutLastEntry(this.disk);
    const { env } = this;
    env.trace.event(env.queue.now, this.id, EventCode.crash, unpersisted ? 1 : 0, 0, 0, 0, unpersisted ? "with a Ready not yet persisted" : "");
    return unpersisted;
  }

  /** Stops the node for good (it was removed from the group). */
  decommission(): void {
    this.crash();
    this.decommissioned = true;
    this.tickTimer = cancel(this.tickTimer);
    this.env.trace.event(this.env.queue.now, this.id, EventCode.decommission);
  }

  // ------------------------------------------------------------------ inputs

  /** Delivers a message. Returns false if the node is down. */
  step(m: Message): boolean {
    if (this.raw === undefined) return false;
    this.raw.step(m);
    this.afterInput();
    return true;
  }

  /** Proposes `text`; undefined if the node is down. */
  propose(text: string): ProposeResult | undefined {
    const raw = this.raw;
    if (raw === undefined) return undefined;
    const wasLeader = raw.status().role === "leader";
    const result = raw.propose(encodeProposal(text));
    this.env.checker.onProposed(this.id, wasLeader, text, result);
    this.traceProposal(text, result);
    this.afterInput();
    return result;
  }

  /** Proposes a membership change; undefined if the node is down. */
  proposeConfChange(cc: ConfChange): ProposeResult | undefined {
    const raw = this.raw;
    if (raw === undefined) return undefined;
    const result = raw.proposeConfChange(cc);
    this.traceProposal(`${cc.type}(${cc.nodeId})`, result);
    this.afterInput();
    return result;
  }

  /** Asks the leader to hand leadership to `to`. */
  transferLeadership(to: NodeId): void {
    if (this.raw === undefined) return;
    this.raw.transferLeadership(to);
    this.env.trace.event(this.env.queue.now, this.id, EventCode.transfer, to, 0, 0, 0, `to ${to}`);
    this.afterInput();
  }

  /** Requests a read point for `context`. Returns whether the core took the request. */
  readIndex(context: string): boolean {
    if (this.raw === undefined) return false;
    if (this.env.options.plantedBug === "staleReads") {
      this.pendingReads.push({ index: this.sm.appliedIndex, context });
      this.serveReads();
      return true;
    }
    const ok = this.raw.readIndex(context);
    this.env.trace.event(this.env.queue.now, this.id, EventCode.read, ok ? 1 : 0, 0, 0, 0, `${context}${ok ? "" : " (dropped: no leader known)"}`);
    this.afterInput();
    return ok;
  }

  /** The transport could not deliver to `to`. */
  reportUnreachable(to: NodeId): void {
    if (this.raw === undefined) return;
    this.raw.reportUnreachable(to);
    this.afterInput();
  }

  /** The transport finished (ok) or failed sending a snapshot to `to`. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.raw === undefined) return;
    this.raw.reportSnapshot(to, ok);
    this.env.trace.event(this.env.queue.now, this.id, EventCode.reportSnapshot, to, ok ? 1 : 0, 0, 0, `to ${to} ${ok ? "delivered" : "failed"}`);
    this.afterInput();
  }

  /** The core's status, or undefined when down. Refreshes the cached role and term. */
  status(): Status | undefined {
    const st = this.raw?.status();
    if (st !== undefined) {
      this.role = st.role;
      this.term = st.term;
    }
    return st;
  }

  /**
   * Snapshots the state machine at its applied index and compacts the log up to `lagEntries`
   * before it. Returns false if there is nothing new to snapshot (or an incoming snapshot is being
   * persisted).
   */
  takeSnapshot(lagEntries: number): boolean {
    const raw = this.raw;
    if (raw === undefined || this.inFlight?.rd.snapshot !== undefined) return false;
    const applied = this.sm.appliedIndex;
    if (applied <= this.storage.snapshot().metadata.index) return false;
    const confState = raw.status().confState;
    this.storage.createSnapshot(applied, confState, this.sm.encode());
    const compactTo = Math.max(this.storage.firstIndex() - 1, applied - lagEntries);
    this.storage.compact(compactTo);
    this.env.trace.event(this.env.queue.now, this.id, EventCode.snapshotTaken, applied, compactTo, confState.voters.length, confState.learners.length, () =>
      `at ${applied}, compacted to ${compactTo}, voters [${confState.voters.join(",")}] learners [${confState.learners.join(",")}]`,
    );
    return true;
  }

  /**
   * The node's whole log, if the host can see it now: when no Ready is pending or in flight, the
   * core holds nothing unstable, so its log is exactly storage. Otherwise undefined (storage may
   * hold entries the core has already truncated in memory).
   */
  quiescentLog(): LogView | undefined {
    if (this.raw === undefined || this.inFlight !== undefined || this.handOutTimer !== undefined) return undefined;
    return new OverlayLogView(this.storage, undefined, []);
  }

  // ------------------------------------------------------------------ the ready loop

  private scheduleTick(delayMs: number): void {
    this.tickTimer = this.env.queue.after(delayMs, () => {
      this.scheduleTick(this.env.options.tickMs);
      if (this.raw === undefined) return;
      this.raw.tick();
      this.afterInput();
    });
  }

  private afterInput(): void {
    const raw = this.raw;
    if (raw === undefined || this.handOutTimer !== undefined || this.inFlight !== undefined) return;
    if (!raw.hasReady()) return;
    this.handOutTimer = this.env.queue.after(0, () => {
      this.handOutTimer = undefined;
      this.handOut();
    });
  }

  /** Takes a Ready, checks what it shows, and schedules its persistence. */
  private handOut(): void {
    const raw = this.raw;
    if (raw === undefined || !raw.hasReady()) return;
    const rd = raw.ready();
    const view = new OverlayLogView(this.storage, rd.snapshot, rd.entries);
    this.checkReady(rd, view);
    const { options, queue } = this.env;
    if (options.plantedBug === "sendBeforePersist") for (const m of rd.messages) this.env.send(m);
    const latency = this.random.intBetween(options.minDiskMs, options.maxDiskMs);
    this.inFlight = { rd, timer: queue.after(latency, () => this.persist()) };
  }

  private checkReady(rd: Ready, view: LogView): void {
    const { checker } = this.env;
    if (rd.hardState !== undefined) {
      checker.onMemHardState(this.id, rd.hardState);
      this.term = rd.hardState.term;
    }
    if (rd.softState !== undefined) this.onSoftState(rd.softState.role, rd.softState.lead);
    if (rd.snapshot !== undefined) checker.onSnapshotMeta(this.id, rd.snapshot.metadata);
    const first = rd.entries[0];
    if (first !== undefined) {
      if (this.role === "leader" && this.leaderTermAtHandOut === this.term && first.index <= this.lastIndexHandedOut) {
        checker.onLeaderOverwrite(this.id, this.term, first.index, this.lastIndexHandedOut);
      }
      checker.onEntries(this.id, first.index - 1, view.termAt(first.index - 1), rd.entries);
    }
    if (rd.hardState !== undefined) checker.onCommit(this.id, rd.hardState.term, rd.hardState.commit, view);
    if (this.role === "leader") checker.checkLeader(this.id, this.term, view, true);
    for (const m of rd.messages) checker.onSend(m);
    this.leaderTermAtHandOut = this.role === "leader" ? this.term : 0;
    this.lastIndexHandedOut = view.lastIndex;
  }

  private onSoftState(role: RaftRole, lead: NodeId): void {
    const { env } = this;
    const wasLeader = this.role === "leader";
    this.role = role;
    env.trace.event(env.queue.now, this.id, EventCode.role, ROLE_CODES[role], lead, this.term, 0, `${role} term ${this.term} lead ${lead}`);
    if (role === "leader") {
      env.checker.onLeader(this.id, this.term);
      if (!wasLeader) env.onLeader(this, this.term);
    }
  }

  /** Persists the Ready in flight, sends its messages, applies, serves reads, then advance(). */
  private persist(): void {
    const raw = this.raw;
    const inFlight = this.inFlight;
    if (raw === undefined || inFlight === undefined) return;
    this.inFlight = undefined;
    const { rd } = inFlight;
    this.persistReady(rd);
    if (this.env.options.plantedBug !== "sendBeforePersist") for (const m of rd.messages) this.env.send(m);
    if (rd.snapshot !== undefined) this.restoreStateMachine(rd);
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) this.pendingReads.push(rs);
    this.serveReads();
    raw.advance();
    this.afterInput();
  }

  private persistReady(rd: Ready): void {
    const { env } = this;
    const now = env.queue.now;
    if (rd.snapshot !== undefined && !this.storage.applySnapshot(rd.snapshot)) {
      env.checker.fail("snapshotConsistency", [this.id], rd.snapshot.metadata.term, rd.snapshot.metadata.index,
        `core handed out snapshot ${rd.snapshot.metadata.index}, not newer than the stored ${this.storage.snapshot().metadata.index}`);
    }
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries);
      const last = rd.entries[rd.entries.length - 1]!;
      if (this.storage.lastIndex() !== last.index || this.storage.term(last.index) !== last.term) {
        env.checker.fail("logMatching", [this.id], last.term, last.index, `storage ends at ${this.storage.lastIndex()} after appending up to ${last.index}/t${last.term}`);
      }
      env.trace.event(now, this.id, EventCode.append, rd.entries[0]!.index, last.index, last.term, 0, () => `entries ${rd.entries[0]!.index}..${last.index} (last term ${last.term})`);
    }
    if (rd.hardState !== undefined && env.options.plantedBug !== "forgetHardState") {
      const hs = rd.hardState;
      env.checker.onPersistHardState(this.id, hs);
      this.storage.setHardState(hs);
      env.trace.event(now, this.id, EventCode.hardState, hs.term, hs.vote, hs.commit, 0, `term ${hs.term} vote ${hs.vote} commit ${hs.commit}`);
    }
  }

  private restoreStateMachine(rd: Ready): void {
    const snap = rd.snapshot!;
    this.sm = StateMachine.decode(snap);
    this.env.checker.onRestore(this.id, snap.metadata, this.sm);
    this.env.coverage.snapshotInstalled++;
    this.env.trace.event(this.env.queue.now, this.id, EventCode.snapshotRestore, snap.metadata.index, snap.metadata.term, 0, 0, `at ${snap.metadata.index}/t${snap.metadata.term}`);
  }

  private applyEntry(e: Ready["committedEntries"][number]): void {
    const { env } = this;
    const text = proposalOf(e);
    if (text !== undefined && !env.checker.isApplied(text)) env.coverage.proposalApplied++;
    const fp = env.checker.onApply(this.id, this.term, e, this.sm.appliedIndex);
    this.sm.apply(e);
    env.trace.event(env.queue.now, this.id, EventCode.apply, e.index, e.term, e.type === "conf" ? 2 : e.data.byteLength > 0 ? 1 : 0, 0, () => `${e.index} ${fp}`);
    if (e.type === "conf") env.onConfApplied(this, decodeConfChange(e.data), e.index);
  }

  private serveReads(): void {
    if (this.pendingReads.length === 0) return;
    const applied = this.sm.appliedIndex;
    const waiting: ReadState[] = [];
    for (const rs of this.pendingReads) {
      if (rs.index > applied) {
        waiting.push(rs);
        continue;
      }
      if (this.env.checker.onReadServed(this.id, rs.context, rs.index)) {
        this.env.coverage.readServed++;
        this.env.trace.event(this.env.queue.now, this.id, EventCode.readServed, rs.index, applied, 0, 0, `${rs.context} at read index ${rs.index} (applied ${applied})`);
      }
    }
    this.pendingReads = waiting;
  }

  private traceProposal(what: string, r: ProposeResult): void {
    const { env } = this;
    env.trace.event(env.queue.now, this.id, EventCode.propose, r.ok ? r.index : 0, r.ok ? r.term : 0, r.ok ? 1 : 0, 0, () =>
      r.ok ? `${what} accepted at ${r.index}/t${r.term}` : `${what} rejected: ${r.reason} (lead ${r.lead})`,
    );
  }
}

/** A copy of `s` without its last entry, if that entry is beyond the commit index (planted bug). */
function withoutLastEntry(s: MemoryStorage): MemoryStorage {
  const hs = s.initialState().hardState;
  const last = s.lastIndex();
  if (last <= hs.commit || last < s.firstIndex()) return s;
  const copy = new MemoryStorage();
  copy.applySnapshot(s.snapshot());
  copy.append(s.entries(s.firstIndex(), last, Number.MAX_SAFE_INTEGER));
  copy.setHardState(hs);
  return copy;
}

function cancel(t: Timer | undefined): undefined {
  if (t !== undefined) t.cancelled = true;
  return undefined;
}

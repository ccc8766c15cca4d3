/**
 * One simulated node: a RawNode, its disk (disk.ts: a MemoryStorage with a page cache) and its
 * state machine.
 *
 * The ready loop is split into two scheduled events so that a crash can land anywhere in it:
 *
 *   input (tick/step/propose/...) ──► handOut (ready() at the same virtual ms, checked;
 *        the multiraft host sends the leader-only messages now)
 *        ──► persist (after the write's latency: write, send the rest, apply, serve reads, advance())
 *
 * Two host models, chosen per schedule:
 *  - "multiraft" (src/multiraft/multiraft.ts, production): the leader-only messages (app,
 *    heartbeat, snap, timeoutNow) leave when the Ready is handed out, before its write; the others
 *    (votes, acknowledgements, ...) after the write. The core must then count a leader's own
 *    entries only once advance() reports them persisted.
 *  - "simple" (ready.ts read literally): every message leaves after the write.
 * The write is synced exactly when the Ready says `mustSync` (as multiraft does); an unsynced write
 * is lost by a crash (disk.ts). A synced write takes the disk latency, an unsynced one 0–1 ms, a
 * Ready with nothing to write none.
 *
 * Between handOut and persist the RawNode keeps taking steps and ticks (the core allows it), and
 * a crash in that window loses the handed-out Ready: nothing of it reaches storage, and only the
 * messages the host already sent leave. A crash drops the RawNode, the state machine, pending
 * reads and unsynced writes; a restart rebuilds all of them from the durable disk alone.
 *
 * With the core's `quiesce` knob, the node also runs the multiraft host's node liveness, the same
 * code (src/multiraft/node-liveness.ts): every tick a keep-alive to each peer it sent nothing
 * since the previous tick, and wake() for its quiesced group when the leader's node has been
 * silent (no message, no keep-alive) for more than electionTicks ticks.
 *
 * Host-contract checks (on unless a run turns them off to measure end-to-end detection): a vote
 * grant or an append acknowledgement leaves only once what it promises is durable, a leader's
 * commit index covers only entries durable on a quorum, and a leader commits by counting only
 * entries of its own term.
 */
import type { LogIndex, NodeId, Term } from "../../src/lib/ids.js";
import type { Random } from "../../src/lib/random.js";
import { NodeLiveness } from "../../src/multiraft/node-liveness.js";
import {
  DEFAULT_ELECTION_TICKS,
  decodeConfChange,
  MemoryStorage,
  RawNode,
  type ConfChange,
  type HardState,
  type Message,
  type ProposeResult,
  type RaftRole,
  type ReadState,
  type Ready,
  type Status,
} from "../../src/raft/index.js";
import type { Checker } from "./checker.js";
import type { HostModel, RaftKnobs } from "./schedule.js";
import type { Coverage } from "./coverage.js";
import { copyLog, SimDisk } from "./disk.js";
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
 *    acknowledged (an fsync that lied);
 *  - ignoreMustSync: never sync, so every write stays in the page cache until a crash loses it
 *    (a host that ignores Ready.mustSync).
 */
export type PlantedBug = "sendBeforePersist" | "forgetHardState" | "staleReads" | "lyingDisk" | "ignoreMustSync";

/** Raft, timing and host options shared by all nodes of a cluster. */
export interface NodeOptions {
  readonly tickMs: number;
  /** The core's knobs (electionTicks and heartbeatTicks, if absent, take the core's defaults). */
  readonly raft: RaftKnobs;
  /** Latency of a synced write, drawn uniformly from [minDiskMs, maxDiskMs]. */
  readonly minDiskMs: number;
  readonly maxDiskMs: number;
  /** When messages leave relative to the write (see the module comment). */
  readonly host: HostModel;
  /** Check the host contract directly (durable before acknowledged, the commit rule); see the module comment. */
  readonly contractChecks: boolean;
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
  /** Hands a node keep-alive to the network (quiescence only). */
  sendKeepAlive(from: NodeId, to: NodeId): void;
  /** The node applied a committed membership change. */
  onConfApplied(node: SimNode, cc: ConfChange, index: LogIndex): void;
  /** The node reported itself leader of `term` for the first time. */
  onLeader(node: SimNode, term: Term): void;
  /** The node sent a vote grant (after its write). */
  onVoteGranted(node: SimNode): void;
  /** Leader `node`'s commit index just moved (status `st`): it must be durable on a quorum of `st`'s voters. */
  checkCommitDurable(node: SimNode, st: Status): void;
}

interface InFlightReady {
  readonly rd: Ready;
  /** The messages still to send once the write completes. */
  readonly late: readonly Message[];
  readonly timer: Timer;
}

/** Message types only a leader sends; the multiraft host sends them before the write (src/multiraft EARLY_TYPES). */
export const EARLY_TYPES: ReadonlySet<Message["type"]> = new Set<Message["type"]>(["app", "heartbeat", "snap", "timeoutNow"]);

const ROLE_CODES: Record<RaftRole, number> = { follower: 1, preCandidate: 2, candidate: 3, leader: 4 };

/** One simulated node; see the module comment for its ready loop and crash semantics. */
export class SimNode {
  private raw: RawNode | undefined;
  private sm: StateMachine = StateMachine.empty();
  private readonly disk: SimDisk;
  private handOutTimer: Timer | undefined;
  private inFlight: InFlightReady | undefined;
  private tickTimer: Timer | undefined;
  private pendingReads: ReadState[] = [];
  /** The host's node liveness (quiescence only); volatile, rebuilt at every start. */
  private liveness: NodeLiveness | undefined;
  /** Whether the group was quiesced after the previous input (for coverage). */
  private wasQuiesced = false;
  /** Leader term of the previous hand-out (0 if it was not a leader's), for the append-only check. */
  private leaderTermAtHandOut: Term = 0;
  private lastIndexHandedOut: LogIndex = 0;
  /** Commit index as of the latest hand-out (or start), for the leader commit rule. */
  private commitHandedOut: LogIndex = 0;
  /** Role and term as of the latest Ready or status(). */
  role: RaftRole = "follower";
  term: Term = 0;
  incarnation = 0;
  decommissioned = false;

  constructor(
    readonly id: NodeId,
    storage: MemoryStorage,
    private readonly random: Random,
    private readonly env: NodeEnv,
  ) {
    this.disk = new SimDisk(storage);
  }

  /** The node's storage as the core reads it (durable state plus unsynced writes). */
  get storage(): MemoryStorage {
    return this.disk.storage;
  }

  /** Whether entry `i` of term `t` would survive a crash of this node now. */
  durablyHas(i: LogIndex, t: Term): boolean {
    return this.disk.durablyHas(i, t);
  }

  /** The term of entry `i` in the log the host can see (storage plus the Ready being written), if known. */
  visibleTerm(i: LogIndex): Term | undefined {
    const rd = this.inFlight?.rd;
    return new OverlayLogView(this.storage, rd?.snapshot, rd?.entries ?? []).termAt(i);
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
    this.commitHandedOut = st.commit;
    const { raft } = env.options;
    this.liveness = raft.quiesce === true ? new NodeLiveness(raft.electionTicks ?? DEFAULT_ELECTION_TICKS) : undefined;
    this.wasQuiesced = false;
    env.trace.event(env.queue.now, this.id, this.incarnation === 1 ? EventCode.start : EventCode.restart, hs.term, hs.commit, snap.metadata.index, this.storage.lastIndex(), () =>
      `from disk: term ${hs.term} vote ${hs.vote} commit ${hs.commit} snapshot ${snap.metadata.index} last ${this.storage.lastIndex()}`,
    );
    if (this.tickTimer === undefined) this.scheduleTick(this.random.int(env.options.tickMs));
  }

  /** Loses everything not durable. Returns whether a Ready was pending or in flight, or an unsynced write was lost. */
  crash(): boolean {
    if (this.raw === undefined) return false;
    const unpersisted = this.inFlight !== undefined || this.handOutTimer !== undefined;
    this.raw = undefined;
    this.liveness = undefined;
    this.handOutTimer = cancel(this.handOutTimer);
    if (this.inFlight !== undefined) this.inFlight.timer.cancelled = true;
    this.inFlight = undefined;
    this.pendingReads = [];
    this.sm = StateMachine.empty();
    this.role = "follower";
    const lost = this.disk.crash();
    if (lost > 0) this.env.coverage.unsyncedWriteLost++;
    if (this.env.options.plantedBug === "lyingDisk") this.disk.replace(withoutLastEntry(this.storage));
    const { env } = this;
    env.trace.event(env.queue.now, this.id, EventCode.crash, unpersisted ? 1 : 0, lost, 0, 0,
      `${unpersisted ? "with a Ready not yet persisted" : ""}${lost > 0 ? `${unpersisted ? "; " : ""}${lost} unsynced write(s) lost` : ""}`);
    return unpersisted || lost > 0;
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
    const raw = this.raw;
    if (raw === undefined) return false;
    this.liveness?.onHeard(m.from);
    // The window where a leader could count its own entries before they are durable: an
    // acknowledgement arrives while the leader's own write of entries is still in flight.
    const watch = m.type === "appResp" && this.role === "leader" && this.env.options.contractChecks && this.ownLogWritePending();
    const before = watch ? raw.status().commit : 0;
    const firstUnwritten = this.inFlight?.rd.entries[0]?.index;
    if (watch && !m.reject && firstUnwritten !== undefined && m.index >= firstUnwritten) this.env.coverage.ackBeforeLeaderWrite++;
    if (m.type === "appResp" && !m.reject && this.role === "leader" && m.index > this.commitHandedOut) this.noteOldTermAck(m.index);
    raw.step(m);
    if (watch) this.checkCommitDurable(before);
    this.afterInput();
    return true;
  }

  /** A node keep-alive from `from` arrived: the host counts it as a sign of life. */
  keepAliveFrom(from: NodeId): void {
    if (this.raw !== undefined) this.liveness?.onHeard(from);
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

  /** Starts an election now, as a host may (multiraft's campaign()). Returns whether the node is up. */
  campaign(): boolean {
    if (this.raw === undefined) return false;
    this.raw.campaign();
    this.env.trace.event(this.env.queue.now, this.id, EventCode.campaign, this.term, 0, 0, 0, `term ${this.term}`);
    this.afterInput();
    return true;
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
   * before it; the host writes the snapshot durably (an fsync, which also makes earlier unsynced
   * writes durable). Returns false if there is nothing new to snapshot (or an incoming snapshot is
   * being persisted).
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
    this.syncDisk();
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
      if (this.liveness !== undefined) this.tickLiveness(this.liveness, this.raw);
      this.raw.tick();
      this.afterInput();
    });
  }

  /** Node liveness at a tick, as multiraft's tick loop does it (see the module comment). */
  private tickLiveness(liveness: NodeLiveness, raw: RawNode): void {
    const { env } = this;
    const { keepAlive, fellSilent } = liveness.tick();
    for (const to of keepAlive) env.sendKeepAlive(this.id, to);
    const lead = raw.softState().lead;
    if (!raw.isQuiesced() || !fellSilent.includes(lead)) return;
    raw.wake();
    env.coverage.wokenBySilentLeader++;
    env.trace.event(env.queue.now, this.id, EventCode.wake, lead, liveness.silentTicks(lead), 0, 0, () => `leader ${lead} silent for ${liveness.silentTicks(lead)} ticks`);
  }

  private afterInput(): void {
    const raw = this.raw;
    if (raw === undefined) return;
    const quiesced = raw.isQuiesced();
    if (quiesced && !this.wasQuiesced) this.env.coverage.groupQuiesced++;
    this.wasQuiesced = quiesced;
    if (this.handOutTimer !== undefined || this.inFlight !== undefined) return;
    if (!raw.hasReady()) return;
    this.handOutTimer = this.env.queue.after(0, () => {
      this.handOutTimer = undefined;
      this.handOut();
    });
  }

  /** Takes a Ready, checks what it shows, sends what the host sends before the write, and schedules the write. */
  private handOut(): void {
    const raw = this.raw;
    if (raw === undefined || !raw.hasReady()) return;
    const rd = raw.ready();
    const view = new OverlayLogView(this.storage, rd.snapshot, rd.entries);
    this.checkReady(rd, view);
    const { options, queue } = this.env;
    const writes = rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined;
    const late = this.sendEarly(rd, writes);
    const latency = !writes ? 0 : this.syncs(rd) ? this.random.intBetween(options.minDiskMs, options.maxDiskMs) : this.random.int(2);
    this.inFlight = { rd, late, timer: queue.after(latency, () => this.persist()) };
  }

  /** Sends the messages the host sends at hand-out; returns the rest, to send after the write. */
  private sendEarly(rd: Ready, writes: boolean): readonly Message[] {
    const { options } = this.env;
    if (options.plantedBug === "sendBeforePersist") {
      for (const m of rd.messages) this.sendNow(m);
      return [];
    }
    if (options.host !== "multiraft" || rd.messages.length === 0) return rd.messages;
    const late: Message[] = [];
    let early = 0;
    for (const m of rd.messages) {
      if (!EARLY_TYPES.has(m.type)) late.push(m);
      else {
        this.sendNow(m);
        early++;
      }
    }
    if (early > 0 && writes) this.env.coverage.sentBeforeWrite++;
    return late;
  }

  /** Whether the host syncs this Ready's write: exactly when the core asks for it. */
  private syncs(rd: Ready): boolean {
    return rd.mustSync && this.env.options.plantedBug !== "ignoreMustSync";
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
    if (rd.hardState !== undefined) {
      const commit = rd.hardState.commit;
      // A commit made while leader of this term since the previous hand-out: by counting, so it must land on an entry of this term.
      if (this.env.options.contractChecks && this.role === "leader" && this.leaderTermAtHandOut === this.term && commit > this.commitHandedOut) {
        checker.onLeaderCommit(this.id, this.term, commit, view.termAt(commit));
      }
      checker.onCommit(this.id, rd.hardState.term, commit, view);
      this.commitHandedOut = commit;
    }
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

  /** Writes the Ready in flight, sends the rest of its messages, applies, serves reads, then advance(). */
  private persist(): void {
    const raw = this.raw;
    const inFlight = this.inFlight;
    if (raw === undefined || inFlight === undefined) return;
    this.inFlight = undefined;
    const { rd, late } = inFlight;
    const before = this.disk.durableHardState;
    this.write(rd);
    for (const m of late) {
      this.sendNow(m);
      if (m.type === "voteResp" && !m.reject) this.onVoteGrantSent(m, before);
    }
    if (rd.snapshot !== undefined) this.restoreStateMachine(rd);
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) this.pendingReads.push(rs);
    this.serveReads();
    // A leader whose own entries are only in the page cache must not count them (checked at once).
    const watch = this.role === "leader" && this.env.options.contractChecks && this.disk.logBuffered && !rd.committedEntries.some((e) => e.type === "conf");
    const commitBefore = watch ? raw.status().commit : 0;
    raw.advance();
    if (watch) this.checkCommitDurable(commitBefore);
    this.afterInput();
  }

  /** Coverage: an acknowledgement above the commit index at an entry of an older term (the setting of Figure 8). */
  private noteOldTermAck(index: LogIndex): void {
    const s = this.storage;
    if (index < s.firstIndex() || index > s.lastIndex()) return;
    if (s.term(index) < this.term) this.env.coverage.oldTermAckAboveCommit++;
  }

  /** Whether a write of this node's own log is in flight or only buffered. */
  private ownLogWritePending(): boolean {
    return (this.inFlight !== undefined && this.inFlight.rd.entries.length > 0) || this.disk.logBuffered;
  }

  private checkCommitDurable(before: LogIndex): void {
    const st = this.raw?.status();
    if (st === undefined || st.role !== "leader" || st.commit <= before) return;
    this.env.checkCommitDurable(this, st);
  }

  private onVoteGrantSent(m: Message, durableBefore: HardState): void {
    // The window of a vote-only hard-state change: the term was already durable, without a vote.
    if (durableBefore.term === m.term && durableBefore.vote === 0) this.env.coverage.voteGrantInPersistedTerm++;
    this.env.onVoteGranted(this);
  }

  /** Sends `m`, first checking that what it acknowledges is durable (the host contract, ready.ts step 2). */
  private sendNow(m: Message): void {
    if (this.env.options.contractChecks && !m.reject) {
      if (m.type === "voteResp") this.env.checker.onVoteGrantSent(this.id, m.to, m.term, this.disk.durableHardState);
      else if (m.type === "appResp" && m.index > 0) this.env.checker.onAckSent(this.id, m.to, m.term, m.index, this.disk.acknowledgeable(m.index), this.disk.durableHardState.term);
    }
    this.liveness?.onSent(m.to);
    this.env.send(m);
  }

  private write(rd: Ready): void {
    const { env } = this;
    const now = env.queue.now;
    const hs = env.options.plantedBug === "forgetHardState" ? undefined : rd.hardState;
    const sync = this.syncs(rd);
    if (!sync && (hs !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined)) env.coverage.unsyncedWrite++;
    const durableBefore = this.disk.durableHardState;
    const snapshotOk = this.disk.write({ snapshot: rd.snapshot, entries: rd.entries, hardState: hs }, sync);
    if (!snapshotOk) {
      env.checker.fail("snapshotConsistency", [this.id], rd.snapshot!.metadata.term, rd.snapshot!.metadata.index,
        `core handed out snapshot ${rd.snapshot!.metadata.index}, not newer than the stored ${this.storage.snapshot().metadata.index}`);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      if (this.storage.lastIndex() !== last.index || this.storage.term(last.index) !== last.term) {
        env.checker.fail("logMatching", [this.id], last.term, last.index, `storage ends at ${this.storage.lastIndex()} after appending up to ${last.index}/t${last.term}`);
      }
      env.trace.event(now, this.id, EventCode.append, rd.entries[0]!.index, last.index, last.term, sync ? 1 : 0, () =>
        `entries ${rd.entries[0]!.index}..${last.index} (last term ${last.term})${sync ? "" : " unsynced"}`);
    }
    if (hs !== undefined) {
      env.trace.event(now, this.id, EventCode.hardState, hs.term, hs.vote, hs.commit, sync ? 1 : 0, `term ${hs.term} vote ${hs.vote} commit ${hs.commit}${sync ? "" : " unsynced"}`);
    }
    this.noteDurable(durableBefore);
  }

  /** Makes every write so far durable (the host's snapshot write). */
  private syncDisk(): void {
    const before = this.disk.durableHardState;
    this.disk.sync();
    this.noteDurable(before);
  }

  /** Tells the checker about a newly durable hard state (the persisted term and commit must never go back). */
  private noteDurable(before: HardState): void {
    const after = this.disk.durableHardState;
    if (after !== before) this.env.checker.onPersistHardState(this.id, after);
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
  return copyLog(s, last - 1);
}

function cancel(t: Timer | undefined): undefined {
  if (t !== undefined) t.cancelled = true;
  return undefined;
}

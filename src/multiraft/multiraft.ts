/**
 * The multi-raft host: runs every Raft group of one node on one tick loop and one ready loop.
 *
 * A round collects the Ready of every group that has one, writes all of their hard states,
 * entries and snapshots in ONE batch with at most ONE fsync, and only then sends the messages
 * that depend on it and applies committed entries. Leaders' appends and heartbeats leave before
 * the fsync (thesis §10.2.1): the core counts a leader's own entries only once they are
 * persisted, so this never acknowledges anything that is not durable on a quorum. Messages of a
 * round are grouped per peer and handed to the transport as one batch each.
 *
 * ## Quiescence and node liveness
 *
 * With the core's `quiesce` option (production turns it on), an idle group falls silent: its
 * leader stops heartbeating once every replica holds the whole committed log, and its followers
 * stop their election timers (raft/raft.ts, "quiescence"). The tick loop ticks only the groups
 * that are awake, so 10,000 idle replicas cost nothing per tick; a group joins the awake set again
 * as soon as anything reaches it (a message, a proposal, a read), because every input marks it
 * dirty and each round re-checks the groups it looked at.
 *
 * A quiesced follower can no longer notice a dead leader, so liveness moves from the groups to
 * the nodes. Every tick, each peer that was sent nothing since the previous tick gets a keep-alive
 * (an empty transport send), so a live node is heard from at least once per tick whatever its
 * groups do. Any frame from a peer counts as a sign of life. A peer silent for more than
 * electionTicks ticks has fallen silent: every quiesced group here whose leader it is gets
 * `wake()`, and campaigns after its usual election timeout. Failover of an idle group therefore
 * takes the liveness timeout plus an election timeout (about 1 s + 1–2 s with the defaults),
 * against one election timeout for a group that was busy. The peers are the nodes this node has
 * exchanged messages with since it started.
 */
import { assert } from "../lib/assert.js";
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { GroupId, LogIndex, NodeId, Term } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import {
  DEFAULT_ELECTION_TICKS,
  RawNode,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type RaftConfig,
  type Ready,
  type Snapshot,
  type SoftState,
  type Status,
} from "../raft/index.js";
import { NotLeaderError, ProposalDroppedError, ProposalTimeoutError, type ProposalError } from "./errors.js";
import { NodeLiveness } from "./node-liveness.js";
import type { GroupMessage, GroupStorage, GroupWrite, RaftStore, Transport } from "./ports.js";

/** The replicated state machine of one group, driven by the host. */
export interface GroupStateMachine {
  /** Applies committed entries in log order (no-ops and conf entries included; skip what you do not need). */
  apply(entries: readonly Entry[]): void;
  /** Replaces the whole state with a snapshot's (called before any entry after it is applied). */
  restore(snapshot: Snapshot): void;
  /** The state as of the last applied entry, for a snapshot. */
  snapshotData(): Uint8Array;
  /** Leadership or role changed. */
  onSoftState?(state: SoftState): void;
}

export interface MultiRaftOptions {
  readonly nodeId: NodeId;
  readonly store: RaftStore;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** Milliseconds per Raft tick. Default 100. */
  readonly tickIntervalMs?: number;
  /** Raft options shared by every group (id, storage and random are filled in per group). */
  readonly raft?: Omit<Partial<RaftConfig>, "id" | "storage" | "random" | "logger">;
  /** Called on an unrecoverable error (a failed write): the node must stop. */
  readonly onFatal: (error: Error) => void;
}

interface PendingProposal {
  readonly term: Term;
  resolve(index: LogIndex): void;
  reject(error: ProposalError): void;
  readonly timer: TimerHandle;
}

interface PendingRead {
  readonly context: string;
  resolve(index: LogIndex): void;
  reject(error: ProposalError): void;
  readonly timer: TimerHandle;
  index: LogIndex;
  /** Set once the read point is known; resolved once applied reaches it. */
  ready: boolean;
}

/** Per-group host state. */
class Group {
  readonly proposals = new Map<LogIndex, PendingProposal>();
  readonly reads = new Map<string, PendingRead>();
  soft: SoftState = { lead: 0, role: "follower" };
  applied: LogIndex = 0;
  removed = false;
  /** Log ranges being loaded from disk ("lo-hi"), so a miss is loaded once. */
  readonly loading = new Set<string>();

  constructor(
    readonly id: GroupId,
    readonly node: RawNode,
    readonly storage: GroupStorage,
    readonly sm: GroupStateMachine,
  ) {}
}

/** Message types only a leader sends; they never depend on this round's persistence (see above). */
const EARLY_TYPES = new Set<Message["type"]>(["app", "heartbeat", "snap", "timeoutNow"]);

/**
 * Core settings one group may hold apart from the host's: a group whose followers' state is read
 * (the controller's metadata) keeps commits eager while the partitions propagate them lazily.
 */
export type GroupRaftOverrides = Pick<RaftConfig, "lazyCommit">;

export class MultiRaft {
  private readonly groups = new Map<GroupId, Group>();
  /** Groups that may have a Ready: touched since they were last checked. Idle groups cost nothing. */
  private dirty = new Set<Group>();
  /** Groups that are not quiesced: the ones the tick loop ticks. Updated for each group a round looks at. */
  private readonly awake = new Set<Group>();
  /** Keep-alives and silent peers; only when groups quiesce (the core's `quiesce` option). */
  private readonly liveness: NodeLiveness | undefined;
  private readonly tickIntervalMs: number;
  private tickTimer: TimerHandle | undefined;
  private roundTimer: TimerHandle | undefined;
  private roundRunning = false;
  private roundAgain = false;
  /** The latest round, so that close() can wait for its write to finish. */
  private roundDone: Promise<void> = Promise.resolve();
  private closed = false;
  private readSeq = 0;
  private readonly log: Logger;

  constructor(private readonly opts: MultiRaftOptions) {
    this.tickIntervalMs = opts.tickIntervalMs ?? 100;
    assert(this.tickIntervalMs > 0, "tickIntervalMs must be positive");
    if (opts.raft?.quiesce === true) this.liveness = new NodeLiveness(opts.raft.electionTicks ?? DEFAULT_ELECTION_TICKS);
    this.log = opts.logger.child({ component: "multiraft" });
    opts.transport.onReceive((from, msgs) => this.receive(from, msgs));
    opts.transport.onUnreachable((to, groups) => {
      for (const id of groups) this.touch(id)?.node.reportUnreachable(to);
      this.scheduleRound();
    });
    opts.transport.onSnapshotStatus((to, group, ok) => {
      this.touch(group)?.node.reportSnapshot(to, ok);
      this.scheduleRound();
    });
  }

  /** Starts the tick loop. */
  start(): void {
    assert(this.tickTimer === undefined, "MultiRaft started twice");
    const loop = (): void => {
      if (this.closed) return;
      for (const g of this.awake) {
        g.node.tick();
        this.dirty.add(g);
      }
      if (this.liveness !== undefined) this.tickLiveness(this.liveness);
      this.scheduleRound();
      this.tickTimer = this.opts.clock.setTimer(this.tickIntervalMs, loop);
    };
    this.tickTimer = this.opts.clock.setTimer(this.tickIntervalMs, loop);
  }

  /** Hosts a replica of `group`. Its state comes from the store (empty for a new replica). */
  addGroup(group: GroupId, sm: GroupStateMachine, raft: GroupRaftOverrides = {}): void {
    assert(!this.groups.has(group), () => `group ${group} is already hosted`);
    const storage = this.opts.store.storage(group);
    // Read the snapshot once, before the core: stores may hand large snapshot data out only once.
    const snap = storage.snapshot();
    const node = new RawNode({
      ...this.opts.raft,
      ...raft,
      id: this.opts.nodeId,
      applied: snap.metadata.index,
      storage,
      random: this.opts.random.fork(),
      logger: this.opts.logger.child({ group }),
    });
    const g = new Group(group, node, storage, sm);
    // The state machine starts from the stored snapshot; later entries are re-delivered.
    if (snap.metadata.index > 0) sm.restore(snap);
    g.applied = snap.metadata.index;
    this.groups.set(group, g);
    this.awake.add(g);
    this.dirty.add(g);
    this.scheduleRound();
  }

  /** The group, marked as possibly having a Ready. */
  private touch(group: GroupId): Group | undefined {
    const g = this.groups.get(group);
    if (g !== undefined) this.dirty.add(g);
    return g;
  }

  /** Stops hosting `group` (its stored data stays until dropped from the store). */
  removeGroup(group: GroupId): void {
    const g = this.groups.get(group);
    if (g === undefined) return;
    g.removed = true;
    this.groups.delete(group);
    this.dirty.delete(g);
    this.awake.delete(g);
    this.failAll(g, () => new ProposalDroppedError(group, "the replica was removed from this node"));
  }

  hasGroup(group: GroupId): boolean {
    return this.groups.has(group);
  }

  groupIds(): GroupId[] {
    return [...this.groups.keys()];
  }

  status(group: GroupId): Status | undefined {
    return this.groups.get(group)?.node.status();
  }

  /** How many groups the tick loop ticks: those not quiesced (for status pages and tests). */
  awakeCount(): number {
    return this.awake.size;
  }

  /** The leader of `group` as this node knows it (0 if unknown). */
  leader(group: GroupId): NodeId {
    return this.groups.get(group)?.soft.lead ?? 0;
  }

  /**
   * Proposes `data` to `group` on this node, which must be its leader. Resolves with the entry's
   * index once it is committed (stored on a quorum, fsynced) and applied here; rejects with
   * {@link NotLeaderError} (with the known leader), {@link ProposalDroppedError} if a leader
   * change discarded it, or {@link ProposalTimeoutError}.
   */
  propose(group: GroupId, data: Uint8Array, timeoutMs: number): Promise<LogIndex> {
    return this.proposeWith(group, timeoutMs, (node) => node.propose(data));
  }

  /** Proposes a single-server membership change; resolves once it is committed and applied here. */
  proposeConfChange(group: GroupId, cc: ConfChange, timeoutMs: number): Promise<LogIndex> {
    return this.proposeWith(group, timeoutMs, (node) => node.proposeConfChange(cc));
  }

  private proposeWith(group: GroupId, timeoutMs: number, fn: (node: RawNode) => ReturnType<RawNode["propose"]>): Promise<LogIndex> {
    const g = this.touch(group);
    if (g === undefined) return Promise.reject(new NotLeaderError(group, 0, "this node hosts no replica of the group"));
    const result = fn(g.node);
    if (!result.ok) return Promise.reject(new NotLeaderError(group, result.lead, result.reason));
    this.scheduleRound();
    return new Promise<LogIndex>((resolve, reject) => {
      const timer = this.opts.clock.setTimer(timeoutMs, () => {
        if (g.proposals.get(result.index)?.timer === timer) g.proposals.delete(result.index);
        reject(new ProposalTimeoutError(group, timeoutMs));
      });
      const prev = g.proposals.get(result.index);
      // A newer proposal at the same index means the older entry was overwritten.
      if (prev !== undefined) this.settleProposal(prev, undefined, () => new ProposalDroppedError(group, "overwritten by a newer leader's entry"));
      g.proposals.set(result.index, { term: result.term, resolve, reject, timer });
    });
  }

  /**
   * A linearizable read point (ReadIndex): resolves with an index once this node has applied up to
   * it, so that reading local state then is linearizable.
   */
  readIndex(group: GroupId, timeoutMs: number): Promise<LogIndex> {
    const g = this.touch(group);
    if (g === undefined) return Promise.reject(new NotLeaderError(group, 0, "this node hosts no replica of the group"));
    const context = `r${++this.readSeq}`;
    if (!g.node.readIndex(context)) return Promise.reject(new NotLeaderError(group, 0, "no leader is known"));
    this.scheduleRound();
    return new Promise<LogIndex>((resolve, reject) => {
      const timer = this.opts.clock.setTimer(timeoutMs, () => {
        g.reads.delete(context);
        reject(new ProposalTimeoutError(group, timeoutMs));
      });
      g.reads.set(context, { context, resolve, reject, timer, index: 0, ready: false });
    });
  }

  transferLeadership(group: GroupId, to: NodeId): void {
    this.touch(group)?.node.transferLeadership(to);
    this.scheduleRound();
  }

  /** Campaigns for `group` now (used to speed up the first election of a new group). */
  campaign(group: GroupId): void {
    this.touch(group)?.node.campaign();
    this.scheduleRound();
  }

  /**
   * Compacts `group`'s log up to `index` (which must be applied here), recording a snapshot of the
   * state machine as of `index`: its membership then and its data. The state machine decides what
   * and when (retention); every replica compacts on its own. Returns false if there is nothing to do.
   */
  async compactTo(group: GroupId, index: LogIndex, confState: ConfState, data: Uint8Array): Promise<boolean> {
    const g = this.groups.get(group);
    if (g === undefined) return false;
    assert(index <= g.applied, () => `group ${group}: compaction point ${index} is beyond the applied index ${g.applied}`);
    if (index <= g.storage.firstIndex() - 1) return false;
    const snapshot: Snapshot = { metadata: { index, term: g.storage.term(index), confState }, data };
    await this.opts.store.compact(group, snapshot);
    return true;
  }

  // ---------------------------------------------------------------- the ready loop

  private receive(from: NodeId, msgs: readonly GroupMessage[]): void {
    if (this.closed) return;
    if (this.liveness?.onHeard(from) === true) this.log.info({ peer: from }, "peer is heard from again");
    if (msgs.length === 0) return; // a keep-alive
    for (const { group, message } of msgs) {
      if (message.from !== from) continue;
      this.touch(group)?.node.step(message);
    }
    this.scheduleRound();
  }

  /** Runs a round soon (once per event-loop turn at most). */
  scheduleRound(): void {
    if (this.closed) return;
    if (this.roundRunning) {
      this.roundAgain = true;
      return;
    }
    if (this.roundTimer !== undefined) return;
    this.roundTimer = this.opts.clock.setTimer(0, () => {
      this.roundTimer = undefined;
      this.roundDone = this.runRound();
    });
  }

  private async runRound(): Promise<void> {
    if (this.closed || this.roundRunning) return;
    this.roundRunning = true;
    try {
      const candidates = this.dirty;
      this.dirty = new Set();
      const batch: { g: Group; rd: Ready }[] = [];
      for (const g of candidates) if (!g.removed && g.node.hasReady()) batch.push({ g, rd: g.node.ready() });
      if (batch.length > 0) await this.processBatch(batch);
      for (const g of candidates) {
        this.loadMisses(g);
        this.trackQuiescence(g);
      }
      // After advance() a group may have more to do (entries committed by its own persistence).
      // A Ready that carried nothing was waiting for a load; the load's completion touches it.
      for (const { g, rd } of batch) if (!g.removed && !isEmptyReady(rd)) this.dirty.add(g);
    } catch (e) {
      this.opts.onFatal(e instanceof Error ? e : new Error(String(e)));
      return;
    } finally {
      this.roundRunning = false;
    }
    if (this.roundAgain || this.dirty.size > 0) {
      this.roundAgain = false;
      this.scheduleRound();
    }
  }

  private async processBatch(batch: readonly { g: Group; rd: Ready }[]): Promise<void> {
    const writes: GroupWrite[] = [];
    let sync = false;
    const early = new Map<NodeId, GroupMessage[]>();
    const late = new Map<NodeId, GroupMessage[]>();
    for (const { g, rd } of batch) {
      if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
        writes.push({ group: g.id, snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
      }
      sync ||= rd.mustSync;
      for (const m of rd.messages) addTo(EARLY_TYPES.has(m.type) ? early : late, m.to, { group: g.id, message: m });
    }
    this.sendAll(early);
    if (writes.length > 0) await this.opts.store.write(writes, sync);
    this.sendAll(late);
    for (const { g, rd } of batch) {
      if (g.removed) continue;
      this.applyReady(g, rd);
      g.node.advance();
    }
  }

  private sendAll(perPeer: Map<NodeId, GroupMessage[]>): void {
    for (const [to, msgs] of perPeer) {
      this.opts.transport.send(to, msgs);
      this.liveness?.onSent(to);
    }
  }

  private applyReady(g: Group, rd: Ready): void {
    if (rd.softState !== undefined) this.onSoftState(g, rd.softState);
    if (rd.snapshot !== undefined) {
      g.sm.restore(rd.snapshot);
      g.applied = rd.snapshot.metadata.index;
    }
    if (rd.committedEntries.length > 0) {
      g.sm.apply(rd.committedEntries);
      for (const e of rd.committedEntries) this.settleAt(g, e);
      g.applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
    }
    for (const rs of rd.readStates) {
      const read = g.reads.get(rs.context);
      if (read === undefined) continue;
      read.index = rs.index;
      read.ready = true;
    }
    this.resolveReads(g);
  }

  private onSoftState(g: Group, soft: SoftState): void {
    const wasLeader = g.soft.role === "leader";
    g.soft = soft;
    g.sm.onSoftState?.(soft);
    if (wasLeader && soft.role !== "leader") {
      // Uncommitted proposals may still commit under the next leader; they settle when their
      // index is applied (by term comparison) or time out. Reads must be retried on the leader.
      for (const read of g.reads.values()) if (!read.ready) this.settleRead(g, read, undefined, new NotLeaderError(g.id, soft.lead, "leadership changed"));
    }
  }

  /** Resolves the proposal waiting at `e.index` if `e` is its entry, rejects it if overwritten. */
  private settleAt(g: Group, e: Entry): void {
    const p = g.proposals.get(e.index);
    if (p === undefined) return;
    g.proposals.delete(e.index);
    if (p.term === e.term) this.settleProposal(p, e.index, undefined);
    else this.settleProposal(p, undefined, () => new ProposalDroppedError(g.id, "a leader change replaced the entry before it committed"));
  }

  private settleProposal(p: PendingProposal, index: LogIndex | undefined, error: (() => ProposalError) | undefined): void {
    p.timer.cancel();
    if (error !== undefined) p.reject(error());
    else p.resolve(index!);
  }

  private resolveReads(g: Group): void {
    for (const read of g.reads.values()) {
      if (read.ready && read.index <= g.applied) this.settleRead(g, read, read.index, undefined);
    }
  }

  private settleRead(g: Group, read: PendingRead, index: LogIndex | undefined, error: ProposalError | undefined): void {
    g.reads.delete(read.context);
    read.timer.cancel();
    if (error !== undefined) read.reject(error);
    else read.resolve(index!);
  }

  private loadMisses(g: Group): void {
    for (const { lo, hi } of g.storage.takeMisses()) {
      const key = `${lo}-${hi}`;
      if (g.loading.has(key)) continue;
      g.loading.add(key);
      this.opts.store.load(g.id, lo, hi).then(
        () => {
          g.loading.delete(key);
          this.touch(g.id);
          this.scheduleRound();
        },
        (e: unknown) => {
          // A range that cannot be read (corruption) must stop the node, never be served around.
          g.loading.delete(key);
          this.opts.onFatal(new Error(`group ${g.id}: cannot load log range [${lo}, ${hi}): ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
        },
      );
    }
  }

  // ---------------------------------------------------------------- quiescence and node liveness

  /** Keeps the awake set in step with the core: quiesced groups are not ticked. */
  private trackQuiescence(g: Group): void {
    if (g.removed || g.node.isQuiesced()) this.awake.delete(g);
    else this.awake.add(g);
  }

  /**
   * Once per tick: a keep-alive to every peer that was sent nothing since the last tick, and
   * wake() for the groups led by a peer that has just been silent for more than electionTicks.
   */
  private tickLiveness(liveness: NodeLiveness): void {
    const { keepAlive, fellSilent } = liveness.tick();
    for (const id of keepAlive) this.opts.transport.send(id, []);
    for (const id of fellSilent) this.wakeGroupsLedBy(id, liveness.silentTicks(id));
  }

  /**
   * Wakes every quiesced group here whose leader is `lead`, a silent peer: each campaigns after its
   * election timeout unless its leader speaks first. A scan of all groups, once per silent peer.
   */
  private wakeGroupsLedBy(lead: NodeId, silentTicks: number): void {
    let woken = 0;
    for (const g of this.groups.values()) {
      if (!g.node.isQuiesced() || g.node.softState().lead !== lead) continue;
      g.node.wake();
      this.dirty.add(g);
      woken++;
    }
    this.log.warn({ peer: lead, silentTicks, woken }, "peer fell silent: woke the quiesced groups it leads");
  }

  private failAll(g: Group, error: () => ProposalError): void {
    for (const p of g.proposals.values()) this.settleProposal(p, undefined, error);
    g.proposals.clear();
    for (const r of [...g.reads.values()]) this.settleRead(g, r, undefined, error());
  }

  /** Stops ticking and fails everything pending. The store and transport are closed by their owner. */
  async close(): Promise<void> {
    this.closed = true;
    this.tickTimer?.cancel();
    this.roundTimer?.cancel();
    await this.roundDone;
    for (const g of this.groups.values()) this.failAll(g, () => new ProposalDroppedError(g.id, "the node is shutting down"));
  }
}

function isEmptyReady(rd: Ready): boolean {
  return (
    rd.messages.length === 0 &&
    rd.entries.length === 0 &&
    rd.committedEntries.length === 0 &&
    rd.readStates.length === 0 &&
    rd.hardState === undefined &&
    rd.snapshot === undefined &&
    rd.softState === undefined
  );
}

function addTo(map: Map<NodeId, GroupMessage[]>, to: NodeId, gm: GroupMessage): void {
  const list = map.get(to);
  if (list === undefined) map.set(to, [gm]);
  else list.push(gm);
}

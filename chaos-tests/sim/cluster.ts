/**
 * A whole Raft group in one process on one virtual clock: nodes, network, checker, trace and
 * coverage, all driven by one seed. Every random stream is forked from that seed in a fixed order
 * (network first, then each node as it is created), so a run replays exactly.
 */
import type { LogIndex, NodeId, Term } from "../../src/lib/ids.js";
import { SeededRandom, type Random } from "../../src/lib/random.js";
import { MemoryStorage, type ConfChange, type ConfState, type Message, type Status } from "../../src/raft/index.js";
import { Checker } from "./checker.js";
import { emptyCoverage, type Coverage } from "./coverage.js";
import { EventQueue } from "./event-queue.js";
import { Network, type LossReason, type NetworkOptions } from "./network.js";
import { SimNode, type NodeOptions } from "./node.js";
import { EventCode, Trace } from "./trace.js";

/** Everything that shapes a simulated cluster besides the schedule. */
export interface ClusterOptions extends NodeOptions, NetworkOptions {
  /** Initial voters (ids 1..size). */
  readonly size: number;
  readonly seed: number;
  /** Keep readable trace lines (slower; for replays and --verbose). */
  readonly record: boolean;
  /** How long a removed node keeps running after its removal is applied somewhere. */
  readonly decommissionGraceMs: number;
}

/** Defaults: 10 ms ticks, the core's own defaults for its knobs (election timeout 10 ticks = 100–200 ms). */
export const DEFAULT_WORLD: Omit<ClusterOptions, "size" | "seed" | "record"> = {
  tickMs: 10,
  raft: {},
  minDiskMs: 1,
  maxDiskMs: 4,
  host: "multiraft",
  contractChecks: true,
  minLatencyMs: 1,
  maxLatencyMs: 6,
  decommissionGraceMs: 50,
};

/** Upper bound on node processes that are not decommissioned (members plus joiners not yet added). */
export const MAX_PROCESSES = 9;

/** One simulated Raft group; see the module comment. */
export class Cluster {
  readonly queue = new EventQueue();
  readonly trace: Trace;
  readonly checker = new Checker();
  readonly coverage: Coverage = emptyCoverage();
  readonly network: Network;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly random: Random;
  private nextId: NodeId;
  private readonly appliedChanges = new Set<string>();
  /** Leaders whose own removal was accepted, for coverage. */
  readonly leaderRemovals = new Set<NodeId>();
  /** Pending leadership transfer targets, for coverage. */
  readonly transferTargets = new Map<NodeId, Term>();
  /** Armed by a voteCrash step: the next node to grant a vote crashes right after, and restarts this many ms later. */
  private voteCrashRestartMs: number | undefined;

  constructor(readonly opts: ClusterOptions) {
    this.trace = new Trace(opts.record);
    this.random = new SeededRandom(opts.seed);
    this.checker.now = () => this.queue.now;
    this.network = new Network(this.queue, this.random.fork(), this.trace, this.coverage, {
      deliver: (m) => this.deliver(m),
      undeliverable: (m, reason) => this.undeliverable(m, reason),
      keepAlive: (from, to) => this.nodes.get(to)?.keepAliveFrom(from),
    }, opts);
    const voters = Array.from({ length: opts.size }, (_, i) => i + 1);
    for (const id of voters) {
      const storage = MemoryStorage.bootstrap(voters);
      this.checker.onBootstrap(storage.snapshot().metadata);
      this.addProcess(id, storage);
    }
    this.nextId = opts.size + 1;
    if (opts.host === "simple") this.coverage.hostSimple++;
    else this.coverage.hostMultiraft++;
  }

  /** Arms a one-shot trigger: the next node to send a vote grant crashes right after it, and restarts `restartMs` later. */
  armVoteCrash(restartMs: number): void {
    this.voteCrashRestartMs = restartMs;
  }

  /** Disarms the vote-crash trigger (the liveness phase runs without faults). */
  disarmVoteCrash(): void {
    this.voteCrashRestartMs = undefined;
  }

  /** Removes all partitions and calms the weather. */
  heal(): void {
    this.network.heal();
  }

  /** Runs the virtual clock forward by `ms`. */
  runFor(ms: number): void {
    this.queue.runUntil(this.queue.now + ms);
  }

  /** Nodes not decommissioned, in id order. */
  processes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.decommissioned);
  }

  /** Running nodes, in id order. */
  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** Crashed nodes that may be restarted, in id order. */
  crashed(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.alive && !n.decommissioned);
  }

  /** The running leader with the highest term, as of the latest status() or Ready. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.alive && n.role === "leader" && (best === undefined || n.term > best.term)) best = n;
    }
    return best;
  }

  /** The membership as the leader sees it (undefined without a leader). */
  membership(): ConfState | undefined {
    return this.leader()?.status()?.confState;
  }

  /** Starts a new node with a never-used id (to be added as a learner) from empty storage; it learns the group from a snapshot. */
  spawn(): SimNode {
    const id = this.nextId++;
    return this.addProcess(id, new MemoryStorage());
  }

  /** Reserves the id the next {@link spawn} will use. */
  peekNextId(): NodeId {
    return this.nextId;
  }

  private addProcess(id: NodeId, storage: MemoryStorage): SimNode {
    const node = new SimNode(id, storage, this.random.fork(), {
      queue: this.queue,
      trace: this.trace,
      checker: this.checker,
      coverage: this.coverage,
      options: this.opts,
      send: (m) => this.send(m),
      sendKeepAlive: (from, to) => this.network.sendKeepAlive(from, to),
      onConfApplied: (n, cc, index) => this.onConfApplied(n, cc, index),
      onLeader: (n, term) => this.onLeader(n, term),
      onVoteGranted: (n) => this.onVoteGranted(n),
      checkCommitDurable: (n, st) => this.checkCommitDurable(n, st),
    });
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  /**
   * The per-step checks: refreshes every running node's status (term, vote and commit must not go
   * back; a leader is a leader of its term) and checks every quiescent leader's log against what is
   * known committed (leaders with a Ready pending are checked when they hand it out).
   */
  checkStep(): void {
    for (const n of this.nodes.values()) {
      const st = n.status();
      if (st === undefined) continue;
      this.checker.onMemHardState(n.id, { term: st.term, vote: st.vote, commit: st.commit });
      if (st.role !== "leader") continue;
      this.checker.onLeader(n.id, st.term);
      const log = n.quiescentLog();
      if (log !== undefined) this.checker.checkLeader(n.id, st.term, log, true);
    }
  }

  private send(m: Message): void {
    if (m.type === "snap") this.coverage.snapshotSent++;
    this.network.send(m);
  }

  private deliver(m: Message): boolean {
    const node = this.nodes.get(m.to);
    if (node === undefined || !node.step(m)) return false;
    if (m.type === "snap") this.nodes.get(m.from)?.reportSnapshot(m.to, true);
    return true;
  }

  private undeliverable(m: Message, reason: LossReason): void {
    const sender = this.nodes.get(m.from);
    if (sender === undefined || !sender.alive) return;
    if (m.type === "snap") sender.reportSnapshot(m.to, false);
    else if (m.type === "app") sender.reportUnreachable(m.to);
    void reason;
  }

  private onLeader(node: SimNode, term: Term): void {
    this.coverage.leaderElected++;
    const t = this.transferTargets.get(node.id);
    if (t !== undefined && term > t) {
      this.coverage.transferCompleted++;
      this.transferTargets.delete(node.id);
    }
  }

  private onVoteGranted(node: SimNode): void {
    const restartMs = this.voteCrashRestartMs;
    if (restartMs === undefined) return;
    this.voteCrashRestartMs = undefined;
    // Right after the grant has left (the rest of this Ready is processed first), before anything else happens.
    this.queue.after(0, () => {
      if (!node.alive) return;
      if (node.crash()) this.coverage.crashWithUnpersistedState++;
      this.coverage.crash++;
      this.coverage.crashAfterVoteGrant++;
      this.queue.after(restartMs, () => {
        if (node.alive || node.decommissioned) return;
        node.start();
        this.coverage.restart++;
      });
    });
  }

  /**
   * A leader's commit index just moved to `st.commit` (within one input, so under the membership
   * `st` shows): the entry there must be durable on a quorum of its voters.
   */
  private checkCommitDurable(leader: SimNode, st: Status): void {
    const commit = st.commit;
    const term = leader.visibleTerm(commit);
    if (term === undefined) return;
    const durableOn: NodeId[] = [];
    for (const id of st.confState.voters) if (this.nodes.get(id)?.durablyHas(commit, term) === true) durableOn.push(id);
    this.checker.onCommitDurability(leader.id, st.term, commit, durableOn, st.confState.voters);
  }

  private onConfApplied(node: SimNode, cc: ConfChange, index: LogIndex): void {
    const key = `${index}:${cc.type}:${cc.nodeId}`;
    if (this.appliedChanges.has(key)) return;
    this.appliedChanges.add(key);
    this.trace.event(this.queue.now, node.id, EventCode.confChange, index, cc.nodeId, cc.type === "addVoter" ? 1 : cc.type === "addLearner" ? 2 : 3, 0, `${cc.type}(${cc.nodeId}) at ${index} applied first here`);
    if (cc.type === "addLearner") this.coverage.learnerAdded++;
    else if (cc.type === "addVoter") this.coverage.learnerPromoted++;
    else {
      this.coverage.nodeRemoved++;
      if (this.leaderRemovals.has(cc.nodeId)) this.coverage.leaderRemoved++;
      const removed = this.nodes.get(cc.nodeId);
      // A removed node shuts itself down shortly after; until then it may still talk.
      if (removed !== undefined) this.queue.after(this.opts.decommissionGraceMs, () => removed.decommission());
    }
  }
}

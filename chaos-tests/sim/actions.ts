/**
 * Carries out schedule steps against a cluster. Each step resolves its targets against the
 * cluster as it is now (see schedule.ts) and records in the coverage counters what actually
 * happened, which is not always what was asked (a crash step with every node down does nothing).
 *
 * Membership steps keep the group between 3 and 7 members and at least 3 voters. A new node gets a
 * never-used id and is started (empty) as soon as the leader accepts adding it.
 */
import { assert, unreachable } from "../../src/lib/assert.js";
import { SeededRandom } from "../../src/lib/random.js";
import type { ConfChange, ProposeResult } from "../../src/raft/index.js";
import { MAX_PROCESSES, type Cluster } from "./cluster.js";
import type { SimNode } from "./node.js";
import { planPartition } from "./partition.js";
import type { Step } from "./schedule.js";
import { EventCode } from "./trace.js";

/** Largest group (voters + learners) membership steps may create. */
export const MAX_MEMBERS = 7;
/** Fewest voters membership steps may leave. */
export const MIN_VOTERS = 3;

/** The steps that act on nodes rather than on the network. */
type NodeStep = Extract<Step, { kind: "crash" | "restart" | "snapshot" | "addLearner" | "promote" | "remove" | "transfer" | "read" | "campaign" | "voteCrash" | "churn" }>;

const STEP_CODES: Record<Step["kind"], number> = {
  advance: 1, propose: 2, drop: 3, duplicate: 4, delay: 5, reorder: 6, weather: 7, partition: 8, heal: 9,
  crash: 10, restart: 11, snapshot: 12, addLearner: 13, promote: 14, remove: 15, transfer: 16, read: 17,
  campaign: 18, voteCrash: 19, churn: 20,
};

/** A mask that puts every node but the focus on side B: the focus alone on side A. */
const ALL_BUT_FOCUS = 0x3fffffff;

/** Executes the steps of one run; also hands out unique proposal payloads. */
export class StepExecutor {
  private proposals = 0;
  private reads = 0;

  constructor(private readonly c: Cluster) {}

  /** A fresh, unique proposal payload. */
  nextProposal(): string {
    return `p${++this.proposals}`;
  }

  /** Runs one step. */
  execute(step: Step, index: number, describe: () => string): void {
    const c = this.c;
    c.trace.event(c.queue.now, 0, EventCode.step, index, STEP_CODES[step.kind], 0, 0, () => `#${index} ${describe()}`);
    switch (step.kind) {
      case "advance":
        c.runFor(step.ms);
        return;
      case "propose":
        for (let i = 0; i < step.count; i++) {
          if (step.to === "leader") this.proposeToLeader(step.pick);
          else this.proposeToOther(step.pick);
        }
        return;
      case "drop":
        c.network.dropSome(step.percent / 100, new SeededRandom(step.salt));
        return;
      case "duplicate":
        c.network.duplicateSome(step.percent / 100, new SeededRandom(step.salt));
        return;
      case "delay":
        c.network.delaySome(step.percent / 100, step.maxMs, new SeededRandom(step.salt));
        return;
      case "reorder":
        c.network.reorder(new SeededRandom(step.salt));
        return;
      case "weather":
        c.network.setWeather({ dropRate: step.drop / 100, duplicateRate: step.duplicate / 100, delayRate: step.delay / 100, delayMaxMs: step.delayMaxMs });
        return;
      case "partition":
        this.partition(step);
        return;
      case "heal":
        c.heal();
        c.coverage.heal++;
        return;
      default:
        this.executeNodeStep(step);
    }
  }

  private executeNodeStep(step: NodeStep): void {
    const c = this.c;
    switch (step.kind) {
      case "crash":
        this.crash(step.leader ? c.leader() : pickOf(c.live(), step.pick));
        return;
      case "restart": {
        const n = pickOf(c.crashed(), step.pick);
        if (n === undefined) return;
        n.start();
        c.coverage.restart++;
        return;
      }
      case "snapshot":
        if (pickOf(c.live(), step.pick)?.takeSnapshot(step.lag)) c.coverage.snapshotTaken++;
        return;
      case "addLearner":
        this.addLearner();
        return;
      case "promote":
        this.promote(step.pick);
        return;
      case "remove":
        this.remove(step.pick, step.leader);
        return;
      case "transfer":
        this.transfer(step.pick);
        return;
      case "read":
        this.read(step.pick);
        return;
      case "campaign":
        this.campaign(step.pick, step.count);
        return;
      case "voteCrash":
        c.armVoteCrash(step.restartMs);
        return;
      case "churn":
        this.churn(step);
        return;
      default:
        unreachable(step, "step");
    }
  }

  private proposeToLeader(pick: number): void {
    const target = this.c.leader() ?? pickOf(this.c.live(), pick);
    const r = target?.propose(this.nextProposal());
    if (r?.ok === true) this.c.coverage.proposalAccepted++;
  }

  private proposeToOther(pick: number): void {
    const others = this.c.live().filter((n) => n.role !== "leader");
    const r = pickOf(others, pick)?.propose(this.nextProposal());
    if (r?.ok === false) this.c.coverage.proposalRejectedByNonLeader++;
  }

  private partition(step: Extract<Step, { kind: "partition" }>): void {
    const c = this.c;
    const ids = c.processes().map((n) => n.id);
    const focus = step.focusLeader ? c.leader()?.id : undefined;
    const p = planPartition(step.shape, ids, step.mask, focus);
    if (p === undefined) return;
    c.network.partition(p);
    if (step.shape === "symmetric") c.coverage.partitionSymmetric++;
    else if (step.shape === "oneWay") c.coverage.partitionOneWay++;
    else c.coverage.partitionBridge++;
  }

  private crash(n: SimNode | undefined): void {
    if (n === undefined || !n.alive) return;
    const unpersisted = n.crash();
    this.c.coverage.crash++;
    if (unpersisted) this.c.coverage.crashWithUnpersistedState++;
  }

  /** `count` distinct running non-leaders start an election at the same instant. */
  private campaign(pick: number, count: number): void {
    const candidates = this.c.live().filter((n) => n.role !== "leader");
    const chosen = new Set<SimNode>();
    for (let k = 0; k < count; k++) {
      const n = pickOf(candidates, pick + k);
      if (n !== undefined) chosen.add(n);
    }
    for (const n of chosen) if (n.campaign()) this.c.coverage.campaignForced++;
  }

  /**
   * Leader churn: proposals reach the leader, which gets `afterMs` to replicate them (part of the
   * way, typically), then crashes or is cut off. The next leader inherits entries of an older term
   * that are on some nodes only (the setting of Figure 8).
   */
  private churn(step: Extract<Step, { kind: "churn" }>): void {
    const c = this.c;
    const leader = c.leader();
    if (leader === undefined) return;
    for (let i = 0; i < step.count; i++) {
      if (leader.propose(this.nextProposal())?.ok === true) c.coverage.proposalAccepted++;
    }
    c.runFor(step.afterMs);
    if (!leader.alive) return;
    if (step.how === "crash") this.crash(leader);
    else {
      const p = planPartition("symmetric", c.processes().map((n) => n.id), ALL_BUT_FOCUS, leader.id);
      if (p === undefined) return;
      c.network.partition(p);
      c.coverage.partitionSymmetric++;
    }
    c.coverage.leaderChurn++;
  }

  private addLearner(): void {
    const c = this.c;
    const leader = c.leader();
    const conf = c.membership();
    if (leader === undefined || conf === undefined) return;
    if (conf.voters.length + conf.learners.length >= MAX_MEMBERS || c.processes().length >= MAX_PROCESSES) return;
    const id = c.peekNextId();
    const r = this.changeMembership(leader, { type: "addLearner", nodeId: id });
    if (r?.ok === true) assert(c.spawn().id === id, "spawned node got an unexpected id");
  }

  private promote(pick: number): void {
    const leader = this.c.leader();
    const target = pickOf(this.c.membership()?.learners ?? [], pick);
    if (leader !== undefined && target !== undefined) this.changeMembership(leader, { type: "addVoter", nodeId: target });
  }

  private remove(pick: number, removeLeader: boolean): void {
    const leader = this.c.leader();
    const conf = this.c.membership();
    if (leader === undefined || conf === undefined) return;
    const target = removeLeader ? leader.id : pickOf([...conf.voters, ...conf.learners], pick);
    if (target === undefined) return;
    if (conf.voters.includes(target) && conf.voters.length <= MIN_VOTERS) return;
    const r = this.changeMembership(leader, { type: "removeNode", nodeId: target });
    if (r?.ok === true && target === leader.id) this.c.leaderRemovals.add(target);
  }

  private changeMembership(leader: SimNode, cc: ConfChange): ProposeResult | undefined {
    return leader.proposeConfChange(cc);
  }

  private transfer(pick: number): void {
    const c = this.c;
    const leader = c.leader();
    const voters = c.membership()?.voters.filter((id) => id !== leader?.id) ?? [];
    const target = pickOf(voters, pick);
    if (leader === undefined || target === undefined) return;
    leader.transferLeadership(target);
    c.coverage.transferRequested++;
    c.transferTargets.set(target, leader.term);
  }

  private read(pick: number): void {
    const c = this.c;
    const n = pickOf(c.live(), pick);
    if (n === undefined) return;
    const context = `r${++this.reads}`;
    c.checker.onReadIssued(context);
    if (n.readIndex(context)) c.coverage.readRequested++;
  }
}

function pickOf<T>(xs: readonly T[], pick: number): T | undefined {
  return xs.length === 0 ? undefined : xs[pick % xs.length];
}

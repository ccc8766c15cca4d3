/**
 * The liveness check at the end of every schedule: heal the network, restart every crashed node,
 * and keep ticking. Within the budget (30 election timeouts by default) a leader must emerge and a
 * fresh proposal must be applied by every voter of the leader's membership. A proposal lost to a
 * leader change is proposed again to the new leader.
 */
import type { LogIndex, Term } from "../../src/lib/ids.js";
import type { StepExecutor } from "./actions.js";
import type { Cluster } from "./cluster.js";
import type { SimNode } from "./node.js";
import { EventCode } from "./trace.js";

interface Attempt {
  readonly text: string;
  readonly index: LogIndex;
  readonly term: Term;
}

/** Heals everything and waits for progress; throws a liveness violation if there is none in `budgetMs`. */
export function checkLiveness(c: Cluster, exec: StepExecutor, budgetMs: number): void {
  for (const n of c.crashed()) n.start();
  c.heal();
  const start = c.queue.now;
  const deadline = start + budgetMs;
  c.trace.event(start, 0, EventCode.liveness, 0, 0, 0, 0, `healed; restarted all; waiting up to ${budgetMs}ms`);
  let attempt: Attempt | undefined;
  while (c.queue.now < deadline) {
    c.runFor(c.opts.tickMs);
    c.checkStep();
    const leader = c.leader();
    if (leader === undefined) continue;
    if (attempt === undefined || (attempt.term < leader.term && !c.checker.isApplied(attempt.text))) attempt = propose(leader, exec) ?? attempt;
    if (attempt !== undefined && appliedByAllVoters(c, leader, attempt)) {
      c.trace.event(c.queue.now, leader.id, EventCode.liveness, 1, attempt.index, c.queue.now - start, 0, `${attempt.text} applied by all voters after ${c.queue.now - start}ms`);
      return;
    }
  }
  c.checker.fail("liveness", c.processes().map((n) => n.id), c.leader()?.term, attempt?.index,
    `no progress within ${budgetMs}ms after healing (${attempt === undefined ? "no proposal accepted" : `${attempt.text} at ${attempt.index}/t${attempt.term} not applied everywhere`}); ${describeNodes(c)}`);
}

function propose(leader: SimNode, exec: StepExecutor): Attempt | undefined {
  const text = exec.nextProposal();
  const r = leader.propose(text);
  return r?.ok === true ? { text, index: r.index, term: r.term } : undefined;
}

function appliedByAllVoters(c: Cluster, leader: SimNode, a: Attempt): boolean {
  const conf = leader.status()?.confState;
  if (conf === undefined) return false;
  const fp = `${a.term}/normal/${a.text}`;
  for (const id of conf.voters) {
    const n = c.nodes.get(id);
    if (n === undefined || n.decommissioned) continue; // removal applied elsewhere; the leader will learn it
    if (n.appliedAt(a.index) !== fp) return false;
  }
  return true;
}

/** One clause per node: role, term, commit, applied, last index, leader, membership. */
export function describeNodes(c: Cluster): string {
  return [...c.nodes.values()]
    .map((n) => {
      if (n.decommissioned) return `n${n.id} decommissioned`;
      const st = n.status();
      if (st === undefined) return `n${n.id} down`;
      return `n${n.id} ${st.role} t${st.term} commit ${st.commit} applied ${st.applied} last ${st.lastIndex} lead ${st.lead} voters [${st.confState.voters.join(",")}] learners [${st.confState.learners.join(",")}]`;
    })
    .join("; ");
}

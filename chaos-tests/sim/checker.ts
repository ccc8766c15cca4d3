/**
 * The safety invariants of Raft (thesis §3.6, Figure 3.2), checked incrementally as the simulated
 * nodes report what they do. The checker never looks inside a RawNode: it sees what a host sees
 * (Ready batches, proposals' results, status()) and what goes over the wire.
 *
 *  - election safety: at most one leader per term, over the whole run. Evidence is both a node's
 *    own report (soft state "leader") and leader-only messages (app, heartbeat, snap, timeoutNow,
 *    readIndexResp) sent in that term, which also catches a leadership too short to be reported.
 *  - log matching: a registry maps (index, term) to the entry's contents and the term of the entry
 *    before it. Every log that shows the same (index, term) must agree on both, which by induction
 *    makes the whole prefixes identical. Terms within a log never decrease.
 *  - leader completeness: an entry known committed with commit term c (an upper bound: the
 *    smallest term of a node that reported it committed) is in the log of every leader of a term
 *    > c. Checked when a leader hands out a Ready (its whole log is then visible) and after every
 *    step for leaders with nothing pending (their log is then their storage), from a per-leader
 *    watermark so that each entry is compared once per leader term.
 *  - state machine safety: one applied entry per index across all nodes; entries are applied in
 *    order, never beyond the node's commit, and equal the committed entry at that index. A restored
 *    snapshot must equal, entry by entry, what was applied.
 *  - monotonicity: term and commit never decrease within an incarnation; the persisted term and
 *    commit never decrease across restarts; a vote once cast is not changed within its term.
 *  - proposals: only a leader accepts one; an applied proposal sits exactly at the index and term
 *    the leader returned; nothing is applied that nobody proposed.
 *  - reads: a read served at index i has i >= every commit index known when the read was issued.
 *
 * Host-contract checks (the simulator can turn them off to measure what the end-to-end checks
 * alone find): what a message acknowledges is durable when it leaves (a vote grant: the vote; an
 * append acknowledgement: the entries), a leader's commit index covers only entries durable on a
 * quorum of its voters (thesis §10.2.1: a leader may send before its own fsync, but not count
 * itself until then), and a leader commits by counting only entries of its own term (§3.6.2,
 * Figure 3.7). These catch the cause at once, where the end-to-end consequence (two leaders in a
 * term, a lost committed entry) needs a rare crash or election afterwards.
 */
import type { LogIndex, NodeId, Term } from "../../src/lib/ids.js";
import type { Entry, HardState, Message, ProposeResult, SnapshotMetadata } from "../../src/raft/index.js";
import type { LogView } from "./log-view.js";
import { BOOTSTRAP, entryText, fingerprint, proposalOf, type StateMachine } from "./state-machine.js";

/** The invariants, as named in violations. */
export type Invariant =
  | "electionSafety"
  | "logMatching"
  | "leaderCompleteness"
  | "leaderAppendOnly"
  | "stateMachineSafety"
  | "applyOrder"
  | "commitMonotonic"
  | "commitBounds"
  | "termMonotonic"
  | "voteStability"
  | "snapshotConsistency"
  | "proposalSafety"
  | "readLinearizability"
  | "voteDurability"
  | "ackDurability"
  | "commitDurability"
  | "leaderCommitRule"
  | "liveness";

/** A broken invariant: names the invariant, the nodes involved, and the term and index if known. */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
  constructor(
    readonly invariant: Invariant,
    readonly nodes: readonly NodeId[],
    readonly term: Term | undefined,
    readonly index: LogIndex | undefined,
    readonly detail: string,
    readonly timeMs: number,
  ) {
    super(
      `invariant ${invariant} violated at ${(timeMs / 1000).toFixed(3)}s: nodes [${nodes.join(", ")}]` +
        `${term === undefined ? "" : `, term ${term}`}${index === undefined ? "" : `, index ${index}`}: ${detail}`,
    );
  }
}

interface RegistryRecord {
  readonly fp: string;
  prevTerm: Term | undefined;
  readonly node: NodeId;
}

interface CommittedRecord {
  readonly fp: string;
  /** Upper bound of the term in which the entry was committed. */
  commitTerm: Term;
  readonly node: NodeId;
}

interface ProposalRecord {
  readonly node: NodeId;
  readonly index: LogIndex;
  readonly term: Term;
  applied: boolean;
}

interface NodeRecord {
  /** In-memory hard state of the current incarnation (from Ready and status()). */
  memTerm: Term;
  memCommit: LogIndex;
  memVote: NodeId;
  /** Persisted hard state. */
  disk: HardState;
  /** Highest commit index whose entries were recorded as committed. */
  commitSeen: LogIndex;
  /** Leader completeness watermark for the leader term `lcTerm`. */
  lcTerm: Term;
  lcChecked: LogIndex;
}

const LEADER_ONLY = new Set<Message["type"]>(["app", "heartbeat", "snap", "timeoutNow", "readIndexResp"]);

/** The invariants of one run; nodes and the cluster report to it, it throws {@link InvariantViolation}. */
export class Checker {
  private readonly leaders = new Map<Term, NodeId>();
  private readonly registry = new Map<LogIndex, Map<Term, RegistryRecord>>();
  private readonly committed = new Map<LogIndex, CommittedRecord>();
  private readonly applied = new Map<LogIndex, { fp: string; node: NodeId }>();
  private readonly proposals = new Map<string, ProposalRecord>();
  private readonly reads = new Map<string, { commitAtIssue: LogIndex; served: boolean }>();
  private readonly nodes = new Map<NodeId, NodeRecord>();
  /** Highest commit index any node has reported. */
  maxCommitKnown: LogIndex = 0;
  /** Virtual time, for violation messages. */
  now: () => number = () => 0;

  /** Who led `term`, if anyone is known to have. */
  leaderOf(term: Term): NodeId | undefined {
    return this.leaders.get(term);
  }

  /** Whether proposal `text` has been applied by some node. */
  isApplied(text: string): boolean {
    return this.proposals.get(text)?.applied ?? false;
  }

  /** Throws the violation of `invariant` (also used by the simulator for what only it can see). */
  fail(invariant: Invariant, nodes: readonly NodeId[], term: Term | undefined, index: LogIndex | undefined, detail: string): never {
    throw new InvariantViolation(invariant, nodes, term, index, detail, this.now());
  }

  // ------------------------------------------------------------------ lifecycle

  /** A node (re)starts from `persisted`; `commitNow` is the commit its new RawNode reports. */
  onStart(node: NodeId, persisted: HardState, commitNow: LogIndex): void {
    const prev = this.nodes.get(node);
    if (prev !== undefined) this.checkDiskHardState(node, prev.disk, persisted);
    if (commitNow < persisted.commit) this.fail("commitMonotonic", [node], persisted.term, commitNow, `restarted with commit ${commitNow} below persisted commit ${persisted.commit}`);
    this.nodes.set(node, {
      memTerm: persisted.term,
      memCommit: commitNow,
      memVote: persisted.vote,
      disk: persisted,
      commitSeen: Math.max(commitNow, prev?.commitSeen ?? 0),
      lcTerm: 0,
      lcChecked: 0,
    });
  }

  private record(node: NodeId): NodeRecord {
    const r = this.nodes.get(node);
    if (r === undefined) throw new Error(`checker: node ${node} reported before onStart`);
    return r;
  }

  // ------------------------------------------------------------------ election safety

  /** `node` is (or was) leader of `term`. */
  onLeader(node: NodeId, term: Term): void {
    const other = this.leaders.get(term);
    if (other === undefined) this.leaders.set(term, node);
    else if (other !== node) this.fail("electionSafety", [other, node], term, undefined, `two leaders in term ${term}`);
  }

  /** A message leaves `m.from`: leader-only types prove leadership; app entries show the sender's log. */
  onSend(m: Message): void {
    if (!LEADER_ONLY.has(m.type)) return;
    this.onLeader(m.from, m.term);
    if (m.type === "app" && m.entries.length > 0) this.onEntries(m.from, m.index, m.logTerm, m.entries);
  }

  // ------------------------------------------------------------------ log matching

  /** `node`'s log holds `entries` right after (prevIndex, prevTerm); prevTerm undefined if unknown. */
  onEntries(node: NodeId, prevIndex: LogIndex, prevTerm: Term | undefined, entries: readonly Entry[]): void {
    let pi = prevIndex;
    let pt = prevTerm;
    for (const e of entries) {
      if (e.index !== pi + 1) this.fail("logMatching", [node], e.term, e.index, `entries not contiguous: ${e.index} follows ${pi}`);
      if (pt !== undefined && e.term < pt) this.fail("logMatching", [node], e.term, e.index, `term ${e.term} follows term ${pt} in one log`);
      this.register(node, e, pt);
      pi = e.index;
      pt = e.term;
    }
  }

  private register(node: NodeId, e: Entry, prevTerm: Term | undefined): void {
    let byTerm = this.registry.get(e.index);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.registry.set(e.index, byTerm);
    }
    const fp = `${e.type}/${entryText(e.data)}`;
    const rec = byTerm.get(e.term);
    if (rec === undefined) {
      byTerm.set(e.term, { fp, prevTerm, node });
      return;
    }
    if (rec.fp !== fp) this.fail("logMatching", [rec.node, node], e.term, e.index, `same index and term, different entries: ${rec.fp} vs ${fp}`);
    if (prevTerm === undefined) return;
    if (rec.prevTerm === undefined) rec.prevTerm = prevTerm;
    else if (rec.prevTerm !== prevTerm) {
      this.fail("logMatching", [rec.node, node], e.term, e.index, `same entry, different predecessors: terms ${rec.prevTerm} vs ${prevTerm} at ${e.index - 1}`);
    }
  }

  /** A founding member's bootstrap snapshot: its (index, term) stands for the founding membership. */
  onBootstrap(meta: SnapshotMetadata): void {
    if (meta.index === 0) return;
    const byTerm = this.registry.get(meta.index) ?? new Map<Term, RegistryRecord>();
    this.registry.set(meta.index, byTerm);
    const rec = byTerm.get(meta.term);
    if (rec === undefined) byTerm.set(meta.term, { fp: BOOTSTRAP, prevTerm: undefined, node: 0 });
    else if (rec.fp !== BOOTSTRAP) this.fail("logMatching", [rec.node], meta.term, meta.index, `bootstrap snapshot at an index where ${rec.fp} was appended`);
  }

  /** A snapshot claims entry (index, term): it must be one some log actually held. */
  onSnapshotMeta(node: NodeId, meta: SnapshotMetadata): void {
    if (meta.index === 0) return;
    if (this.registry.get(meta.index)?.get(meta.term) === undefined) {
      this.fail("logMatching", [node], meta.term, meta.index, "snapshot refers to an entry no log ever held");
    }
  }

  // ------------------------------------------------------------------ hard state

  /** The in-memory hard state a node reports (Ready.hardState or status()). */
  onMemHardState(node: NodeId, hs: HardState): void {
    const r = this.record(node);
    if (hs.term < r.memTerm) this.fail("termMonotonic", [node], hs.term, undefined, `term went back from ${r.memTerm} to ${hs.term}`);
    if (hs.commit < r.memCommit) this.fail("commitMonotonic", [node], hs.term, hs.commit, `commit went back from ${r.memCommit} to ${hs.commit}`);
    if (hs.term === r.memTerm && r.memVote !== 0 && hs.vote !== r.memVote) {
      this.fail("voteStability", [node], hs.term, undefined, `vote changed from ${r.memVote} to ${hs.vote} within term ${hs.term}`);
    }
    r.memTerm = hs.term;
    r.memCommit = hs.commit;
    r.memVote = hs.vote;
  }

  /** A hard state is about to be persisted over the current one. */
  onPersistHardState(node: NodeId, hs: HardState): void {
    const r = this.record(node);
    this.checkDiskHardState(node, r.disk, hs);
    r.disk = hs;
  }

  private checkDiskHardState(node: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) this.fail("termMonotonic", [node], next.term, undefined, `persisted term went back from ${prev.term} to ${next.term}`);
    if (next.commit < prev.commit) this.fail("commitMonotonic", [node], next.term, next.commit, `persisted commit went back from ${prev.commit} to ${next.commit}`);
    if (next.term === prev.term && prev.vote !== 0 && next.vote !== prev.vote) {
      this.fail("voteStability", [node], next.term, undefined, `persisted vote changed from ${prev.vote} to ${next.vote} within term ${next.term}`);
    }
  }

  // ------------------------------------------------------------------ durability (host contract)

  /**
   * `node` sends a vote grant to `to` for `term`; `durable` is the hard state a crash would leave.
   * A durable later term also keeps the promise (the node never votes in `term` again).
   */
  onVoteGrantSent(node: NodeId, to: NodeId, term: Term, durable: HardState): void {
    if (durable.term < term || (durable.term === term && durable.vote !== to)) {
      this.fail("voteDurability", [node, to], term, undefined, `granted its vote to ${to} in term ${term} while its disk holds term ${durable.term} vote ${durable.vote}`);
    }
  }

  /**
   * `node` acknowledges entries up to `index` to `to` in `term`; `durable` says whether they would
   * survive a crash, `durableTerm` is the term on its disk. A durable later term supersedes the
   * acknowledgement: the node may legitimately have truncated those entries for a newer leader in
   * the same Ready, and the acknowledgement only ever spoke for `term` (no leader of a later term
   * could have been elected without them, thesis §3.6.3).
   */
  onAckSent(node: NodeId, to: NodeId, term: Term, index: LogIndex, durable: boolean, durableTerm: Term): void {
    if (!durable && durableTerm <= term) this.fail("ackDurability", [node, to], term, index, `acknowledged entries up to ${index} to ${to} before they were durable`);
  }

  /**
   * Leader `node` of `term` reports commit index `commit`; `durableOn` are the voters (of `voters`)
   * whose disk holds that entry durably.
   */
  onCommitDurability(node: NodeId, term: Term, commit: LogIndex, durableOn: readonly NodeId[], voters: readonly NodeId[]): void {
    if (durableOn.length < Math.floor(voters.length / 2) + 1) {
      this.fail("commitDurability", [node], term, commit,
        `leader committed ${commit}, but only [${durableOn.join(",")}] of voters [${voters.join(",")}] hold it durably (the leader counted an entry not yet on its own disk?)`);
    }
  }

  /** Leader `node` of `term` advanced its commit by counting to `commit`, whose entry has term `entryTerm`. */
  onLeaderCommit(node: NodeId, term: Term, commit: LogIndex, entryTerm: Term | undefined): void {
    if (entryTerm !== term) {
      this.fail("leaderCommitRule", [node], term, commit, `leader of term ${term} committed ${commit} of term ${entryTerm ?? "?"} by counting replicas (only entries of its own term may be; Figure 8)`);
    }
  }

  // ------------------------------------------------------------------ commitment

  /** `node` (in term `term`) reports commit index `commit` over the log `view`. */
  onCommit(node: NodeId, term: Term, commit: LogIndex, view: LogView): void {
    const r = this.record(node);
    if (commit > this.maxCommitKnown) this.maxCommitKnown = commit;
    if (commit > view.lastIndex) this.fail("commitBounds", [node], term, commit, `commit beyond the node's last index ${view.lastIndex}`);
    for (let i = Math.max(r.commitSeen + 1, view.firstIndex); i <= commit; i++) {
      const e = view.entryAt(i);
      if (e !== undefined) this.onCommitted(node, term, e);
    }
    if (commit > r.commitSeen) r.commitSeen = commit;
  }

  private onCommitted(node: NodeId, term: Term, e: Entry): void {
    const fp = fingerprint(e);
    const rec = this.committed.get(e.index);
    if (rec === undefined) {
      this.committed.set(e.index, { fp, commitTerm: term, node });
      return;
    }
    if (rec.fp !== fp) this.fail("stateMachineSafety", [rec.node, node], term, e.index, `two different entries committed: ${rec.fp} vs ${fp}`);
    if (term < rec.commitTerm) rec.commitTerm = term;
  }

  /**
   * Leader completeness for `node`, leader of `term`, whose log is `view`. `complete` says the view
   * is the node's whole log (it is when the node hands out a Ready); otherwise entries beyond the
   * view's end are not judged.
   */
  checkLeader(node: NodeId, term: Term, view: LogView, complete: boolean): void {
    const r = this.record(node);
    if (r.lcTerm !== term) {
      r.lcTerm = term;
      r.lcChecked = 0;
    }
    for (let i = r.lcChecked + 1; i <= this.maxCommitKnown; i++) {
      const rec = this.committed.get(i);
      if (rec !== undefined && rec.commitTerm >= term) break;
      if (rec !== undefined && i >= view.firstIndex) {
        if (i > view.lastIndex) {
          if (!complete) break;
          this.fail("leaderCompleteness", [node, rec.node], term, i, `leader's log ends at ${view.lastIndex} without committed ${rec.fp}`);
        }
        const fp = fingerprint(view.entryAt(i)!);
        if (fp !== rec.fp) this.fail("leaderCompleteness", [node, rec.node], term, i, `leader has ${fp} where ${rec.fp} was committed`);
      }
      r.lcChecked = i;
    }
  }

  /** Leader append-only: a leader that already persisted in `term` never overwrites its own log. */
  onLeaderOverwrite(node: NodeId, term: Term, index: LogIndex, lastIndex: LogIndex): void {
    this.fail("leaderAppendOnly", [node], term, index, `leader rewrites its log from ${index} (last index ${lastIndex})`);
  }

  // ------------------------------------------------------------------ applying

  /** `node` (term `term`) applies `e` with its state machine at `smIndex`. */
  onApply(node: NodeId, term: Term, e: Entry, smIndex: LogIndex): string {
    const r = this.record(node);
    if (e.index !== smIndex + 1) this.fail("applyOrder", [node], e.term, e.index, `applied ${e.index} after ${smIndex}`);
    if (e.index > r.memCommit) this.fail("applyOrder", [node], e.term, e.index, `applied beyond commit ${r.memCommit}`);
    const fp = fingerprint(e);
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, { fp, node });
    else if (prev.fp !== fp) this.fail("stateMachineSafety", [prev.node, node], e.term, e.index, `applied ${prev.fp} vs ${fp}`);
    this.onCommitted(node, term, e);
    this.onProposalApplied(node, e);
    return fp;
  }

  /** `node` restored `sm` from a snapshot with metadata `meta`. */
  onRestore(node: NodeId, meta: SnapshotMetadata, sm: StateMachine): void {
    if (sm.appliedIndex !== meta.index) {
      this.fail("snapshotConsistency", [node], meta.term, meta.index, `snapshot data covers ${sm.appliedIndex} entries`);
    }
    for (let i = 1; i <= meta.index; i++) {
      const fp = sm.fingerprintAt(i)!;
      const prev = this.applied.get(i);
      if (prev === undefined) this.applied.set(i, { fp, node });
      else if (prev.fp !== fp) this.fail("stateMachineSafety", [prev.node, node], meta.term, i, `snapshot has ${fp} where ${prev.fp} was applied`);
    }
    const last = sm.fingerprintAt(meta.index);
    if (last !== undefined && !last.startsWith(`${meta.term}/`)) {
      this.fail("snapshotConsistency", [node], meta.term, meta.index, `snapshot term ${meta.term} but its last entry is ${last}`);
    }
  }

  // ------------------------------------------------------------------ proposals

  /** `node`, leader or not (`wasLeader`), answered a proposal of `text` with `result`. */
  onProposed(node: NodeId, wasLeader: boolean, text: string, result: ProposeResult): void {
    if (!result.ok) return;
    if (!wasLeader) this.fail("proposalSafety", [node], result.term, result.index, `a non-leader accepted proposal ${text}`);
    this.proposals.set(text, { node, index: result.index, term: result.term, applied: false });
  }

  private onProposalApplied(node: NodeId, e: Entry): void {
    const text = proposalOf(e);
    if (text === undefined) return;
    const p = this.proposals.get(text);
    if (p === undefined) this.fail("proposalSafety", [node], e.term, e.index, `applied ${text}, which was never accepted`);
    if (p.index !== e.index || p.term !== e.term) {
      this.fail("proposalSafety", [p.node, node], e.term, e.index, `${text} was accepted at ${p.index}/t${p.term} but applied at ${e.index}/t${e.term}`);
    }
    p.applied = true;
  }

  // ------------------------------------------------------------------ reads

  /** A read with `context` is issued now. */
  onReadIssued(context: string): void {
    this.reads.set(context, { commitAtIssue: this.maxCommitKnown, served: false });
  }

  /** `node` serves the read `context` at read index `index`. Returns false for a duplicate answer. */
  onReadServed(node: NodeId, context: string, index: LogIndex): boolean {
    const r = this.reads.get(context);
    if (r === undefined) this.fail("readLinearizability", [node], undefined, index, `read state for unknown context ${context}`);
    if (r.served) return false;
    r.served = true;
    if (index < r.commitAtIssue) {
      this.fail("readLinearizability", [node], undefined, index, `read ${context} served at ${index}, but ${r.commitAtIssue} was committed before it was issued`);
    }
    return true;
  }
}

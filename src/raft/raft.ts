/**
 * The Raft state machine of one group on one node. Pure and synchronous: every input is a method
 * call, every output is queued in `msgs` / `readStates` or visible in the log and hard state, and
 * {@link RawNode} packages them into a `Ready`. See index.ts for the big picture.
 */
import { assert } from "../lib/assert.js";
import { NO_NODE, type LogIndex, type NodeId, type Term } from "../lib/ids.js";
import { silentLogger, type Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import { resolveConfig, type RaftConfig, type ResolvedRaftConfig } from "./config.js";
import { RaftLog } from "./log.js";
import {
  decodeConfChange,
  encodeConfChange,
  entrySizeBytes,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type Snapshot,
} from "./messages.js";
import { isValidConfChange, nextConfState } from "./confchange.js";
import { ReadOnly } from "./read-only.js";
import type { ProposeResult, RaftRole, ReadState } from "./ready.js";
import { LogCompactedError, LogUnavailableError, SnapshotUnavailableError } from "./storage.js";
import { Progress } from "./tracker/progress.js";
import { committedIndex, voteResult, type VoteResult } from "./tracker/quorum.js";

const TRANSFER_CONTEXT = "transfer";
const EMPTY = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  term: Term = 0;
  vote: NodeId = NO_NODE;
  lead: NodeId = NO_NODE;
  role: RaftRole = "follower";
  readonly log: RaftLog;

  /** Membership in force (as of the applied index). Invariant: voters ∩ learners = ∅. */
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  /** Leader only: one Progress per voter and learner, self included. */
  progress = new Map<NodeId, Progress>();
  /** Candidate only: votes received in the current (pre-)election. */
  private votes = new Map<NodeId, boolean>();

  /** Outputs, drained by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since the last election-timer reset (followers/candidates) or CheckQuorum round (leaders). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  // Invariant: electionTicks <= randomizedElectionTimeout < 2 * electionTicks.
  private randomizedElectionTimeout = 0;

  /** Leader only: the node we are handing leadership to, or NO_NODE. */
  leadTransferee: NodeId = NO_NODE;
  /** Leader only: ticks since the current transfer started (kept apart from the CheckQuorum count). */
  private transferElapsed = 0;
  /** Leader only: index of the latest conf entry; another may be proposed only once it is applied. */
  private pendingConfIndex: LogIndex = 0;
  /** Leader only: bytes of appended but uncommitted payload, for the overload limit. */
  private uncommittedBytes = 0;
  /** Leader only: proposals appended since the last broadcast (batched into one append per follower). */
  private broadcastPending = false;
  private readonly readOnly = new ReadOnly();
  /** Leader only: read requests that wait for the first commit of this term. */
  private pendingReads: { context: string; from: NodeId }[] = [];
  /**
   * The group is idle and ticks do nothing (config `quiesce`; see the "quiescence" section below).
   * Invariant: only a leader or a follower with a known leader is quiesced.
   */
  quiesced = false;

  private readonly cfg: ResolvedRaftConfig;
  private readonly random: Random;
  private readonly logger: Logger;

  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.random = this.cfg.random;
    this.logger = this.cfg.logger ?? silentLogger;
    this.log = new RaftLog(this.cfg.storage, this.cfg.maxCommittedBytesPerReady);
    const { hardState, confState } = this.cfg.storage.initialState();
    this.applyConfState(confState);
    this.loadHardState(hardState);
    // Restart from the snapshot (which may be newer than the compaction point) unless told otherwise.
    const applied = this.cfg.applied ?? this.cfg.storage.snapshot().metadata.index;
    if (applied > 0) this.log.appliedTo(applied);
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------- state transitions

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes.clear();
    this.progress.clear();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.broadcastPending = false;
    this.readOnly.clear();
    this.pendingReads = [];
    this.quiesced = false;
  }

  becomeFollower(term: Term, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
    this.logger.debug({ term, lead }, "became follower");
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "invalid transition [leader -> pre-candidate]");
    // A pre-candidate changes neither term nor vote (thesis §9.6), so it does not disrupt anyone.
    this.votes.clear();
    this.lead = NO_NODE;
    this.role = "preCandidate";
    this.logger.debug({ term: this.term }, "became pre-candidate");
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.logger.debug({ term: this.term }, "became candidate");
  }

  private becomeLeader(): void {
    assert(this.role !== "follower", "invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    const last = this.log.lastIndex();
    for (const id of this.voters) this.progress.set(id, this.newProgress(last + 1, false));
    for (const id of this.learners) this.progress.set(id, this.newProgress(last + 1, true));
    // Our own entries count towards commitment only once persisted (see advanceStable).
    const self = this.progress.get(this.id);
    if (self !== undefined && this.log.unstable.entries.length === 0 && this.log.unstable.snapshot === undefined) {
      self.maybeUpdate(last);
    }
    self?.becomeReplicate();
    // Conservatively block membership changes until everything in our log is applied.
    this.pendingConfIndex = last;
    // The no-op of the new term: commits (and with it, all previous entries) as soon as a quorum has it.
    this.appendEntries([{ term: this.term, index: 0, type: "normal", data: EMPTY }]);
    this.logger.info({ term: this.term }, "became leader");
  }

  private newProgress(next: LogIndex, isLearner: boolean): Progress {
    return new Progress(next, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes, isLearner);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.random.int(this.cfg.electionTicks);
  }

  private loadHardState(hs: HardState): void {
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    if (hs.commit < first - 1 || hs.commit > last) {
      throw new Error(`group ${this.id}: persisted commit ${hs.commit} is out of range [${first - 1}, ${last}]`);
    }
    this.log.committed = Math.max(this.log.committed, hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Whether this node may become leader: a voter with no unapplied membership change committed. */
  private promotable(): boolean {
    return this.voters.has(this.id) && !this.log.unstable.snapshot;
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.quiesced) return;
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.checkQuorumActive()) {
        this.logger.warn({ term: this.term }, "stepped down: lost contact with a quorum");
        this.becomeFollower(this.term, NO_NODE);
        return;
      }
      this.retryStaleSnapshots();
    }
    if (this.leadTransferee !== NO_NODE && ++this.transferElapsed >= this.cfg.electionTicks) {
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.logger.info({ term: this.term, to: this.leadTransferee }, "abandoned leadership transfer");
      this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      if (this.cfg.quiesce && this.canQuiesce()) this.quiesce();
      else this.broadcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  /**
   * A snapshot whose outcome was not reported (and not acknowledged) for a whole election timeout
   * is presumed lost: probe again, which sends a fresh snapshot if still needed. Transports report
   * outcomes with reportSnapshot(); this bounds the damage when one is lost anyway.
   */
  private retryStaleSnapshots(): void {
    for (const pr of this.progress.values()) {
      if (pr.state !== "snapshot") continue;
      if (pr.snapshotStale) {
        pr.pendingSnapshot = 0; // it may never have arrived: probe from what we know it has
        pr.becomeProbe();
      }
      else pr.snapshotStale = true;
    }
  }

  /** CheckQuorum: whether a quorum was heard from since the last round; resets the marks. */
  private checkQuorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      if (pr.recentActive && this.voters.has(id)) active++;
      pr.recentActive = false;
    }
    if (this.voters.has(this.id)) active++;
    return active >= Math.floor(this.voters.size / 2) + 1;
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election if allowed; `transfer` skips PreVote and tells voters to ignore their lease. */
  hup(transfer: boolean): void {
    this.wake();
    if (this.role === "leader") return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn({ term: this.term }, "cannot campaign: committed membership changes are not applied yet");
      return;
    }
    if (this.cfg.preVote && !transfer) this.campaign("preVote", false);
    else this.campaign("vote", transfer);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    try {
      const ents = this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed + 1, Number.MAX_SAFE_INTEGER);
      return ents.some((e) => e.type === "conf");
    } catch (e) {
      if (e instanceof LogUnavailableError) return true; // cannot tell yet: be safe and wait
      throw e;
    }
  }

  private campaign(type: "preVote" | "vote", transfer: boolean): void {
    let term: Term;
    if (type === "preVote") {
      this.becomePreCandidate();
      term = this.term + 1; // the term we would use; our own term does not change yet
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      this.onElectionWon(type);
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(message({ type, from: this.id, to: id, term, index: lastIndex, logTerm: lastTerm, context: transfer ? TRANSFER_CONTEXT : "" }));
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters, this.votes);
  }

  private onElectionWon(type: "preVote" | "vote"): void {
    if (type === "preVote") this.campaign("vote", false);
    else {
      this.becomeLeader();
      this.broadcastAppend();
    }
  }

  // ---------------------------------------------------------------- stepping messages

  /** Handles a message from a peer. Messages for other nodes or from an older term are dropped or answered. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.quiesce && this.maybeQuiesce(m)) return;
    this.wake();
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    switch (m.type) {
      case "vote":
      case "preVote":
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        return;
      case "candidate":
      case "preCandidate":
        this.stepCandidate(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
    }
  }

  /** A message from a later term. Returns false if it must be ignored. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === "vote" || m.type === "preVote") {
      const force = m.context === TRANSFER_CONTEXT;
      // Leases (thesis §6.2 with CheckQuorum): while we hear from a leader, ignore disruptive candidates.
      const inLease = this.cfg.checkQuorum && this.lead !== NO_NODE && this.electionElapsed < this.cfg.electionTicks;
      if (!force && inLease) {
        this.logger.debug({ term: this.term, from: m.from, type: m.type }, "ignored vote request within lease");
        return false;
      }
    }
    if (m.type === "preVote") return true; // never change term on a pre-vote request
    if (m.type === "preVoteResp" && !m.reject) return true; // granted for our future term
    if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") this.becomeFollower(m.term, m.from);
    else this.becomeFollower(m.term, NO_NODE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === "heartbeat" || m.type === "app")) {
      // A stale leader (e.g. back from a partition): tell it our term so that it steps down.
      this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term }));
    } else if (m.type === "preVote") {
      this.send(message({ type: "preVoteResp", from: this.id, to: m.from, term: this.term, reject: true }));
    }
    // Everything else from an older term is ignored.
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.type === "preVote" && m.term > this.term);
    const respType: MessageType = m.type === "vote" ? "voteResp" : "preVoteResp";
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // The grant carries the request's term: for a pre-vote it is the candidate's future term.
      this.send(message({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
    }
  }

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case "voteResp":
      case "preVoteResp": {
        if (m.type !== myResp) return;
        const result = this.poll(m.from, !m.reject);
        if (result === "won") this.onElectionWon(this.role === "preCandidate" ? "preVote" : "vote");
        else if (result === "lost") this.becomeFollower(this.term, NO_NODE);
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case "timeoutNow":
        this.logger.info({ term: this.term, from: m.from }, "received timeoutNow: campaigning for leadership transfer");
        this.hup(true);
        return;
      case "readIndexResp":
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.sendAppendAck(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.sendAppendAck(m.from, lastNew);
      return;
    }
    // Mismatch at m.index: hint the leader where our logs may match, skipping a whole term at once.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }),
    );
  }

  /** Acknowledges our log up to `index`, and tells the leader the commit index we know. */
  private sendAppendAck(to: NodeId, index: LogIndex): void {
    this.send(message({ type: "appResp", from: this.id, to, term: this.term, index, commit: this.log.committed }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(message({ type: "heartbeatResp", from: this.id, to: m.from, term: this.term, commit: this.log.committed, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (snap === undefined) return;
    if (this.restore(snap)) {
      this.logger.info({ term: this.term, index: snap.metadata.index }, "restored snapshot");
      this.sendAppendAck(m.from, this.log.lastIndex());
    } else {
      this.sendAppendAck(m.from, this.log.committed);
    }
  }

  /** Installs a snapshot unless we already have its contents. Returns whether the log was replaced. */
  private restore(snap: Snapshot): boolean {
    const { index, term } = snap.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We have the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.applyConfState(snap.metadata.confState);
    return true;
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case "readIndex":
        this.handleReadIndex(m.context, m.from);
        return;
      case "appResp":
        if (pr !== undefined) this.handleAppendResponse(m, pr);
        return;
      case "heartbeatResp":
        if (pr !== undefined) this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.commitAcked = Math.max(pr.commitAcked, m.commit);
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    // A probe answered at exactly our match also proves the logs match there. (Index 0 is never a
    // real acknowledgement — every group starts from a snapshot at index >= 1 — but it is what a
    // node answers to an append from an older term; it must not count.)
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === "probe" && m.index > 0)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) this.broadcastCommit();
    else if (wasPaused) this.sendAppend(m.from, true);
    // Keep the pipeline full: send more while flow control allows.
    while (this.sendAppend(m.from, false)) {
      /* each call sends one message */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.logger.info({ term: this.term, to: m.from }, "transferee caught up: sending timeoutNow");
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    pr.commitAcked = Math.max(pr.commitAcked, m.commit);
    // Acknowledgements of appends may have been lost while the window was full: free one slot so
    // that replication moves again (a gap makes the follower reject, and we probe from its match).
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context === "") return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    let voterAcks = 0;
    for (const id of acks) if (this.voters.has(id)) voterAcks++;
    if (voterAcks < Math.floor(this.voters.size / 2) + 1) return;
    for (const req of this.readOnly.advance(m.context)) this.respondToRead(req.context, req.index, req.from);
  }

  private respondToRead(context: string, index: LogIndex, from: NodeId): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send(message({ type: "readIndexResp", from: this.id, to: from, term: this.term, index, context }));
  }

  /** Leader: the largest index a quorum has persisted, committed if it is of the current term. */
  maybeCommit(): boolean {
    const mci = committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
    const committed = this.log.maybeCommit(mci, this.term);
    if (committed) this.releasePendingReads();
    return committed;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /** Sends an append (or a snapshot) to `to` if flow control allows. Returns whether a message was sent. */
  sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: Term;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entries(pr.next, this.cfg.maxMsgBytes);
    } catch (e) {
      if (e instanceof LogCompactedError) return this.sendSnapshot(to, pr);
      if (e instanceof LogUnavailableError) return false; // the host is loading the range; retried on a later heartbeat
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entrySizeBytes(e);
    this.send(message({ type: "app", from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }));
    pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotUnavailableError) return false;
      throw e;
    }
    assert(snap.metadata.index > 0, "need a non-empty snapshot to send");
    pr.becomeSnapshot(snap.metadata.index);
    this.logger.info({ term: this.term, to, index: snap.metadata.index }, "sending snapshot: follower is behind the log start");
    this.send(message({ type: "snap", from: this.id, to, term: this.term, snapshot: snap }));
    return true;
  }

  broadcastAppend(): void {
    this.broadcastPending = false;
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  /**
   * The commit index advanced. Eagerly, every follower gets an append carrying it at once (an
   * empty one if it has every entry). With `lazyCommit`, only followers with entries still to send
   * get one; the others learn the commit from their next append or heartbeat (commit is never on
   * the leader's acknowledgement path, only on the followers' applying).
   */
  private broadcastCommit(): void {
    if (!this.cfg.lazyCommit) {
      this.broadcastAppend();
      return;
    }
    this.broadcastPending = false;
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
  }

  private broadcastHeartbeat(context: string): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never advance a follower's commit beyond what it is known to have.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(message({ type: "heartbeat", from: this.id, to: id, term: this.term, commit, context }));
    }
  }

  /** Flushes the batched broadcast of proposals appended since the last one. */
  flushBroadcast(): void {
    if (this.broadcastPending && this.role === "leader") this.broadcastAppend();
    this.broadcastPending = false;
  }

  private appendEntries(ents: Entry[]): boolean {
    let bytes = 0;
    for (const e of ents) bytes += e.data.byteLength;
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.cfg.maxUncommittedBytes) return false;
    let index = this.log.lastIndex();
    const stamped = ents.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    this.log.append(stamped);
    this.uncommittedBytes += bytes;
    this.broadcastPending = true;
    return true;
  }

  /** The host persisted entries up to `index`: the leader's own acknowledgement (see index.ts). */
  onPersisted(index: LogIndex): void {
    if (this.role !== "leader") return;
    const self = this.progress.get(this.id);
    if (self === undefined) return; // a leader that is only a learner or being removed
    if (self.maybeUpdate(index) && this.maybeCommit()) this.broadcastCommit();
  }

  // ---------------------------------------------------------------- proposals

  propose(data: Uint8Array): ProposeResult {
    if (this.role === "leader") this.wake();
    const rejection = this.checkProposable();
    if (rejection !== undefined) return rejection;
    if (!this.appendEntries([{ term: this.term, index: 0, type: "normal", data }])) {
      return { ok: false, reason: "overloaded", lead: this.lead };
    }
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role === "leader") this.wake();
    const rejection = this.checkProposable();
    if (rejection !== undefined) return rejection;
    if (!this.committedEntryInCurrentTerm()) return { ok: false, reason: "leaderNotReady", lead: this.lead };
    if (this.pendingConfIndex > this.log.applied) return { ok: false, reason: "confChangePending", lead: this.lead };
    if (!this.validConfChange(cc)) return { ok: false, reason: "invalidConfChange", lead: this.lead };
    if (!this.appendEntries([{ term: this.term, index: 0, type: "conf", data: encodeConfChange(cc) }])) {
      return { ok: false, reason: "overloaded", lead: this.lead };
    }
    this.pendingConfIndex = this.log.lastIndex();
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  private checkProposable(): ProposeResult | undefined {
    if (this.role !== "leader") return { ok: false, reason: "notLeader", lead: this.lead };
    if (this.leadTransferee !== NO_NODE) return { ok: false, reason: "transferring", lead: this.lead };
    return undefined;
  }

  private validConfChange(cc: ConfChange): boolean {
    return isValidConfChange(this.confState(), cc);
  }

  // ---------------------------------------------------------------- membership

  private applyConfState(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    if (this.role === "leader") this.syncProgress();
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  /** Applies a committed membership change (called as the host applies the entry). */
  applyConfChange(cc: ConfChange): void {
    const next = nextConfState(this.confState(), cc);
    if (next === undefined) {
      // A joining node must learn the membership from a snapshot before it replays changes to it
      // (replaying onto an empty membership would let it believe it forms a quorum alone); a
      // change that no longer applies is skipped the same way on every replica.
      this.logger.warn({ term: this.term, change: cc }, "ignored membership change that does not apply");
      return;
    }
    const voters = new Set(next.voters);
    const learners = new Set(next.learners);
    this.voters = voters;
    this.learners = learners;
    this.logger.info({ term: this.term, change: cc, voters: [...voters], learners: [...learners] }, "applied membership change");
    if (this.role !== "leader") return;
    this.syncProgress();
    if (!this.voters.has(this.id)) {
      this.stepDownAfterRemoval();
      return;
    }
    if (this.leadTransferee !== NO_NODE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    // The quorum changed: something may have committed.
    if (this.maybeCommit()) this.broadcastAppend();
  }

  /** Leader: adds and removes Progress entries to match the membership. */
  private syncProgress(): void {
    const last = this.log.lastIndex();
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, this.newProgress(last + 1, false));
      else pr.isLearner = false;
    }
    for (const id of this.learners) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, this.newProgress(last + 1, true));
      else pr.isLearner = true;
    }
  }

  /**
   * The leader applied its own removal: tell followers the commit, hand leadership to the most
   * up-to-date voter, and step down. Removing the leader never needs its vote again.
   */
  private stepDownAfterRemoval(): void {
    this.broadcastAppend();
    let best: NodeId = NO_NODE;
    let bestMatch = -1;
    for (const id of this.voters) {
      const match = this.progress.get(id)?.match ?? 0;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    if (best !== NO_NODE && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.logger.info({ term: this.term, transferee: best }, "stepped down: removed from the group");
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------- leadership transfer

  /** Leader: hands leadership to `to` once it is caught up (thesis §3.10). */
  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") return;
    this.wake();
    if (to === this.id || !this.voters.has(to)) return;
    if (this.leadTransferee === to) return;
    this.abortLeaderTransfer();
    this.transferElapsed = 0; // the transfer must finish within one election timeout
    this.leadTransferee = to;
    this.logger.info({ term: this.term, to }, "starting leadership transfer");
    const pr = this.progress.get(to);
    if (pr !== undefined && pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: "timeoutNow", from: this.id, to, term: this.term }));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_NODE;
  }

  // ---------------------------------------------------------------- reads

  /** Requests a linearizable read point for `context` (thesis §6.4). Returns false if dropped (no leader known). */
  readIndex(context: string): boolean {
    this.wake();
    if (this.role === "leader") {
      this.handleReadIndex(context, this.id);
      return true;
    }
    if (this.lead === NO_NODE) return false;
    this.send(message({ type: "readIndex", from: this.id, to: this.lead, term: this.term, context }));
    return true;
  }

  private handleReadIndex(context: string, from: NodeId): void {
    if (!this.committedEntryInCurrentTerm()) {
      // Until the leader commits in its term it does not know the latest commit index (thesis §6.4 step 1).
      this.pendingReads.push({ context, from });
      return;
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.respondToRead(context, this.log.committed, from);
      return;
    }
    this.readOnly.add(context, this.log.committed, from, this.id);
    this.broadcastHeartbeat(context);
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const r of reads) this.handleReadIndex(r.context, r.from);
  }

  // ---------------------------------------------------------------- quiescence
  //
  // An idle group need not heartbeat (CockroachDB's quiescence). At a heartbeat, a leader whose
  // group is settled (canQuiesce) sends each follower a last heartbeat marked `quiesce` and stops
  // ticking. A follower that receives it from its leader in its term, holding exactly the log up
  // to the commit it carries, stops its election timer without answering; one that is not caught
  // up steps it as an ordinary heartbeat, and its answer wakes the leader, which tries again at a
  // later heartbeat. Afterwards nothing is sent until something wakes the group: any other message
  // (from anyone, of any term), a request that does something here (proposals, transfers and
  // transport reports on a leader; reads and campaigns anywhere), or the host's wake().
  //
  // Safety does not depend on it: a quiesced node only skips ticks, so at worst it notices later
  // that it should campaign or step down. Liveness does: a quiesced follower never notices a dead
  // leader by itself, so the host must call wake() when the leader's node falls silent.
  //
  //   leader 1                         follower 2                  (commit = last = 7)
  //   tick: canQuiesce()  ── heartbeat commit 7, quiesce ──►  last 7, commit 7, lead 1: quiesces
  //   tick: nothing                                            tick: nothing
  //   propose: wakes, heartbeat + app ──────────────────────►  wakes, timer from 0, answers

  /**
   * Leader: whether the group is settled. Every entry is committed and applied (so no membership
   * change is pending either), no read or transfer is pending, and every member (self included)
   * holds our whole log and has told us that it knows the commit index, so the quiesce heartbeat
   * brings nobody news.
   */
  private canQuiesce(): boolean {
    const last = this.log.lastIndex();
    if (this.leadTransferee !== NO_NODE || this.readOnly.size > 0 || this.pendingReads.length > 0) return false;
    if (this.log.applied !== last) return false; // applied <= committed <= last: all committed and applied
    for (const [id, pr] of this.progress) {
      if (pr.match !== last) return false;
      if (id !== this.id && pr.commitAcked < this.log.committed) return false;
    }
    return true;
  }

  /** Leader: sends the quiesce heartbeats and falls silent. */
  private quiesce(): void {
    for (const id of this.progress.keys()) {
      if (id === this.id) continue;
      this.send(message({ type: "heartbeat", from: this.id, to: id, term: this.term, commit: this.log.committed, quiesce: true }));
    }
    this.quiesced = true;
    this.logger.debug({ term: this.term, commit: this.log.committed }, "quiesced");
  }

  /**
   * Follower: takes a quiesce heartbeat if it comes from our leader in our term and our log ends
   * exactly at the commit it carries, which we know. Returns false to step it as an ordinary
   * heartbeat (whose answer wakes the leader).
   */
  private maybeQuiesce(m: Message): boolean {
    if (!this.cfg.quiesce || m.type !== "heartbeat" || this.role !== "follower") return false;
    if (m.term !== this.term || m.from !== this.lead) return false;
    if (this.log.committed !== m.commit || this.log.lastIndex() !== m.commit) return false;
    this.electionElapsed = 0;
    this.quiesced = true;
    return true;
  }

  /**
   * Leaves quiescence (no-op otherwise). A follower restarts its election timer from 0. A leader
   * heartbeats at once and starts a fresh CheckQuorum round counting every follower as recently
   * active, so that the quiet period cannot make it step down.
   */
  wake(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.electionElapsed = 0;
    if (this.role !== "leader") return;
    this.heartbeatElapsed = 0;
    for (const pr of this.progress.values()) pr.recentActive = true;
    this.broadcastHeartbeat(this.readOnly.lastPendingContext());
  }

  // ---------------------------------------------------------------- host reports

  reportUnreachable(id: NodeId): void {
    if (this.role === "leader") this.wake();
    const pr = this.progress.get(id);
    if (this.role === "leader" && pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role === "leader") this.wake();
    const pr = this.progress.get(id);
    if (this.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    // Wait for the follower's answer (or the next heartbeat's) before probing again.
    pr.becomeProbe();
    pr.probeSent = true;
  }

  /** Bytes of committed payload were applied: they no longer count against the overload limit. */
  reduceUncommitted(bytes: number): void {
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  /** Decodes and applies the membership changes among applied entries. */
  applyConfEntries(ents: readonly Entry[]): void {
    for (const e of ents) if (e.type === "conf") this.applyConfChange(decodeConfChange(e.data));
  }
}

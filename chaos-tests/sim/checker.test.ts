/**
 * Negative controls for the checker: hand-built histories that break one invariant each must be
 * rejected with that invariant's name, and a consistent history must pass. (A checker is trusted
 * only once it has caught a planted bug; sim.test.ts plants bugs in the simulated host as well.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LogIndex, NodeId, Term } from "../../src/lib/ids.js";
import type { Entry } from "../../src/raft/index.js";
import { Checker, InvariantViolation, type Invariant } from "./checker.js";
import type { LogView } from "./log-view.js";
import { encodeProposal, StateMachine } from "./state-machine.js";

const HS0 = { term: 0, vote: 0, commit: 0 };

function entry(index: LogIndex, term: Term, text = ""): Entry {
  return { index, term, type: "normal", data: encodeProposal(text) };
}

/** A log view over a plain array of entries starting at index 1. */
function view(entries: readonly Entry[]): LogView {
  return {
    firstIndex: 1,
    lastIndex: entries.length,
    entryAt: (i) => entries[i - 1],
    termAt: (i) => (i === 0 ? 0 : entries[i - 1]?.term),
  };
}

function checkerWith(nodes: readonly NodeId[]): Checker {
  const c = new Checker();
  for (const n of nodes) c.onStart(n, HS0, 0);
  return c;
}

function assertViolation(invariant: Invariant, fn: () => void): InvariantViolation {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof InvariantViolation, `expected an InvariantViolation (${invariant}), got ${String(caught)}`);
  assert.equal(caught.invariant, invariant, caught.message);
  assert.match(caught.message, new RegExp(`invariant ${invariant} violated`));
  return caught;
}

test("checker: two leaders in one term violate election safety, naming both nodes and the term", () => {
  const c = checkerWith([1, 2]);
  c.onLeader(1, 3);
  c.onLeader(1, 3); // the same leader again is fine
  c.onLeader(2, 4); // another term is fine
  const v = assertViolation("electionSafety", () => c.onLeader(2, 3));
  assert.deepEqual(v.nodes, [1, 2]);
  assert.equal(v.term, 3);
});

test("checker: a leader-only message from a second node in a term violates election safety", () => {
  const c = checkerWith([1, 2]);
  c.onLeader(1, 5);
  const hb = { type: "heartbeat", from: 2, to: 3, term: 5, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: undefined, context: "", quiesce: false } as const;
  assertViolation("electionSafety", () => c.onSend(hb));
});

test("checker: same index and term with different contents violates log matching", () => {
  const c = checkerWith([1, 2]);
  c.onEntries(1, 0, 0, [entry(1, 1, "a"), entry(2, 1, "b")]);
  c.onEntries(2, 0, 0, [entry(1, 1, "a")]);
  assertViolation("logMatching", () => c.onEntries(2, 1, 1, [entry(2, 1, "X")]));
});

test("checker: same entry after different predecessors violates log matching", () => {
  const c = checkerWith([1, 2]);
  c.onEntries(1, 0, 0, [entry(1, 1), entry(2, 2, "x")]);
  c.onEntries(2, 0, 0, [entry(1, 2)]);
  assertViolation("logMatching", () => c.onEntries(2, 1, 2, [entry(2, 2, "x")]));
});

test("checker: terms going down within one log violate log matching", () => {
  const c = checkerWith([1]);
  assertViolation("logMatching", () => c.onEntries(1, 0, 0, [entry(1, 3), entry(2, 2)]));
});

test("checker: a leader missing a committed entry of an earlier term violates leader completeness", () => {
  const c = checkerWith([1, 2]);
  const committed = [entry(1, 1), entry(2, 1, "p1")];
  c.onMemHardState(1, { term: 1, vote: 1, commit: 2 });
  c.onCommit(1, 1, 2, view(committed));
  const v = assertViolation("leaderCompleteness", () => c.checkLeader(2, 2, view([entry(1, 1), entry(2, 2)]), true));
  assert.equal(v.index, 2);
  assert.equal(v.term, 2);
  // ... and a leader whose log is too short, when its whole log is known.
  const c2 = checkerWith([1, 2]);
  c2.onCommit(1, 1, 2, view(committed));
  assertViolation("leaderCompleteness", () => c2.checkLeader(2, 2, view([entry(1, 1)]), true));
});

test("checker: entries committed in the leader's own term or later are not required of it", () => {
  const c = checkerWith([1, 2]);
  c.onCommit(1, 3, 2, view([entry(1, 1), entry(2, 3, "p")]));
  c.checkLeader(2, 3, view([entry(1, 1)]), true); // committed in term 3: a term-3 leader need not have it
});

test("checker: two nodes applying different entries at one index violate state machine safety", () => {
  const c = checkerWith([1, 2]);
  c.onMemHardState(1, { term: 1, vote: 0, commit: 1 });
  c.onMemHardState(2, { term: 2, vote: 0, commit: 1 });
  c.onApply(1, 1, entry(1, 1), 0);
  assertViolation("stateMachineSafety", () => c.onApply(2, 2, entry(1, 2), 0));
});

test("checker: applying out of order or beyond the commit index violates apply order", () => {
  const c = checkerWith([1]);
  c.onMemHardState(1, { term: 1, vote: 0, commit: 1 });
  assertViolation("applyOrder", () => c.onApply(1, 1, entry(2, 1), 0));
  assertViolation("applyOrder", () => c.onApply(1, 1, entry(2, 1), 1));
});

test("checker: commit going back in memory or on disk violates commit monotonicity", () => {
  const c = checkerWith([1]);
  c.onMemHardState(1, { term: 1, vote: 1, commit: 5 });
  assertViolation("commitMonotonic", () => c.onMemHardState(1, { term: 1, vote: 1, commit: 4 }));
  c.onPersistHardState(1, { term: 1, vote: 1, commit: 5 });
  assertViolation("commitMonotonic", () => c.onPersistHardState(1, { term: 1, vote: 1, commit: 3 }));
  // A restart from a disk whose commit went back is caught too.
  assertViolation("commitMonotonic", () => c.onStart(1, { term: 1, vote: 1, commit: 2 }, 2));
});

test("checker: a vote changed within a term violates vote stability", () => {
  const c = checkerWith([1]);
  c.onPersistHardState(1, { term: 2, vote: 3, commit: 0 });
  assertViolation("voteStability", () => c.onPersistHardState(1, { term: 2, vote: 4, commit: 0 }));
});

test("checker: a read served below what was committed when it was issued violates read linearizability", () => {
  const c = checkerWith([1]);
  c.onCommit(1, 1, 3, view([entry(1, 1), entry(2, 1, "a"), entry(3, 1, "b")]));
  c.onReadIssued("r1");
  assertViolation("readLinearizability", () => c.onReadServed(1, "r1", 2));
  c.onReadIssued("r2");
  assert.equal(c.onReadServed(1, "r2", 3), true);
  assert.equal(c.onReadServed(1, "r2", 3), false); // a duplicate answer is ignored
});

test("checker: proposals accepted by a non-leader, moved, or invented violate proposal safety", () => {
  const c = checkerWith([1, 2]);
  assertViolation("proposalSafety", () => c.onProposed(2, false, "p1", { ok: true, index: 1, term: 1 }));
  c.onProposed(1, true, "p2", { ok: true, index: 2, term: 1 });
  c.onMemHardState(1, { term: 1, vote: 1, commit: 3 });
  c.onApply(1, 1, entry(1, 1), 0);
  assertViolation("proposalSafety", () => c.onApply(1, 1, entry(2, 1, "p9"), 1));
  const c2 = checkerWith([1]);
  c2.onProposed(1, true, "p2", { ok: true, index: 2, term: 1 });
  c2.onMemHardState(1, { term: 1, vote: 1, commit: 3 });
  c2.onApply(1, 1, entry(1, 1), 0);
  assertViolation("proposalSafety", () => c2.onApply(1, 1, entry(2, 2, "p2"), 1));
});

test("checker: a snapshot whose data disagrees with what was applied violates state machine safety", () => {
  const c = checkerWith([1, 2]);
  c.onProposed(1, true, "a", { ok: true, index: 2, term: 1 });
  c.onMemHardState(1, { term: 1, vote: 0, commit: 2 });
  c.onApply(1, 1, entry(1, 1), 0);
  c.onApply(1, 1, entry(2, 1, "a"), 1);
  const forged = StateMachine.empty();
  forged.apply(entry(1, 1));
  forged.apply(entry(2, 1, "b"));
  assertViolation("stateMachineSafety", () => c.onRestore(2, { index: 2, term: 1, confState: { voters: [1], learners: [] } }, forged));
});

test("checker: a vote grant that leaves before the vote is durable violates vote durability", () => {
  const c = checkerWith([1, 2]);
  assertViolation("voteDurability", () => c.onVoteGrantSent(1, 2, 3, { term: 3, vote: 0, commit: 0 })); // vote only in memory
  assertViolation("voteDurability", () => c.onVoteGrantSent(1, 2, 3, { term: 2, vote: 0, commit: 0 })); // not even the term
  assertViolation("voteDurability", () => c.onVoteGrantSent(1, 2, 3, { term: 3, vote: 4, commit: 0 }));
  c.onVoteGrantSent(1, 2, 3, { term: 3, vote: 2, commit: 0 });
  c.onVoteGrantSent(1, 2, 3, { term: 4, vote: 0, commit: 0 }); // a durable later term keeps the promise too
});

test("checker: an append acknowledgement that leaves before its entries are durable violates ack durability", () => {
  const c = checkerWith([1, 2]);
  const v = assertViolation("ackDurability", () => c.onAckSent(2, 1, 3, 7, false, 3));
  assert.equal(v.index, 7);
  c.onAckSent(2, 1, 3, 7, true, 3);
  c.onAckSent(2, 1, 3, 7, false, 4); // superseded: the node moved on to term 4 (and truncated for its leader)
});

test("checker: a leader commit not durable on a quorum violates commit durability", () => {
  const c = checkerWith([1, 2, 3]);
  assertViolation("commitDurability", () => c.onCommitDurability(1, 2, 5, [2], [1, 2, 3]));
  assertViolation("commitDurability", () => c.onCommitDurability(1, 2, 5, [1, 2], [1, 2, 3, 4]));
  c.onCommitDurability(1, 2, 5, [2, 3], [1, 2, 3]); // followers alone may form the quorum (thesis §10.2.1)
});

test("checker: a leader committing an entry of an earlier term by counting violates the commit rule", () => {
  const c = checkerWith([1]);
  const v = assertViolation("leaderCommitRule", () => c.onLeaderCommit(1, 4, 2, 2));
  assert.equal(v.index, 2);
  c.onLeaderCommit(1, 4, 3, 4);
});

test("checker: a consistent history passes", () => {
  const c = checkerWith([1, 2, 3]);
  const log = [entry(1, 1), entry(2, 1, "p1"), entry(3, 2), entry(4, 2, "p2")];
  c.onLeader(1, 1);
  c.onProposed(1, true, "p1", { ok: true, index: 2, term: 1 });
  for (const n of [1, 2]) c.onEntries(n, 0, 0, log.slice(0, 2));
  c.onMemHardState(1, { term: 1, vote: 1, commit: 2 });
  c.onCommit(1, 1, 2, view(log.slice(0, 2)));
  c.onLeader(2, 2);
  c.onEntries(2, 2, 1, log.slice(2));
  c.onProposed(2, true, "p2", { ok: true, index: 4, term: 2 });
  c.checkLeader(2, 2, view(log), true);
  c.onMemHardState(2, { term: 2, vote: 2, commit: 4 });
  c.onCommit(2, 2, 4, view(log));
  c.onReadIssued("r1");
  for (const n of [1, 2]) {
    c.onMemHardState(n, { term: 2, vote: n, commit: 4 });
    log.forEach((e, i) => c.onApply(n, 2, e, i));
  }
  assert.equal(c.onReadServed(3, "r1", 4), true);
  assert.equal(c.isApplied("p1") && c.isApplied("p2"), true);
});

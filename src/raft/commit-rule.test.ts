/**
 * The commit rule of Raft (thesis §3.6.2, Figure 3.7; Figure 8 of the Raft paper): a leader never
 * commits an entry of an earlier term by counting replicas. Only an entry of its own term commits by
 * counting, and with it everything before it.
 *
 * The paper's scenario, five servers, with this implementation's terms (a leader appends a no-op
 * of its term when elected, so S5's entry at index 2 is its no-op and its client entry "y" is at 3):
 *
 *   (a) S1 leads term 1; index 1 (the no-op) is committed everywhere. Cut off, S1 appends "x" at
 *       index 2 in term 1.
 *   (b) S5 is elected in term 2 by S2, S3, S4 and appends (2,t2) and "y" (3,t2), replicated nowhere.
 *   (c) S5 crashes; S1 restarts and is elected in term 3, appends its no-op (3,t3), and replicates
 *       "x" (2,t1) to S2, S3 and S4 — but the messages carrying (3,t3) are lost.
 *                 idx  1  2  3
 *            S1        1  1  3     "x" is on S1..S4: a majority (4 of 5!) ...
 *            S2..S4    1  1        ... yet not committed: it is of term 1, S1 leads term 3
 *            S5        1  2  2
 *   (d) S1 crashes; S5 restarts and wins term 4 (its last term 2 beats their last term 1) and
 *       overwrites index 2 everywhere. Had S1 committed "x" in (c), a committed entry would be lost.
 *   (e) The other branch: S1's (3,t3) reaches a majority in (c). That commits 3 and with it 2, and
 *       S5 can no longer win an election.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "./messages.js";
import { Harness, bytes } from "./testing/harness.js";
import { Held, electUntilLeader, storedLog } from "./testing/script-kit.js";

const OTHERS_OF_1 = [2, 3, 4] as const;

/** Plays (a) to (c). Returns the harness and the held messages that would give S2..S4 the entry (3,t3). */
function playToC(): { h: Harness; currentTermEntries: Held } {
  // maxMsgBytes 1: every append carries exactly one entry, so (2,t1) and (3,t3) travel separately.
  // checkQuorum off: no leases, so that a scripted election is not refused within a lease.
  const h = new Harness([1, 2, 3, 4, 5], { checkQuorum: false, maxMsgBytes: 1 });

  // (a)
  h.elect(1);
  for (const id of [1, 2, 3, 4, 5]) assert.equal(h.get(id).node.status().commit, 1);
  h.partition(1);
  assert.equal(h.get(1).node.propose(bytes("x")).ok, true);
  h.stabilize();
  assert.deepEqual(storedLog(h.get(1).storage), [
    { index: 1, term: 1 },
    { index: 2, term: 1 },
  ]);

  // (b) S5's appends reach nobody.
  h.filter = (m) => !(m.from === 5 && m.type === "app");
  h.elect(5);
  assert.equal(h.get(5).node.status().role, "leader");
  assert.equal(h.get(5).node.status().term, 2);
  assert.equal(h.get(5).node.propose(bytes("y")).ok, true);
  h.stabilize();
  assert.deepEqual(storedLog(h.get(5).storage).map((e) => e.term), [1, 2, 2]);
  h.partition(5);
  h.filter = () => true;

  // (c) S1 restarts; an append that would put an entry of term 3 into a follower's log is held back.
  h.restart(1);
  for (const id of OTHERS_OF_1) h.isolate(1, id, false);
  const currentTermEntries = new Held(h, (m: Message) => m.from === 1 && m.type === "app" && m.entries.some((e) => e.term === 3) && wouldAccept(h, m));
  electUntilLeader(h, 1);
  assert.equal(h.get(1).node.status().term, 3);
  h.stabilize();
  return { h, currentTermEntries };
}

/** Whether the receiver's log matches the append's (index, logTerm), i.e. it would take the entries. */
function wouldAccept(h: Harness, m: Message): boolean {
  const s = h.get(m.to).storage;
  return m.index <= s.lastIndex() && s.term(m.index) === m.logTerm;
}

test("Figure 8 (c): an entry of an earlier term on a majority is NOT committed by counting replicas", () => {
  const { h, currentTermEntries } = playToC();
  const leader = h.get(1).node.status();
  assert.equal(leader.role, "leader");
  for (const id of [1, ...OTHERS_OF_1]) {
    assert.deepEqual(storedLog(h.get(id).storage)[1], { index: 2, term: 1 }, `S${id} stores "x" at (2,t1)`);
  }
  const acked = [...leader.progress!.values()].filter((p) => p.match >= 2).length;
  assert.equal(acked, 4, "the leader knows S1..S4 hold index 2: a naive count would commit it");
  assert.ok(currentTermEntries.messages.length > 0, "(3,t3) is on S1 only");
  for (const id of [1, 2, 3, 4]) assert.equal(h.get(id).node.status().commit, 1, `S${id}: index 2 is not committed`);
  assert.deepEqual(h.appliedData(1), [], '"x" is not applied');
});

test("Figure 8 (d): the scenario is real — the uncommitted entry of term 1 is overwritten by S5", () => {
  const { h, currentTermEntries } = playToC();
  currentTermEntries.drop();
  h.heal(); // removes the filter; now cut S1 and let S5 back
  h.partition(1);
  h.restart(5);
  electUntilLeader(h, 5);
  const s5 = h.get(5).node.status();
  assert.equal(s5.term, 4, "S5's log (last term 2) is more up to date than S2..S4's (last term 1)");
  h.stabilize();
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(
      storedLog(h.get(id).storage).map((e) => e.term),
      [1, 2, 2, 4],
      `S${id}: index 2 now holds S5's entry of term 2`,
    );
    assert.deepEqual(h.appliedData(id), ["y"], `S${id} applied "y" and never "x"`);
    assert.equal(h.get(id).node.status().commit, 4);
  }
  // Had S1 counted replicas in (c) and committed "x", a committed (and maybe acknowledged) entry
  // would now be gone: the commit rule is what makes this history safe.
});

test("Figure 8 (e): once an entry of the leader's own term is on a majority, the earlier one commits with it and survives", () => {
  const { h, currentTermEntries } = playToC();
  // (3,t3) reaches S2 and S3 (not S4).
  currentTermEntries.release((m) => m.to === 2 || m.to === 3);
  currentTermEntries.drop();
  h.heal();
  h.partition(4); // S4 stays behind, as in the paper
  h.partition(5);
  h.isolate(1, 2, false);
  h.isolate(1, 3, false);
  h.isolate(2, 3, false);
  h.tick(1); // a heartbeat round lets the leader resend what the held messages carried
  assert.equal(h.get(1).node.status().commit, 3, "S1, S2, S3 hold (3,t3): index 3 commits, and index 2 with it");
  assert.deepEqual(h.appliedData(1), ["x"]);

  // S1 crashes. S5 is back but cannot win: S2 and S3 have a more up-to-date log (last term 3).
  h.heal();
  h.partition(1);
  h.restart(5);
  for (let i = 0; i < 5; i++) h.elect(5);
  assert.notEqual(h.get(5).node.status().role, "leader", "S5 gets at most S4's vote and its own");

  electUntilLeader(h, 2);
  h.stabilize();
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(h.appliedData(id), ["x"], `S${id} applies "x"; "y" of term 2 is overwritten instead`);
    assert.equal(storedLog(h.get(id).storage)[1]!.term, 1);
  }
});

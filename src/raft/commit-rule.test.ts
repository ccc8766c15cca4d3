/**
 * The commit rule of Raft (thesis §3.6.2, Figure 3.7; Figure 8 of the Raft paper): a leader never
 * commits an entry of an earlier term by counting replicas. Only an entry of its own term commits by
 * counting, and with it everything before it.
 *
 * The paper's scenario, five servers, with this implementation's indexes and terms: every server
 * starts from the bootstrap snapshot at (1,t1), so the first election is of term 2; and a leader
 * appends a no-op of its term when elected, so S5's entry at index 3 is its no-op and its client
 * entry "y" is at 4. Everything is one index and one term later than in the paper.
 *
 *   (a) S1 leads term 2; index 2 (the no-op) is committed everywhere. Cut off, S1 appends "x" at
 *       index 3 in term 2.
 *   (b) S5 is elected in term 3 by S2, S3, S4 and appends (3,t3) and "y" (4,t3), replicated nowhere.
 *   (c) S5 crashes; S1 restarts and is elected in term 4, appends its no-op (4,t4), and replicates
 *       "x" (3,t2) to S2, S3 and S4 — but the messages carrying (4,t4) are lost.
 *                 idx  1* 2  3  4     (* the bootstrap snapshot, compacted)
 *            S1        1  2  2  4     "x" is on S1..S4: a majority (4 of 5!) ...
 *            S2..S4    1  2  2        ... yet not committed: it is of term 2, S1 leads term 4
 *            S5        1  2  3  3
 *   (d) S1 crashes; S5 restarts and wins term 5 (its last term 3 beats their last term 2) and
 *       overwrites index 3 everywhere. Had S1 committed "x" in (c), a committed entry would be lost.
 *   (e) The other branch: S1's (4,t4) reaches a majority in (c). That commits 4 and with it 3, and
 *       S5 can no longer win an election.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "./messages.js";
import { Harness, bytes } from "./testing/harness.js";
import { Held, electUntilLeader, storedLog } from "./testing/script-kit.js";

const OTHERS_OF_1 = [2, 3, 4] as const;

/** Plays (a) to (c). Returns the harness and the held messages that would give S2..S4 the entry (4,t4). */
function playToC(): { h: Harness; currentTermEntries: Held } {
  // maxMsgBytes 1: every append carries exactly one entry, so (3,t2) and (4,t4) travel separately.
  // checkQuorum off: no leases, so that a scripted election is not refused within a lease.
  const h = new Harness([1, 2, 3, 4, 5], { checkQuorum: false, maxMsgBytes: 1 });

  // (a)
  h.elect(1);
  assert.equal(h.get(1).node.status().term, 2);
  for (const id of [1, 2, 3, 4, 5]) assert.equal(h.get(id).node.status().commit, 2);
  h.partition(1);
  assert.equal(h.get(1).node.propose(bytes("x")).ok, true);
  h.stabilize();
  assert.deepEqual(storedLog(h.get(1).storage), [
    { index: 2, term: 2 },
    { index: 3, term: 2 },
  ]);

  // (b) S5's appends reach nobody.
  h.filter = (m) => !(m.from === 5 && m.type === "app");
  h.elect(5);
  assert.equal(h.get(5).node.status().role, "leader");
  assert.equal(h.get(5).node.status().term, 3);
  assert.equal(h.get(5).node.propose(bytes("y")).ok, true);
  h.stabilize();
  assert.deepEqual(storedLog(h.get(5).storage), [
    { index: 2, term: 2 },
    { index: 3, term: 3 },
    { index: 4, term: 3 },
  ]);
  h.partition(5);
  h.filter = () => true;

  // (c) S1 restarts; an append that would put an entry of term 4 into a follower's log is held back.
  h.restart(1);
  for (const id of OTHERS_OF_1) h.isolate(1, id, false);
  const currentTermEntries = new Held(h, (m: Message) => m.from === 1 && m.type === "app" && m.entries.some((e) => e.term === 4) && wouldAccept(h, m));
  electUntilLeader(h, 1);
  assert.equal(h.get(1).node.status().term, 4);
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
    assert.deepEqual(storedLog(h.get(id).storage)[1], { index: 3, term: 2 }, `S${id} stores "x" at (3,t2)`);
  }
  const acked = [...leader.progress!.values()].filter((p) => p.match >= 3).length;
  assert.equal(acked, 4, "the leader knows S1..S4 hold index 3: a naive count would commit it");
  assert.ok(currentTermEntries.messages.length > 0, "(4,t4) is on S1 only");
  for (const id of [1, 2, 3, 4]) assert.equal(h.get(id).node.status().commit, 2, `S${id}: index 3 is not committed`);
  assert.deepEqual(h.appliedData(1), [], '"x" is not applied');
});

test("Figure 8 (d): the scenario is real — the uncommitted entry of term 2 is overwritten by S5", () => {
  const { h, currentTermEntries } = playToC();
  currentTermEntries.drop();
  h.heal(); // removes the filter; now cut S1 and let S5 back
  h.partition(1);
  h.restart(5);
  electUntilLeader(h, 5);
  const s5 = h.get(5).node.status();
  assert.equal(s5.term, 5, "S5's log (last term 3) is more up to date than S2..S4's (last term 2)");
  h.stabilize();
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(
      storedLog(h.get(id).storage).map((e) => e.term),
      [2, 3, 3, 5],
      `S${id}: index 3 now holds S5's entry of term 3`,
    );
    assert.deepEqual(h.appliedData(id), ["y"], `S${id} applied "y" and never "x"`);
    assert.equal(h.get(id).node.status().commit, 5);
  }
  // Had S1 counted replicas in (c) and committed "x", a committed (and maybe acknowledged) entry
  // would now be gone: the commit rule is what makes this history safe.
});

test("Figure 8 (e): once an entry of the leader's own term is on a majority, the earlier one commits with it and survives", () => {
  const { h, currentTermEntries } = playToC();
  // (4,t4) reaches S2 and S3 (not S4).
  currentTermEntries.release((m) => m.to === 2 || m.to === 3);
  currentTermEntries.drop();
  h.heal();
  h.partition(4); // S4 stays behind, as in the paper
  h.partition(5);
  h.isolate(1, 2, false);
  h.isolate(1, 3, false);
  h.isolate(2, 3, false);
  h.tick(1); // a heartbeat round lets the leader resend what the held messages carried
  assert.equal(h.get(1).node.status().commit, 4, "S1, S2, S3 hold (4,t4): index 4 commits, and index 3 with it");
  assert.deepEqual(h.appliedData(1), ["x"]);

  // S1 crashes. S5 is back but cannot win: S2 and S3 have a more up-to-date log (last term 4).
  h.heal();
  h.partition(1);
  h.restart(5);
  for (let i = 0; i < 5; i++) h.elect(5);
  assert.notEqual(h.get(5).node.status().role, "leader", "S5 gets at most S4's vote and its own");

  electUntilLeader(h, 2);
  h.stabilize();
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(h.appliedData(id), ["x"], `S${id} applies "x"; "y" of term 3 is overwritten instead`);
    assert.deepEqual(storedLog(h.get(id).storage)[1], { index: 3, term: 2 }, `S${id} keeps "x" at (3,t2)`);
  }
});

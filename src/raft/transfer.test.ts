/**
 * Leadership transfer (thesis §3.10): the leader brings the transferee's log up to date, then tells
 * it to campaign at once (timeoutNow); the transferee's election ignores leases. Proposals stop
 * while a transfer runs, and a transfer that does not finish within an election timeout is dropped.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "./messages.js";
import { Harness, bytes } from "./testing/harness.js";
import { deliveredOf, leads, learnerHarness, roles } from "./testing/election-kit.js";

const ELECTION_TICKS = 10;

function line(m: Message): string {
  return `${m.type} ${m.from}->${m.to} t${m.term}`;
}

test("transfer to an up-to-date follower: timeoutNow, the follower wins the next term, the old leader follows", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();

  h.get(1).node.transferLeadership(2);
  assert.equal(h.get(1).node.status().leadTransferee, 2);
  h.stabilize();

  assert.deepEqual(deliveredOf(h, "timeoutNow").map(line), ["timeoutNow 1->2 t2"]);
  // The followers are inside their lease, yet grant: the transfer's vote requests say so.
  const votes = deliveredOf(h, "vote").filter((m) => m.from === 2);
  assert.equal(votes.length, 2);
  for (const m of votes) assert.equal(m.context, "transfer");
  assert.equal(deliveredOf(h, "preVote").filter((m) => m.term === 3).length, 0, "no pre-vote round for a transfer");

  assert.deepEqual(roles(h), { 1: "follower@3", 2: "leader@3", 3: "follower@3" });
  assert.deepEqual(leads(h), { 1: 2, 2: 2, 3: 2 });
  assert.equal(h.get(2).node.propose(bytes("b")).ok, true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["a", "b"]);
});

test("transfer to a lagging follower: the leader catches it up first, then sends timeoutNow", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  for (const d of ["a", "b", "c"]) assert.equal(h.get(1).node.propose(bytes(d)).ok, true);
  h.stabilize();
  const leaderLast = h.get(1).node.status().lastIndex;
  assert.ok(h.get(3).node.status().lastIndex < leaderLast, "3 lags behind");

  h.heal();
  let transfereeLastAtTimeoutNow = -1;
  h.filter = (m) => {
    if (m.type === "timeoutNow") transfereeLastAtTimeoutNow = h.get(3).storage.lastIndex();
    return true;
  };
  const mark = h.delivered.length;
  h.get(1).node.transferLeadership(3);
  h.stabilize();

  assert.equal(transfereeLastAtTimeoutNow, leaderLast, "timeoutNow only once 3 holds the leader's whole log");
  const after = h.delivered.slice(mark);
  const timeoutNowAt = after.findIndex((m) => m.type === "timeoutNow");
  const lastAppendTo3 = after.map((m, i) => (m.type === "app" && m.to === 3 && m.entries.length > 0 ? i : -1)).reduce((a, b) => Math.max(a, b));
  assert.ok(lastAppendTo3 >= 0 && lastAppendTo3 < timeoutNowAt, "entries went to 3 before timeoutNow");

  assert.deepEqual(roles(h), { 1: "follower@3", 2: "follower@3", 3: "leader@3" });
  assert.deepEqual(h.appliedData(3), ["a", "b", "c"]);
});

test("proposals are rejected with reason 'transferring' while a transfer is in progress", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();

  h.get(1).node.transferLeadership(3); // 3 lags and cannot be reached: the transfer stays pending
  h.stabilize();
  assert.equal(h.get(1).node.status().leadTransferee, 3);
  assert.deepEqual(h.get(1).node.propose(bytes("b")), { ok: false, reason: "transferring", lead: 1 });
  assert.deepEqual(h.get(1).node.proposeConfChange({ type: "addLearner", nodeId: 4 }), { ok: false, reason: "transferring", lead: 1 });
  h.stabilize();
  assert.deepEqual(h.appliedData(2), ["a"], "nothing was appended");
});

test("a transfer to an unreachable node is abandoned after an election timeout; the leader stays", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();

  h.get(1).node.transferLeadership(3);
  h.stabilize();
  h.tick(ELECTION_TICKS - 1, [1, 2]);
  assert.equal(h.get(1).node.status().leadTransferee, 3, "still trying one tick before the timeout");
  assert.equal(h.get(1).node.propose(bytes("early")).ok, false);
  h.tick(1, [1, 2]);
  assert.equal(h.get(1).node.status().leadTransferee, 0, "abandoned");
  assert.equal(deliveredOf(h, "timeoutNow").length, 0);
  assert.deepEqual(roles(h), { 1: "leader@2", 2: "follower@2", 3: "follower@2" });
  assert.equal(h.get(1).node.propose(bytes("b")).ok, true, "proposals accepted again");
  h.stabilize();
  assert.deepEqual(h.appliedData(2), ["a", "b"]);
});

test("a transfer to a node that becomes reachable within the election timeout completes", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();
  h.get(1).node.transferLeadership(3);
  h.tick(ELECTION_TICKS / 2, [1, 2]);
  assert.equal(h.get(1).node.status().leadTransferee, 3);

  h.heal();
  h.tick(1, [1, 2]); // a heartbeat answer shows 3 lags: the leader sends it the entries, then timeoutNow
  assert.deepEqual(roles(h), { 1: "follower@3", 2: "follower@3", 3: "leader@3" });
  assert.deepEqual(h.appliedData(3), ["a"]);
});

test("a new transfer request replaces the pending one", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  h.get(1).node.transferLeadership(3);
  h.stabilize();
  assert.equal(h.get(1).node.status().leadTransferee, 3);
  h.get(1).node.transferLeadership(2);
  h.stabilize();
  assert.deepEqual(deliveredOf(h, "timeoutNow").map(line), ["timeoutNow 1->2 t2"]);
  assert.equal(h.leader()!.id, 2);
  assert.equal(h.get(1).node.status().lead, 2);
});

test("transfer to self, to a non-member, to a learner, or asked of a follower is ignored", () => {
  const h = learnerHarness([1, 2, 3], [4]);
  h.elect(1);
  for (const target of [1, 9, 4]) {
    h.get(1).node.transferLeadership(target);
    assert.equal(h.get(1).node.status().leadTransferee, 0, `transfer to ${target}`);
    assert.equal(h.get(1).node.propose(bytes(`to-${target}`)).ok, true, `transfer to ${target}: proposals still accepted`);
    h.stabilize();
  }
  h.get(2).node.transferLeadership(3); // not the leader
  assert.equal(h.get(2).node.status().leadTransferee, 0);
  h.tick(3 * ELECTION_TICKS);

  assert.equal(deliveredOf(h, "timeoutNow").length, 0);
  assert.deepEqual(roles(h), { 1: "leader@2", 2: "follower@2", 3: "follower@2", 4: "follower@2" });
  assert.deepEqual(h.appliedData(4), ["to-1", "to-9", "to-4"]);
});

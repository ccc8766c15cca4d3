/**
 * Single-server membership changes (thesis §4.1): learners, promotion, adding and removing voters
 * (the leader included), one change at a time, the no-op-first rule, and quorums that follow the
 * membership.
 *
 * A joining node here starts from `MemoryStorage.bootstrap(<the group's membership>)`, like the
 * original members, and replays the log's membership changes on top. (Starting from an empty storage
 * is the subject of the last test.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NodeId } from "../lib/ids.js";
import type { ConfChange } from "./messages.js";
import { MemoryStorage } from "./storage.js";
import { Harness, bytes } from "./testing/harness.js";
import { tickUntil } from "./testing/script-kit.js";

/** Leader 1 of {1,2,3}, its no-op committed. */
function cluster(voters: readonly NodeId[] = [1, 2, 3]): Harness {
  const h = new Harness(voters);
  h.elect(1);
  assert.equal(h.get(1).node.status().role, "leader");
  return h;
}

/** Proposes `cc` on the leader, asserts it was accepted, and lets it commit and apply everywhere. */
function change(h: Harness, cc: ConfChange, leader: NodeId = 1): void {
  const r = h.get(leader).node.proposeConfChange(cc);
  assert.equal(r.ok, true, `${cc.type} ${cc.nodeId}: ${JSON.stringify(r)}`);
  h.stabilize();
  assert.ok(h.get(leader).node.status().applied >= (r.ok ? r.index : 0), "applied on the leader");
}

/** Starts node `id` from the bootstrap membership of the group and waits until it caught up with the leader. */
function join(h: Harness, id: NodeId, leader: NodeId = 1): void {
  h.add(id, MemoryStorage.bootstrap([1, 2, 3]));
  tickUntil(h, () => h.get(id).node.status().commit === h.get(leader).node.status().commit, 20);
}

function commitOf(h: Harness, id: NodeId): number {
  return h.get(id).node.status().commit;
}

test("learners receive entries but do not count for the quorum, and never campaign", () => {
  const h = cluster();
  change(h, { type: "addLearner", nodeId: 4 });
  join(h, 4);
  change(h, { type: "addLearner", nodeId: 5 });
  join(h, 5);
  const leader = h.get(1).node;
  const conf = { voters: [1, 2, 3], learners: [4, 5] };
  assert.deepEqual(leader.status().confState, conf);
  assert.deepEqual(h.get(4).node.status().confState, conf);
  assert.equal(leader.status().progress!.get(4)!.isLearner, true);

  leader.propose(bytes("a"));
  h.stabilize();
  assert.deepEqual(h.appliedData(4), ["a"], "they receive and apply entries");
  assert.deepEqual(h.appliedData(5), ["a"]);

  // Only the learners are reachable: they store and acknowledge "b", which still does not commit
  // (counting them as voters would make 3 of 5).
  h.isolate(1, 2);
  h.isolate(1, 3);
  const before = commitOf(h, 1);
  const r = leader.propose(bytes("b"));
  assert.ok(r.ok);
  h.stabilize();
  for (const id of [4, 5]) {
    assert.equal(h.get(id).storage.lastIndex(), r.index, `learner ${id} has the entry`);
    assert.equal(leader.status().progress!.get(id)!.match, r.index, `and acknowledged it`);
  }
  assert.equal(commitOf(h, 1), before, "leader + 2 learners is not a quorum of {1,2,3}");
  h.heal();
  h.tick(1);
  assert.equal(commitOf(h, 1), r.index, "a voter's ack commits it");

  // Cut off for a long time, the learner never starts an election.
  h.partition(4);
  const term = h.get(4).node.status().term;
  h.tick(60);
  h.get(4).node.campaign();
  h.stabilize();
  assert.equal(h.get(4).node.status().role, "follower");
  assert.equal(h.get(4).node.status().term, term);
});

test("addVoter promotes a learner: it then counts for the quorum and may campaign", () => {
  const h = cluster();
  change(h, { type: "addLearner", nodeId: 4 });
  join(h, 4);
  change(h, { type: "addVoter", nodeId: 4 });
  h.stabilize();
  for (const id of [1, 2, 3, 4]) assert.deepEqual(h.get(id).node.status().confState, { voters: [1, 2, 3, 4], learners: [] }, `node ${id}`);
  const leader = h.get(1).node;
  assert.equal(leader.status().progress!.get(4)!.isLearner, false);

  // {1,2,3,4}: a quorum is 3. With 2 cut off, 1 + 3 + 4 commit; with 2 and 3 cut off, 1 + 4 do not.
  h.isolate(1, 2);
  let r = leader.propose(bytes("with 3 and 4"));
  h.stabilize();
  assert.ok(r.ok);
  assert.equal(commitOf(h, 1), r.index);
  h.isolate(1, 3);
  r = leader.propose(bytes("with 4 only"));
  h.stabilize();
  assert.ok(r.ok);
  assert.equal(commitOf(h, 1), r.index - 1, "2 of 4 is not a quorum");
  h.heal();
  h.tick(1);
  assert.equal(commitOf(h, 1), r.index);

  // Once it stops hearing from the leader, the new voter campaigns.
  h.partition(4);
  tickUntil(h, () => h.get(4).node.status().role !== "follower", 40, [4]);
  assert.equal(h.get(4).node.status().role, "preCandidate");
});

test("adding voters grows the quorum: after adding 2 voters to 3, a commit needs 3 acknowledgements", () => {
  const h = cluster();
  change(h, { type: "addVoter", nodeId: 4 });
  join(h, 4);
  change(h, { type: "addVoter", nodeId: 5 });
  join(h, 5);
  for (const id of [1, 2, 3, 4, 5]) assert.deepEqual(h.get(id).node.status().confState.voters, [1, 2, 3, 4, 5], `node ${id}`);

  // Leader + node 2 (2 acks) does not commit; leader + 2 + 3 (3 acks) does.
  for (const id of [3, 4, 5]) h.isolate(1, id);
  const leader = h.get(1).node;
  const r = leader.propose(bytes("x"));
  assert.ok(r.ok);
  h.stabilize();
  assert.equal(leader.status().progress!.get(2)!.match, r.index);
  assert.equal(commitOf(h, 1), r.index - 1, "2 of 5 acknowledgements");
  h.isolate(1, 3, false);
  h.tick(1);
  assert.equal(commitOf(h, 1), r.index, "3 of 5 acknowledgements");
  assert.equal(leader.status().progress!.get(4)!.match < r.index, true, "4 and 5 were not needed");
});

test("a voter added directly (not via learner) catches up and counts", () => {
  const h = cluster();
  change(h, { type: "addVoter", nodeId: 4 });
  join(h, 4);
  h.get(1).node.propose(bytes("a"));
  h.stabilize();
  assert.deepEqual(h.appliedData(4), ["a"]);
  assert.deepEqual(h.get(4).node.status().confState, { voters: [1, 2, 3, 4], learners: [] });
});

test("removing a follower: it stops receiving entries, applies its own removal and never campaigns; the quorum shrinks", () => {
  const h = cluster();
  change(h, { type: "removeNode", nodeId: 3 });
  const leader = h.get(1).node;
  assert.deepEqual(leader.status().confState, { voters: [1, 2], learners: [] });
  assert.equal(leader.status().progress!.has(3), false);
  assert.deepEqual(h.get(3).node.status().confState, { voters: [1, 2], learners: [] }, "node 3 applied its removal");

  const last3 = h.get(3).storage.lastIndex();
  leader.propose(bytes("a"));
  h.stabilize();
  assert.deepEqual(h.appliedData(2), ["a"]);
  assert.equal(h.get(3).storage.lastIndex(), last3, "node 3 gets nothing any more");
  const term3 = h.get(3).node.status().term;
  h.tick(60);
  assert.equal(h.get(3).node.status().term, term3, "node 3 never campaigned");
  assert.equal(h.get(1).node.status().role, "leader", "and never disturbed the leader");

  // {1,2}: both are needed.
  h.isolate(1, 2);
  const r = leader.propose(bytes("b"));
  h.stabilize();
  assert.ok(r.ok);
  assert.equal(commitOf(h, 1), r.index - 1);
  h.heal();
  h.tick(1);
  assert.equal(commitOf(h, 1), r.index);
});

test("removing the leader: it steps down once it applies its removal and hands over at once with timeoutNow", () => {
  const h = cluster();
  change(h, { type: "removeNode", nodeId: 1 });
  const one = h.get(1).node.status();
  assert.equal(one.role, "follower", "the removed leader stepped down");
  assert.deepEqual(one.confState, { voters: [2, 3], learners: [] });
  assert.ok(
    h.delivered.some((m) => m.type === "timeoutNow" && m.from === 1 && (m.to === 2 || m.to === 3)),
    "the leader handed over to an up-to-date voter",
  );
  const leaders = [2, 3].filter((id) => h.get(id).node.status().role === "leader");
  assert.equal(leaders.length, 1, "a new leader is elected without waiting for an election timeout (no tick happened)");
  const newLeader = leaders[0]!;
  for (const id of [2, 3]) assert.deepEqual(h.get(id).node.status().confState, { voters: [2, 3], learners: [] });

  const last1 = h.get(1).storage.lastIndex();
  h.get(newLeader).node.propose(bytes("after"));
  h.stabilize();
  for (const id of [2, 3]) assert.deepEqual(h.appliedData(id), ["after"]);
  assert.equal(h.get(1).storage.lastIndex(), last1, "the old leader is out of the group");
  h.tick(60);
  assert.notEqual(h.get(1).node.status().role, "leader");
  assert.equal(h.get(newLeader).node.status().role, "leader");
});

test("only one membership change may be pending: the next one waits until the previous is applied", () => {
  const h = cluster();
  const leader = h.get(1).node;
  h.partition(1); // the first change cannot commit for now
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }).ok, true);
  assert.deepEqual(leader.proposeConfChange({ type: "addLearner", nodeId: 5 }), { ok: false, reason: "confChangePending", lead: 1 });
  h.stabilize();
  assert.deepEqual(leader.proposeConfChange({ type: "removeNode", nodeId: 3 }), { ok: false, reason: "confChangePending", lead: 1 });
  assert.equal(leader.propose(bytes("normal entries are fine")).ok, true);
  h.heal();
  h.tick(1);
  assert.deepEqual(leader.status().confState.learners, [4]);
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 5 }).ok, true, "accepted once the first is applied");
});

test("no-op first: a new leader rejects membership changes with leaderNotReady until it commits an entry of its term", () => {
  const h = new Harness([1, 2, 3]);
  h.filter = (m) => !(m.type === "app" && m.from === 1); // the no-op does not get out
  h.elect(1);
  const leader = h.get(1).node;
  assert.equal(leader.status().role, "leader");
  assert.deepEqual([leader.status().commit, leader.status().lastIndex], [1, 2], "only the bootstrap snapshot (1) is committed, not the no-op (2)");
  assert.deepEqual(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }), { ok: false, reason: "leaderNotReady", lead: 1 });
  assert.equal(leader.propose(bytes("data")).ok, true, "ordinary proposals are accepted meanwhile");
  h.heal();
  h.tick(1);
  assert.equal(leader.status().commit, 3, "the no-op (2) and the data (3)");
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }).ok, true);
});

test("no-op first also holds for a leader of a later term whose log has older committed entries", () => {
  // checkQuorum off: no leases, so that node 2 can be elected by script while 1 still leads.
  const h = new Harness([1, 2, 3], { checkQuorum: false });
  h.elect(1);
  h.get(1).node.propose(bytes("old"));
  h.stabilize();
  assert.equal(commitOf(h, 2), 3, "node 1's no-op (2) and \"old\" (3), of term 2");

  h.filter = (m) => !(m.type === "app" && m.from === 2); // node 2's no-op does not get out
  h.elect(2);
  const leader = h.get(2).node;
  const st = leader.status();
  assert.equal(st.role, "leader");
  assert.equal(st.term, 3);
  assert.deepEqual([st.commit, st.lastIndex], [3, 4], "entries of term 2 are committed, its own no-op (4) is not");
  assert.deepEqual(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }), { ok: false, reason: "leaderNotReady", lead: 2 });
  h.heal();
  h.tick(1);
  assert.equal(leader.status().commit, 4);
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }).ok, true);
});

test("invalid membership changes are rejected and append nothing", () => {
  const single = new Harness([1]);
  single.elect(1);
  assert.equal(single.get(1).node.status().role, "leader");
  assert.deepEqual(single.get(1).node.proposeConfChange({ type: "removeNode", nodeId: 1 }), { ok: false, reason: "invalidConfChange", lead: 1 }, "the last voter");

  const h = cluster();
  change(h, { type: "addLearner", nodeId: 4 });
  const leader = h.get(1).node;
  const last = leader.status().lastIndex;
  const invalid: [ConfChange, string][] = [
    [{ type: "addVoter", nodeId: 2 }, "add an existing voter"],
    [{ type: "addLearner", nodeId: 2 }, "demote a voter to learner"],
    [{ type: "addLearner", nodeId: 4 }, "add an existing learner"],
    [{ type: "removeNode", nodeId: 9 }, "remove a node that is not a member"],
    [{ type: "addVoter", nodeId: 0 }, "node id 0 means nobody"],
    [{ type: "addVoter", nodeId: -1 }, "negative node id"],
  ];
  for (const [cc, what] of invalid) {
    assert.deepEqual(leader.proposeConfChange(cc), { ok: false, reason: "invalidConfChange", lead: 1 }, what);
  }
  assert.equal(leader.status().lastIndex, last, "nothing was appended");
  // Valid ones still go through.
  change(h, { type: "removeNode", nodeId: 4 });
  assert.deepEqual(leader.status().confState, { voters: [1, 2, 3], learners: [] });
});

test("a voter added with an EMPTY storage learns the group's full membership (and so never leads alone)", () => {
  // etcd's way of adding a member: start it with no state and let the leader bring it up to date.
  const h = cluster();
  change(h, { type: "addVoter", nodeId: 4 });
  h.add(4, new MemoryStorage());
  tickUntil(h, () => h.get(4).node.status().commit === h.get(1).node.status().commit, 20);
  assert.deepEqual(h.get(4).node.status().confState, { voters: [1, 2, 3, 4], learners: [] }, "node 4's view of the membership");
  assert.deepEqual(
    h.get(4).storage.snapshot().metadata,
    { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } },
    "it started from the leader's bootstrap snapshot (index 1 is compacted everywhere), then replayed addVoter 4 on top",
  );

  // What goes wrong otherwise: cut off, a node that believes it is the only voter elects itself and
  // commits on its own.
  h.partition(4);
  h.tick(40);
  assert.notEqual(h.get(4).node.status().role, "leader", "one node of four cannot be a quorum");
});

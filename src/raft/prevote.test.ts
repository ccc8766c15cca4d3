/**
 * PreVote (thesis §9.6) and CheckQuorum with leader leases (thesis §6.2): a node that cannot win
 * must not disturb the cluster, and a leader that cannot reach a quorum must stop acting as one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { message, type Message } from "./messages.js";
import { Harness, bytes } from "./testing/harness.js";
import { deliveredOf, giveLog, leads, learnerHarness, recordReadies, roles, tickUntil } from "./testing/election-kit.js";

const ELECTION_TICKS = 10;

// ---------------------------------------------------------------- PreVote

test("a pre-candidate changes neither its term nor its vote, and persists nothing", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  const before = h.get(3).node.status();
  assert.deepEqual([before.term, before.vote], [2, 1]);

  const readies = recordReadies(h);
  h.get(3).node.campaign();
  h.stabilize();
  const s = h.get(3).node.status();
  assert.equal(s.role, "preCandidate");
  assert.equal(s.term, 2, "term unchanged");
  assert.equal(s.vote, 1, "vote unchanged");
  assert.deepEqual(h.get(3).storage.initialState().hardState, { term: 2, vote: 1, commit: 2 });

  const rd = readies.find((r) => r.id === 3)!.rd;
  assert.deepEqual(
    rd.messages.map((m) => `${m.type} ->${m.to} t${m.term}`),
    ["preVote ->1 t3", "preVote ->2 t3"],
    "asks for the term it would use",
  );
  assert.equal(rd.hardState, undefined);
  assert.equal(rd.mustSync, false);
});

test("a partitioned node that returns neither raises the cluster's term nor disrupts the healthy leader", () => {
  const script = (options: { preVote: boolean; checkQuorum: boolean }): { h: Harness; attempts: number } => {
    const h = new Harness([1, 2, 3], options);
    h.elect(1);
    assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
    h.stabilize();
    h.partition(3);
    const readies = recordReadies(h);
    h.tick(10 * ELECTION_TICKS); // 3 times out again and again, alone
    const attempts = readies.filter((r) => r.id === 3 && r.rd.messages.some((m) => m.type === "preVote" || m.type === "vote")).length;
    h.heal();
    h.tick(3 * ELECTION_TICKS);
    return { h, attempts };
  };

  const { h, attempts } = script({ preVote: true, checkQuorum: true });
  assert.ok(attempts >= 3, `the partitioned node kept trying (${attempts} pre-vote rounds)`);
  assert.deepEqual(roles(h), { 1: "leader@2", 2: "follower@2", 3: "follower@2" });
  assert.deepEqual(leads(h), { 1: 1, 2: 1, 3: 1 });
  assert.equal(h.get(1).node.propose(bytes("b")).ok, true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["a", "b"]);

  // Negative control: without PreVote and CheckQuorum, the same script deposes the leader.
  const control = script({ preVote: false, checkQuorum: false }).h;
  const terms = [1, 2, 3].map((id) => control.get(id).node.status().term);
  assert.ok(
    terms.every((t) => t > 2),
    `without PreVote the returning node drags everyone to a higher term: ${JSON.stringify(roles(control))}`,
  );
});

test("pre-vote succeeds, then the real vote: the term rises once, only in the second round", () => {
  const h = new Harness([1, 2, 3]);
  const readies = recordReadies(h);
  h.elect(2);
  assert.deepEqual(roles(h), { 1: "follower@2", 2: "leader@2", 3: "follower@2" });

  const election = deliveredOf(h, "preVote", "preVoteResp", "vote", "voteResp").map((m) => `${m.type} ${m.from}->${m.to} t${m.term}${m.reject ? " rejected" : ""}`);
  assert.deepEqual(election.slice(0, 2), ["preVote 2->1 t2", "preVote 2->3 t2"]);
  const firstVote = election.findIndex((e) => e.startsWith("vote "));
  const preVoteGrants = election.slice(0, firstVote).filter((e) => e.startsWith("preVoteResp"));
  assert.ok(preVoteGrants.length >= 1, `a pre-vote quorum before any vote: ${election.join(", ")}`);
  assert.ok(election.slice(firstVote).some((e) => e.startsWith("voteResp") && !e.endsWith("rejected")));

  // Node 2's first Ready (the pre-vote) persists nothing; the Ready with its vote requests persists term 2.
  const mine = readies.filter((r) => r.id === 2).map((r) => r.rd);
  assert.equal(mine[0]!.hardState, undefined);
  const voteReady = mine.find((rd) => rd.messages.some((m) => m.type === "vote"))!;
  assert.deepEqual(voteReady.hardState, { term: 2, vote: 2, commit: 1 });
});

test("a pre-vote for a stale log is rejected and the pre-candidate returns to follower in its own term", () => {
  const voters = [1, 2, 3];
  const h = new Harness(voters);
  giveLog(h, 1, voters, [1, 2]);
  giveLog(h, 3, voters, [1, 2]);
  giveLog(h, 2, voters, [1, 1, 1], { term: 2 });
  h.elect(2);
  assert.deepEqual(roles(h), { 1: "follower@2", 2: "follower@2", 3: "follower@2" }, "nobody's term moved");
  const answers = deliveredOf(h, "preVoteResp").filter((m) => m.to === 2);
  assert.equal(answers.length, 2);
  for (const m of answers) assert.equal(m.reject, true, `node ${m.from} rejects`);
  assert.equal(deliveredOf(h, "vote").length, 0, "no real election was held");
});

// ---------------------------------------------------------------- CheckQuorum and leases

test("CheckQuorum: a leader that loses contact with a quorum steps down within two election timeouts", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  h.partition(1);
  h.tick(ELECTION_TICKS - 1, [1]);
  assert.equal(h.get(1).node.status().role, "leader", "not before an election timeout");
  const ticks = ELECTION_TICKS - 1 + tickUntil(h, () => h.get(1).node.status().role !== "leader", 2 * ELECTION_TICKS, [1]);
  assert.ok(ticks <= 2 * ELECTION_TICKS, `stepped down after ${ticks} ticks`);
  const s = h.get(1).node.status();
  assert.equal(s.role, "follower");
  assert.equal(s.term, 2, "stepping down does not change the term");
  assert.equal(s.lead, 0);
  assert.deepEqual(h.get(1).node.propose(bytes("x")), { ok: false, reason: "notLeader", lead: 0 });

  // Control: a leader that still reaches a quorum (only 3 is cut off) keeps leading.
  const ok = new Harness([1, 2, 3]);
  ok.elect(1);
  ok.partition(3);
  ok.tick(10 * ELECTION_TICKS, [1, 2]);
  assert.equal(ok.get(1).node.status().role, "leader");
  // Control: without CheckQuorum a fully isolated leader never notices.
  const blind = new Harness([1, 2, 3], { checkQuorum: false });
  blind.elect(1);
  blind.partition(1);
  blind.tick(10 * ELECTION_TICKS, [1]);
  assert.equal(blind.get(1).node.status().role, "leader");
});

test("CheckQuorum counts voters only: learners still in contact do not keep an isolated leader in power", () => {
  const h = learnerHarness([1, 2, 3], [4, 5]);
  h.elect(1);
  h.isolate(1, 2);
  h.isolate(1, 3);
  const ticks = tickUntil(h, () => h.get(1).node.status().role !== "leader", 2 * ELECTION_TICKS, [1, 4, 5]);
  assert.ok(ticks <= 2 * ELECTION_TICKS, `stepped down after ${ticks} ticks`);
  assert.ok(deliveredOf(h, "heartbeatResp").some((m) => m.from === 4 && m.to === 1), "the learners kept answering");
});

test("followers within the lease ignore vote requests from a higher term; after it expires they grant them", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.elect(1);
  const mark = h.delivered.length;
  h.get(3).node.campaign(); // a disruptive candidate in term 3
  h.stabilize();
  const answers = h.delivered.slice(mark).filter((m) => m.type === "voteResp");
  assert.deepEqual(answers, [], "neither the leader nor the follower answers");
  assert.deepEqual(roles(h), { 1: "leader@2", 2: "follower@2", 3: "candidate@3" });
  assert.equal(h.get(2).node.status().vote, 1);

  // The leader is gone; once node 2 has not heard from it for an election timeout, the lease is over.
  h.partition(1);
  h.tick(ELECTION_TICKS, [2]);
  h.get(3).node.campaign();
  h.stabilize();
  const s3 = h.get(3).node.status();
  assert.equal(s3.role, "leader");
  assert.equal(h.get(2).node.status().lead, 3);
  assert.equal(h.get(2).node.status().vote, 3);
});

test("a vote request inside the lease is dropped without touching term or vote (stepped by hand)", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.elect(1);
  const s2 = h.get(2).node.status();
  const last = s2.lastIndex;
  for (const type of ["vote", "preVote"] as const) {
    h.get(2).node.step(message({ type, from: 3, to: 2, term: 5, index: last + 10, logTerm: 4 }));
    assert.equal(h.get(2).node.hasReady(), false, `${type}: no answer, no state change`);
  }
  assert.deepEqual([h.get(2).node.status().term, h.get(2).node.status().vote], [s2.term, s2.vote]);
});

test("a stale leader coming back steps down when it hears the higher term, and its uncommitted entry is discarded", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();
  h.partition(1);
  tickUntil(h, () => h.leader() !== undefined && h.leader()!.id !== 1, 6 * ELECTION_TICKS, [2, 3]);
  const leader = h.leader()!;
  const term = leader.node.status().term;
  assert.ok(term > h.get(1).node.status().term, `a later term (${term}) than the old leader's`);
  assert.equal(h.get(1).node.status().role, "leader", "the old leader did not notice yet (it did not tick)");
  assert.equal(h.get(1).node.propose(bytes("lost")).ok, true, "it still accepts a proposal it can never commit");
  h.stabilize();

  h.heal();
  const mark = h.delivered.length;
  h.tick(1, [1]); // its heartbeat of the old term is answered with the new term
  assert.ok(
    h.delivered.slice(mark).some((m: Message) => m.to === 1 && m.term === term),
    "the old leader heard the new term",
  );
  assert.equal(h.get(1).node.status().role, "follower");
  assert.equal(h.get(1).node.status().term, term);

  h.tick(2);
  assert.equal(h.get(1).node.status().lead, leader.id);
  assert.equal(leader.node.propose(bytes("b")).ok, true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["a", "b"], `node ${id}`);
});

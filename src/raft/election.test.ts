/**
 * Leader election (thesis §3.4, §3.6.1): who wins, who votes for whom, how the election timer is
 * drawn, and what must be durable before a vote leaves the node.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Random } from "../lib/random.js";
import { SeededRandom } from "../lib/random.js";
import { message, type Message } from "./messages.js";
import type { Ready } from "./ready.js";
import { MemoryStorage } from "./storage.js";
import { Harness, bytes } from "./testing/harness.js";
import {
  LoneNode,
  deliveredOf,
  giveLog,
  leads,
  learnerHarness,
  roles,
  successiveTimeouts,
  tickUntil,
  ticksUntilCampaign,
} from "./testing/election-kit.js";

const ELECTION_TICKS = 10;

// ---------------------------------------------------------------- who wins

test("a single node elects itself when its election timer fires and commits its no-op", () => {
  const h = new Harness([1]);
  const ticks = tickUntil(h, () => h.leader() !== undefined, 2 * ELECTION_TICKS);
  assert.ok(ticks >= ELECTION_TICKS && ticks < 2 * ELECTION_TICKS, `elected after ${ticks} ticks`);
  const s = h.get(1).node.status();
  assert.equal(s.role, "leader");
  assert.equal(s.term, 2, "the first election after the bootstrap (term 1)");
  assert.equal(s.lead, 1);
  assert.equal(s.commit, 2, "the no-op of term 2 (index 2, after the bootstrap snapshot at 1) is committed by the node alone");
  assert.equal(h.get(1).applied.length, 1);
  assert.equal(h.delivered.length, 0, "a single node sends no messages");
});

test("three nodes: the node that campaigns wins and the others follow it in the same term", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(2);
  assert.deepEqual(roles(h), { 1: "follower@2", 2: "leader@2", 3: "follower@2" });
  assert.deepEqual(leads(h), { 1: 2, 2: 2, 3: 2 });
  for (const id of [1, 3]) assert.equal(h.get(id).node.status().vote, 2);
  assert.equal(h.get(2).node.propose(bytes("x")).ok, true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["x"]);
});

test("three nodes elect exactly one leader from their election timers alone", () => {
  const h = new Harness([1, 2, 3], {}, 7);
  tickUntil(h, () => h.leader() !== undefined, 4 * ELECTION_TICKS);
  const leader = h.leader()!;
  const term = leader.node.status().term;
  for (const [id, hn] of h.nodes) {
    const s = hn.node.status();
    assert.equal(s.term, term, `node ${id} term`);
    assert.equal(s.lead, leader.id, `node ${id} follows the leader`);
    if (id !== leader.id) assert.equal(s.role, "follower");
  }
});

test("five nodes elect a leader with two nodes down, but not with three down", () => {
  const h = new Harness([1, 2, 3, 4, 5]);
  h.partition(4);
  h.partition(5);
  h.elect(1);
  assert.equal(h.get(1).node.status().role, "leader", "1, 2 and 3 are a majority of five");
  for (const id of [2, 3]) assert.equal(h.get(id).node.status().lead, 1);

  const h2 = new Harness([1, 2, 3, 4, 5]);
  for (const id of [3, 4, 5]) h2.partition(id);
  h2.elect(1);
  h2.tick(3 * ELECTION_TICKS, [1, 2]);
  assert.equal(h2.leader(), undefined, "1 and 2 are not a majority of five");
  for (const id of [1, 2]) assert.notEqual(h2.get(id).node.status().role, "leader");

  h2.heal();
  h2.elect(1);
  assert.equal(h2.get(1).node.status().role, "leader", "healed: 1 wins");
  for (const id of [2, 3, 4, 5]) assert.equal(h2.get(id).node.status().lead, 1);
});

// ---------------------------------------------------------------- the election timer

test("election timeouts are drawn from [electionTicks, 2 * electionTicks)", () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const t = ticksUntilCampaign(new SeededRandom(seed), ELECTION_TICKS);
    assert.ok(t >= ELECTION_TICKS && t < 2 * ELECTION_TICKS, `seed ${seed}: timeout ${t}`);
    seen.add(t);
  }
  // Randomized, not fixed: across 200 seeds every value of the range shows up.
  assert.deepEqual([...seen].sort((a, b) => a - b), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
});

test("the election timeout comes from the injected Random: electionTicks + random.int(electionTicks)", () => {
  for (const draw of [0, 3, 9]) {
    const bounds: number[] = [];
    const scripted: Random = {
      nextUint32: () => 0,
      int: (bound) => {
        bounds.push(bound);
        return draw;
      },
      intBetween: (lo) => lo,
      float: () => 0,
      chance: () => false,
      fork: () => scripted,
    };
    assert.equal(ticksUntilCampaign(scripted, ELECTION_TICKS), ELECTION_TICKS + draw, `draw ${draw}`);
    assert.ok(bounds.length > 0 && bounds.every((b) => b === ELECTION_TICKS), `asked for int(${bounds.join(", ")})`);
  }
});

test("the same seed gives the same election timeouts; different seeds give different ones", () => {
  const a = successiveTimeouts(new SeededRandom(42), ELECTION_TICKS, 8);
  const again = successiveTimeouts(new SeededRandom(42), ELECTION_TICKS, 8);
  const b = successiveTimeouts(new SeededRandom(43), ELECTION_TICKS, 8);
  assert.deepEqual(again, a);
  assert.notDeepEqual(b, a);
  for (const t of [...a, ...b]) assert.ok(t >= ELECTION_TICKS && t < 2 * ELECTION_TICKS, `timeout ${t}`);
  assert.ok(new Set(a).size > 1, `each campaign draws a new timeout: ${a.join(", ")}`);

  // With a large range, two seeds colliding would be a coincidence of 1 in 1000.
  assert.notEqual(ticksUntilCampaign(new SeededRandom(1), 1000), ticksUntilCampaign(new SeededRandom(2), 1000));
});

test("which node wins a timer-driven election is decided by the harness seed, and replays from it", () => {
  const winner = (seed: number): string => {
    const h = new Harness([1, 2, 3], {}, seed);
    const ticks = tickUntil(h, () => h.leader() !== undefined, 4 * ELECTION_TICKS);
    return `${h.leader()!.id} after ${ticks}`;
  };
  const runs = [1, 2, 3, 4, 5, 6, 7, 8].map(winner);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(winner), runs, "same seeds, same outcomes");
  assert.ok(new Set(runs.map((r) => r.split(" ")[0])).size > 1, `different seeds elect different nodes: ${runs.join("; ")}`);
});

// ---------------------------------------------------------------- votes

test("a node never grants two votes in one term, whichever candidate asks first", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.get(2).node.campaign();
  h.get(3).node.campaign();
  h.stabilize();

  const grantsBy1 = deliveredOf(h, "voteResp").filter((m) => m.from === 1 && !m.reject);
  assert.equal(grantsBy1.length, 1, "node 1 granted exactly one vote in term 2");
  assert.equal(grantsBy1[0]!.to, 2, "to the candidate whose request arrived first");
  assert.equal(h.get(1).storage.initialState().hardState.vote, 2);
  assert.deepEqual(roles(h), { 1: "follower@2", 2: "leader@2", 3: "follower@2" });

  // A late request from another candidate of the same term is rejected; the vote stands.
  const voter = new LoneNode(MemoryStorage.bootstrap([1, 2, 3]), { id: 1, random: new SeededRandom(1), preVote: false });
  voter.node.step(message({ type: "vote", from: 3, to: 1, term: 2, index: 1, logTerm: 1 }));
  const first = voter.messages();
  voter.node.step(message({ type: "vote", from: 2, to: 1, term: 2, index: 1, logTerm: 1 }));
  const second = voter.messages();
  assert.deepEqual(summary(first), ["voteResp 1->3 t2 granted"]);
  assert.deepEqual(summary(second), ["voteResp 1->2 t2 rejected"]);
  assert.equal(voter.node.status().vote, 3);
  // Asking again (a retransmission) from the candidate it voted for is granted again.
  voter.node.step(message({ type: "vote", from: 3, to: 1, term: 2, index: 1, logTerm: 1 }));
  assert.deepEqual(summary(voter.messages()), ["voteResp 1->3 t2 granted"]);
});

test("a restarted node remembers its term and vote, and still refuses a second candidate in that term", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.partition(3);
  h.elect(2);
  assert.deepEqual([h.get(1).node.status().term, h.get(1).node.status().vote], [2, 2]);

  h.restart(1);
  const s = h.get(1).node.status();
  assert.deepEqual([s.role, s.term, s.vote, s.lead], ["follower", 2, 2, 0], "term and vote come back from storage");
  // Candidate 3 of the same term asks the restarted node (stepped by hand, to read its answer).
  const voter = h.get(1).node;
  voter.step(message({ type: "vote", from: 3, to: 1, term: 2, index: 1, logTerm: 1 }));
  const rd = voter.ready();
  assert.deepEqual(summary(rd.messages), ["voteResp 1->3 t2 rejected"]);
  assert.equal(rd.hardState, undefined, "nothing changed");
  voter.advance();
});

test("a candidate that hears from a leader of its own term becomes that leader's follower", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.filter = (m) => !(m.type === "voteResp" && m.to === 3); // 3 never learns how its election went
  h.get(2).node.campaign();
  h.get(3).node.campaign();
  h.stabilize();
  assert.equal(h.get(2).node.status().role, "leader");
  const s3 = h.get(3).node.status();
  assert.deepEqual([s3.role, s3.term, s3.lead, s3.vote], ["follower", 2, 2, 3], "the append of term 2 settles it; its own vote stands");
});

test("a vote and its term are in Ready.hardState with mustSync, in the same Ready as the vote response", () => {
  // By hand: a fresh follower asked for its vote.
  const voter = new LoneNode(MemoryStorage.bootstrap([1, 2, 3]), { id: 1, random: new SeededRandom(1) });
  voter.node.step(message({ type: "vote", from: 2, to: 1, term: 2, index: 1, logTerm: 1 }));
  const rd = voter.handle()!;
  assert.deepEqual(rd.hardState, { term: 2, vote: 2, commit: 1 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(summary(rd.messages), ["voteResp 1->2 t2 granted"]);

  // A vote in the term the node is already in (only the vote changes) must be synced just the same.
  const sameTerm = new LoneNode(MemoryStorage.bootstrap([1, 2, 3]), { id: 1, random: new SeededRandom(1) });
  sameTerm.storage.setHardState({ term: 2, vote: 0, commit: 1 });
  const restarted = new LoneNode(sameTerm.storage, { id: 1, random: new SeededRandom(1) });
  restarted.node.step(message({ type: "vote", from: 3, to: 1, term: 2, index: 1, logTerm: 1 }));
  const rd2 = restarted.handle()!;
  assert.deepEqual(rd2.hardState, { term: 2, vote: 3, commit: 1 });
  assert.equal(rd2.mustSync, true, "a changed vote alone requires a sync");
  assert.deepEqual(summary(rd2.messages), ["voteResp 1->3 t2 granted"]);

  // In a whole election: every granted vote response, and every vote request, leaves in a Ready
  // that persists the vote it depends on, durably; no earlier Ready carries it.
  const h = new Harness([1, 2, 3, 4, 5]);
  const readies: { id: number; rd: Ready }[] = [];
  h.onReady = (hn, r) => readies.push({ id: hn.id, rd: r });
  h.elect(3);
  assert.equal(h.get(3).node.status().role, "leader");
  let grants = 0;
  let requests = 0;
  for (const { id, rd: r } of readies) {
    for (const m of r.messages) {
      if (m.type === "voteResp" && !m.reject) {
        grants++;
        assert.deepEqual(r.hardState && { term: r.hardState.term, vote: r.hardState.vote }, { term: m.term, vote: m.to }, `node ${id} grant`);
        assert.equal(r.mustSync, true, `node ${id} grant must be synced`);
      }
      if (m.type === "vote") {
        requests++;
        assert.deepEqual(r.hardState && { term: r.hardState.term, vote: r.hardState.vote }, { term: m.term, vote: id }, `node ${id} self-vote`);
        assert.equal(r.mustSync, true);
      }
    }
  }
  assert.equal(requests, 4, "one vote request to each peer");
  assert.ok(grants >= 2, `a quorum of grants (${grants})`);
  // Pre-votes change nothing durable: no Ready carrying only a pre-vote grant has a hard state.
  for (const { rd: r } of readies) {
    if (r.messages.length > 0 && r.messages.every((m) => m.type === "preVoteResp")) assert.equal(r.hardState, undefined);
  }
});

test("a vote is rejected for a candidate whose log is less up to date: by last term, then by length", () => {
  // The voters (1 and 3) hold entries of terms [1, 1, 2]; candidate 2 holds the log in the table.
  const cases: { candidate: number[]; wins: boolean; why: string }[] = [
    { candidate: [1, 1, 1, 1], wins: false, why: "longer, but an older last term" },
    { candidate: [1, 2], wins: false, why: "same last term, shorter" },
    { candidate: [1, 1, 2], wins: true, why: "identical" },
    { candidate: [1, 1, 2, 2], wins: true, why: "same last term, longer" },
    { candidate: [1, 3], wins: true, why: "shorter, but a newer last term" },
  ];
  for (const { candidate, wins, why } of cases) {
    const voters = [1, 2, 3];
    const h = new Harness(voters, { preVote: false });
    giveLog(h, 1, voters, [1, 1, 2]);
    giveLog(h, 3, voters, [1, 1, 2]);
    giveLog(h, 2, voters, candidate, { term: 2 });
    h.elect(2);
    const answers = deliveredOf(h, "voteResp").filter((m) => m.to === 2);
    assert.equal(answers.length, 2, why);
    for (const m of answers) assert.equal(m.reject, !wins, `${why}: answer of node ${m.from}`);
    assert.equal(h.get(2).node.status().role, wins ? "leader" : "follower", why);
  }
});

test("a candidate that loses goes back to follower, keeps its term, and an up-to-date node wins later", () => {
  const voters = [1, 2, 3];
  const h = new Harness(voters, { preVote: false });
  giveLog(h, 1, voters, [1, 1, 2]);
  giveLog(h, 3, voters, [1, 1, 2]);
  giveLog(h, 2, voters, [1, 1], { term: 2 });
  h.elect(2);
  const s = h.get(2).node.status();
  assert.equal(s.role, "follower");
  assert.equal(s.term, 3, "the term it campaigned in");
  assert.equal(s.lead, 0);
  assert.equal(h.leader(), undefined);

  tickUntil(h, () => h.leader() !== undefined, 6 * ELECTION_TICKS);
  assert.notEqual(h.leader()!.id, 2, "the stale node never wins");
  assert.equal(h.get(2).node.status().lead, h.leader()!.id);
  assert.equal(h.get(2).node.status().lastIndex, h.leader()!.node.status().lastIndex, "and it is caught up");
});

test("a split vote resolves: everyone campaigns at once, nobody wins, then the timers pick one leader", () => {
  const h = new Harness([1, 2, 3], { preVote: false }, 3);
  for (const id of [1, 2, 3]) h.get(id).node.campaign();
  h.stabilize();
  assert.deepEqual(roles(h), { 1: "follower@2", 2: "follower@2", 3: "follower@2" }, "each voted for itself and lost");
  for (const id of [1, 2, 3]) assert.equal(h.get(id).node.status().vote, id);

  tickUntil(h, () => h.leader() !== undefined, 6 * ELECTION_TICKS);
  const leader = h.leader()!;
  const term = leader.node.status().term;
  assert.ok(term >= 3, `a later term (${term})`);
  for (const [id, hn] of h.nodes) {
    assert.equal(hn.node.status().term, term, `node ${id}`);
    assert.equal(hn.node.status().lead, leader.id, `node ${id}`);
  }
});

// ---------------------------------------------------------------- stepping down, learners

test("a follower with a higher term makes the leader step down", () => {
  const h = new Harness([1, 2, 3], { preVote: false });
  h.elect(1);
  h.partition(3);
  tickUntil(h, () => h.get(3).node.status().term > h.get(1).node.status().term, 3 * ELECTION_TICKS, [3]);
  assert.equal(h.get(1).node.status().role, "leader", "the leader did not notice yet");
  const higher = h.get(3).node.status().term;

  h.heal();
  h.tick(1, [1]); // a heartbeat reaches 3, which answers with its term
  const s1 = h.get(1).node.status();
  assert.equal(s1.role, "follower");
  assert.equal(s1.term, higher);
  assert.equal(s1.lead, 0);

  tickUntil(h, () => h.leader() !== undefined, 6 * ELECTION_TICKS);
  const leader = h.leader()!;
  assert.ok(leader.node.status().term >= higher, "a new leader in the higher term or later");
  for (const id of [1, 2, 3]) assert.equal(h.get(id).node.status().lead, leader.id);
});

test("learners never campaign, not even when the leader is gone", () => {
  const h = learnerHarness([1, 2, 3], [4]);
  h.tick(10 * ELECTION_TICKS, [4]);
  h.get(4).node.campaign();
  h.stabilize();
  assert.deepEqual(roles(h)[4], "follower@1", "still in the bootstrap term");
  assert.equal(h.delivered.length, 0, "the learner sent nothing");

  h.elect(1);
  assert.equal(h.get(4).node.status().lead, 1, "the learner follows the leader");
  h.partition(1);
  tickUntil(h, () => h.leader() !== undefined && h.leader()!.id !== 1, 10 * ELECTION_TICKS, [2, 3, 4]);
  h.tick(10 * ELECTION_TICKS, [2, 3, 4]);
  assert.ok([2, 3].includes(h.leader()!.id));
  assert.equal(h.get(4).node.status().role, "follower");
  assert.equal(h.get(4).node.status().lead, h.leader()!.id);
  const fromLearner = h.delivered.filter((m: Message) => m.from === 4 && ["vote", "preVote"].includes(m.type));
  assert.deepEqual(fromLearner, []);
});

function summary(msgs: readonly Message[]): string[] {
  return msgs.map((m) => `${m.type} ${m.from}->${m.to} t${m.term} ${m.reject ? "rejected" : "granted"}`);
}

/**
 * ReadIndex (thesis §6.4): a linearizable read is served at the commit index the leader had when
 * the read arrived, once a heartbeat round proves a quorum still follows it, and only after the
 * leader has committed an entry of its own term (before that it does not know the latest commit).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "./messages.js";
import { MemoryStorage } from "./storage.js";
import { SeededRandom } from "../lib/random.js";
import { Harness, bytes } from "./testing/harness.js";
import { LoneNode, deliveredOf, learnerHarness, recordReadies, tickUntil } from "./testing/election-kit.js";

const ELECTION_TICKS = 10;

function line(m: Message): string {
  return `${m.type} ${m.from}->${m.to} i${m.index} "${m.context}"`;
}

test("leader: the read index is the commit index, answered only once a quorum acknowledged a heartbeat", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();
  const commit = h.get(1).node.status().commit;
  assert.equal(commit, 3, "the no-op (2) and 'a' (3)");

  h.filter = (m) => m.type !== "heartbeatResp"; // acknowledgements lost
  assert.equal(h.get(1).node.readIndex("r1"), true);
  h.stabilize();
  assert.ok(deliveredOf(h, "heartbeat").some((m) => m.context === "r1"), "the read rides on a heartbeat");
  assert.deepEqual(h.get(1).readStates, [], "no answer without acknowledgements");

  h.heal();
  h.tick(1, [1]); // the next heartbeat carries the pending read again
  assert.deepEqual(h.get(1).readStates, [{ index: commit, context: "r1" }]);
});

test("five nodes: a read needs acknowledgements from a majority, the leader included", () => {
  const h = new Harness([1, 2, 3, 4, 5]);
  h.elect(1);
  h.isolate(1, 4);
  h.isolate(1, 5);
  assert.equal(h.get(1).node.readIndex("three-of-five"), true);
  h.stabilize();
  assert.deepEqual(h.get(1).readStates, [{ index: 2, context: "three-of-five" }]);

  h.isolate(1, 3);
  assert.equal(h.get(1).node.readIndex("two-of-five"), true);
  h.tick(ELECTION_TICKS - 1, [1]);
  assert.equal(h.get(1).node.status().role, "leader");
  assert.deepEqual(h.get(1).readStates, [{ index: 2, context: "three-of-five" }], "the second read is not answered");
});

test("acknowledgements from learners do not count towards a read's quorum", () => {
  const h = learnerHarness([1, 2, 3], [4, 5]);
  h.elect(1);
  h.isolate(1, 2);
  h.isolate(1, 3);
  assert.equal(h.get(1).node.readIndex("learners-only"), true);
  h.tick(ELECTION_TICKS - 1, [1, 4, 5]);
  assert.ok(deliveredOf(h, "heartbeatResp").some((m) => m.from === 4 && m.context === "learners-only"), "the learners acknowledged");
  assert.deepEqual(h.get(1).readStates, [], "1 of 3 voters is no quorum, whatever the learners say");

  h.heal();
  h.tick(1, [1]);
  assert.deepEqual(h.get(1).readStates, [{ index: 2, context: "learners-only" }], "answered once a voter acknowledges");
});

test("follower: the read is forwarded to the leader and answered with readIndexResp", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();
  const mark = h.delivered.length;

  assert.equal(h.get(2).node.readIndex("f1"), true);
  h.stabilize();
  const reads = h.delivered.slice(mark).filter((m) => m.type === "readIndex" || m.type === "readIndexResp");
  assert.deepEqual(reads.map(line), ['readIndex 2->1 i0 "f1"', 'readIndexResp 1->2 i3 "f1"']);
  assert.deepEqual(h.get(2).readStates, [{ index: 3, context: "f1" }]);
  assert.deepEqual(h.get(1).readStates, [], "the leader does not serve it itself");
  assert.ok(h.get(2).node.status().applied >= 3, "the follower can serve once applied up to the index");
});

test("a new leader defers reads until it has committed an entry of its own term", () => {
  // Term 2: leader 1 commits "a" at index 3, but the followers never learn that it is committed.
  const h = new Harness([1, 2, 3], { checkQuorum: false });
  h.elect(1);
  h.filter = (m) => !(m.from === 1 && (m.type === "heartbeat" || (m.type === "app" && m.entries.length === 0)));
  assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
  h.stabilize();
  assert.deepEqual(h.appliedData(1), ["a"], "a client saw 'a' committed");
  assert.equal(h.get(2).node.status().commit, 2, "node 2 does not know it");

  // Term 3: node 2 leads, but its no-op (index 4) cannot commit yet: acknowledgements are lost.
  h.heal();
  h.partition(1);
  h.filter = (m) => m.type !== "appResp";
  h.elect(2);
  assert.equal(h.get(2).node.status().role, "leader");
  assert.equal(h.get(2).node.status().term, 3);
  assert.equal(h.get(2).node.status().commit, 2);

  assert.equal(h.get(2).node.readIndex("local"), true);
  assert.equal(h.get(3).node.readIndex("forwarded"), true);
  h.tick(3, [2, 3]);
  assert.deepEqual(h.get(2).readStates, [], "a read at index 2 would miss 'a'");
  assert.deepEqual(h.get(3).readStates, []);

  h.filter = () => true;
  h.tick(1, [2, 3]);
  assert.equal(h.get(2).node.status().commit, 4);
  assert.deepEqual(h.get(2).readStates, [{ index: 4, context: "local" }]);
  assert.deepEqual(h.get(3).readStates, [{ index: 4, context: "forwarded" }]);
  assert.deepEqual(h.appliedData(2), ["a"]);
});

test("a leader cut off from the majority never answers a read, even while it still believes it leads", () => {
  for (const checkQuorum of [true, false]) {
    const h = new Harness([1, 2, 3], { checkQuorum });
    h.elect(1);
    assert.equal(h.get(1).node.propose(bytes("a")).ok, true);
    h.stabilize();

    h.partition(1);
    assert.equal(h.get(1).node.readIndex("stale"), true, "accepted: the old leader does not know yet");
    // Meanwhile the majority elects a new leader and commits a write the old one never sees.
    tickUntil(h, () => h.leader() !== undefined && h.leader()!.id !== 1, 6 * ELECTION_TICKS, [2, 3]);
    assert.equal(h.leader()!.node.propose(bytes("b")).ok, true);
    h.stabilize();
    h.tick(4 * ELECTION_TICKS, [1]);
    assert.deepEqual(h.get(1).readStates, [], `checkQuorum=${checkQuorum}: a read would miss 'b'`);
    assert.equal(h.get(1).node.status().role === "leader", !checkQuorum, "with CheckQuorum it stepped down; without, it still leads");

    h.heal();
    h.tick(3 * ELECTION_TICKS);
    assert.notEqual(h.leader()!.id, 1);
    assert.deepEqual(h.get(1).readStates, [], `checkQuorum=${checkQuorum}: not even after healing`);
    assert.deepEqual(h.appliedData(1), ["a", "b"]);
  }
});

test("single node: a read is answered in the next Ready, without any message, once its no-op is committed", () => {
  const h = new Harness([1]);
  h.elect(1);
  const readies = recordReadies(h);
  assert.equal(h.get(1).node.readIndex("solo"), true);
  h.stabilize();
  assert.equal(readies.length, 1);
  assert.deepEqual(readies[0]!.rd.readStates, [{ index: 2, context: "solo" }], "its no-op, after the bootstrap snapshot at 1");
  assert.deepEqual(readies[0]!.rd.messages, []);

  // Before its no-op is persisted (and so committed), the read waits for it.
  const lone = new LoneNode(MemoryStorage.bootstrap([1]), { id: 1, random: new SeededRandom(1) });
  lone.node.campaign();
  assert.equal(lone.node.status().role, "leader");
  assert.equal(lone.node.readIndex("early"), true);
  const first = lone.handle()!;
  assert.deepEqual(first.readStates, [], "the no-op is not durable yet");
  const second = lone.handle()!;
  assert.deepEqual(second.readStates, [{ index: 2, context: "early" }]);
});

test("a read is dropped (readIndex returns false) when no leader is known", () => {
  const h = new Harness([1, 2, 3]);
  assert.equal(h.get(2).node.readIndex("nobody"), false, "fresh cluster");
  assert.equal(h.get(2).node.hasReady(), false, "nothing sent");

  h.partition(1);
  h.get(1).node.campaign();
  h.stabilize();
  assert.equal(h.get(1).node.status().role, "preCandidate");
  assert.equal(h.get(1).node.readIndex("campaigning"), false, "a pre-candidate knows no leader");

  h.heal();
  h.elect(1);
  h.partition(2);
  assert.equal(h.get(2).node.readIndex("known"), true, "a follower that knows a leader forwards");
  tickUntil(h, () => h.get(2).node.status().lead === 0, 3 * ELECTION_TICKS, [2]);
  assert.equal(h.get(2).node.readIndex("lost"), false, "after its election timeout it knows no leader");
  assert.deepEqual(h.get(2).readStates, []);
});

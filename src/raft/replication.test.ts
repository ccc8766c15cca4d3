import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRandom } from "../lib/random.js";
import type { Message } from "./messages.js";
import { RawNode } from "./raw-node.js";
import { MemoryStorage } from "./storage.js";
import { Harness, bytes } from "./testing/harness.js";
import { Held, isAppendWithEntries, storageWithLog, storedTerms, tickUntil } from "./testing/script-kit.js";

const fromTo = (from: number, to: number) => (m: Message) => m.from === from && m.to === to;
const appsWithEntries = (msgs: readonly Message[], from: number, to: number) => msgs.filter(isAppendWithEntries(from, to));

/** A 3-node cluster with leader 1 elected (term 2) and its no-op (index 2, after the bootstrap snapshot at 1) committed everywhere. */
function cluster(options: ConstructorParameters<typeof Harness>[1] = {}): Harness {
  const h = new Harness([1, 2, 3], options);
  h.elect(1);
  assert.equal(h.get(1).node.status().role, "leader");
  for (const id of [1, 2, 3]) assert.equal(h.get(id).node.status().commit, 2, `node ${id} committed the no-op`);
  assert.equal(h.get(1).node.status().progress?.get(2)?.state, "replicate");
  return h;
}

test("pipelining: a follower in replicate state gets several appends in flight before it acknowledges any", () => {
  const h = cluster();
  const leader = h.get(1).node;
  // Everything from 1 to 2 waits on the wire (order kept); 3 answers normally.
  const wire = new Held(h, fromTo(1, 2));
  for (const w of ["a", "b", "c"]) {
    assert.equal(leader.propose(bytes(w)).ok, true);
    h.stabilize();
  }
  const inFlight = appsWithEntries(wire.messages, 1, 2);
  assert.deepEqual(
    inFlight.map((m) => [m.index, m.entries.map((e) => e.index)]),
    [
      [2, [3]],
      [3, [4]],
      [4, [5]],
    ],
    "three appends, each continuing where the previous one ended (next ran ahead of match)",
  );
  const pr = leader.status().progress!.get(2)!;
  assert.equal(pr.state, "replicate");
  assert.equal(pr.match, 2, "no acknowledgement yet");
  assert.equal(pr.next, 6);
  assert.equal(pr.inflight, 3);
  assert.equal(h.get(2).node.status().lastIndex, 2, "node 2 has received none of them");

  // The wire delivers them in order: all accepted, no rejection, follower caught up.
  const before = h.delivered.length;
  wire.release();
  const answers = h.delivered.slice(before).filter((m) => m.type === "appResp" && m.from === 2);
  assert.equal(answers.filter((m) => m.reject).length, 0);
  assert.equal(leader.status().progress!.get(2)!.match, 5);
  assert.equal(leader.status().progress!.get(2)!.inflight, 0);
  assert.deepEqual(h.appliedData(2), ["a", "b", "c"]);
});

test("flow control by count: with maxInflightMsgs=2 the leader stops after 2 unacknowledged appends and resumes on an ack", () => {
  const h = cluster({ maxInflightMsgs: 2 });
  const leader = h.get(1).node;
  const wire = new Held(h, fromTo(1, 2));
  for (const w of ["a", "b", "c", "d", "e"]) {
    assert.equal(leader.propose(bytes(w)).ok, true);
    h.stabilize();
  }
  assert.deepEqual(h.appliedData(1), ["a", "b", "c", "d", "e"], "3 keeps the quorum going");
  let inFlight = appsWithEntries(wire.messages, 1, 2);
  assert.deepEqual(
    inFlight.map((m) => m.entries.map((e) => e.index)),
    [[3], [4]],
    "only a and b were sent to 2; c, d, e wait for an acknowledgement",
  );
  assert.equal(leader.status().progress!.get(2)!.inflight, 2);

  // More time passes: heartbeats do not push entries past the limit.
  h.tick(3);
  inFlight = appsWithEntries(wire.messages, 1, 2);
  assert.equal(inFlight.length, 2, "still paused after heartbeats");

  // Deliver only the first append: its acknowledgement frees a slot and the rest goes out in one message.
  const first = wire.messages.findIndex(isAppendWithEntries(1, 2));
  const m = wire.messages.splice(first, 1)[0]!;
  h.get(2).node.step(m);
  h.stabilize();
  inFlight = appsWithEntries(wire.messages, 1, 2);
  assert.deepEqual(
    inFlight.map((x) => x.entries.map((e) => e.index)),
    [[4], [5, 6, 7]],
    "b is still in flight; c..e went out in one append after the ack",
  );
  assert.equal(leader.status().progress!.get(2)!.inflight, 2);

  wire.release();
  assert.deepEqual(h.appliedData(2), ["a", "b", "c", "d", "e"]);
  assert.equal(leader.status().progress!.get(2)!.inflight, 0);
});

test("flow control by bytes: with maxInflightBytes the leader stops once the bytes in flight reach the limit", () => {
  // Each proposal is 100 bytes of data = 124 bytes with overhead; 3 of them (372) exceed 300.
  const h = cluster({ maxMsgBytes: 300, maxInflightBytes: 300, maxInflightMsgs: 100 });
  const leader = h.get(1).node;
  const wire = new Held(h, fromTo(1, 2));
  for (let i = 0; i < 6; i++) {
    assert.equal(leader.propose(new Uint8Array(100).fill(i)).ok, true);
    h.stabilize();
  }
  const inFlight = appsWithEntries(wire.messages, 1, 2);
  assert.equal(inFlight.length, 3, "248 bytes in flight leave room for one more message; 372 bytes pause the stream");
  assert.equal(leader.status().progress!.get(2)!.inflight, 3);

  // In flight: (3) (4) (5), 372 bytes. The ack of 3 frees 124 → 248 bytes, not paused: the next
  // message takes as many entries as fit in maxMsgBytes, (6, 7) = 248 bytes → 496 in flight, paused
  // again. The ack of 4 frees 124 → 372 bytes: still paused, so 8 waits.
  const ackOne = () => {
    const i = wire.messages.findIndex(isAppendWithEntries(1, 2));
    h.get(2).node.step(wire.messages.splice(i, 1)[0]!);
    h.stabilize();
  };
  ackOne();
  assert.deepEqual(appsWithEntries(wire.messages, 1, 2).map((m) => m.entries.map((e) => e.index)), [[4], [5], [6, 7]]);
  ackOne();
  assert.deepEqual(appsWithEntries(wire.messages, 1, 2).map((m) => m.entries.map((e) => e.index)), [[5], [6, 7]], "8 waits for bytes");
  ackOne();
  assert.deepEqual(appsWithEntries(wire.messages, 1, 2).map((m) => m.entries.map((e) => e.index)), [[6, 7], [8]], "248 bytes: 8 goes out");
  wire.release();
  // The last commit index was broadcast while 2's stream was paused; the next heartbeat carries it.
  h.heal();
  h.tick(1);
  assert.equal(h.appliedData(2).length, 6);
});

test("batching: several proposals before one ready() go out as ONE append per follower", () => {
  const h = cluster();
  const leader = h.get(1).node;
  let before = h.delivered.length;
  for (const w of ["a", "b", "c"]) assert.equal(leader.propose(bytes(w)).ok, true);
  h.stabilize();
  for (const to of [2, 3]) {
    const apps = appsWithEntries(h.delivered.slice(before), 1, to);
    assert.equal(apps.length, 1, `one append to ${to}`);
    assert.deepEqual(apps[0]!.entries.map((e) => e.index), [3, 4, 5]);
  }
  assert.deepEqual(h.appliedData(3), ["a", "b", "c"]);

  // Control: a ready() between proposals gives one append per proposal.
  before = h.delivered.length;
  for (const w of ["d", "e", "f"]) {
    leader.propose(bytes(w));
    h.stabilize();
  }
  assert.equal(appsWithEntries(h.delivered.slice(before), 1, 2).length, 3);
});

test("fast backtracking: a long divergent suffix of old terms is repaired in a couple of round trips", () => {
  // Both cases share (1,t1) (2,t1). Node 2 has a long suffix from terms the leader never saw.
  //
  //  case A     idx  3 .. 10 | 11 .. 20 | 21 .. 60        one rejection:
  //   leader 1       4 .. 4  |          |                 (10,t4)? no → hint (10,t2) → leader skips term 4 → (2,t1) ✓
  //   node 2         2 .. 2  |  2 .. 2  |  3 .. 3
  //
  //  case B     idx  3 4 5 6 7 | 8 .. 30 | 31 .. 50       two rejections:
  //   leader 1       2 2 2 5 5 |         |                (7,t5)? no → hint (7,t3) → leader skips to (5,t2)
  //   node 2         3 3 3 3 3 | 3 .. 3  | 4 .. 4         (5,t2)? no → hint (2,t1) → (2,t1) ✓
  const cases = [
    { name: "A", leader: [1, 1, ...Array(8).fill(4)], follower: [1, 1, ...Array(18).fill(2), ...Array(40).fill(3)], rejections: 1 },
    { name: "B", leader: [1, 1, 2, 2, 2, 5, 5], follower: [1, 1, ...Array(28).fill(3), ...Array(20).fill(4)], rejections: 2 },
  ];
  for (const c of cases) {
    const h = new Harness([1, 2, 3]);
    const term = Math.max(...c.leader, ...c.follower);
    h.add(1, storageWithLog([1, 2, 3], c.leader, { term, vote: 0, commit: 2 }));
    h.add(3, storageWithLog([1, 2, 3], c.leader, { term, vote: 0, commit: 2 }));
    h.add(2, storageWithLog([1, 2, 3], c.follower, { term, vote: 0, commit: 2 }));
    h.elect(1);
    assert.equal(h.get(1).node.status().role, "leader", `case ${c.name}`);
    const divergent = c.follower.length - 2;
    const rejections = h.delivered.filter((m) => m.type === "appResp" && m.from === 2 && m.reject).length;
    assert.equal(rejections, c.rejections, `case ${c.name}: rejections for ${divergent} divergent entries`);
    const leaderTerms = storedTerms(h.get(1).storage);
    assert.deepEqual(storedTerms(h.get(2).storage), leaderTerms, `case ${c.name}: node 2's log is the leader's`);
    assert.equal(leaderTerms.length, c.leader.length + 1, "the leader's log plus its no-op");
  }
});

test("a deposed leader's uncommitted suffix is truncated and replaced by the new leader's entries", () => {
  const h = cluster();
  h.get(1).node.propose(bytes("a"));
  h.stabilize();
  // Leader 1 is cut off and keeps accepting proposals that can never commit.
  h.partition(1);
  assert.equal(h.get(1).node.propose(bytes("lost1")).ok, true);
  assert.equal(h.get(1).node.propose(bytes("lost2")).ok, true);
  h.stabilize();
  assert.deepEqual(storedTerms(h.get(1).storage), [2, 2, 2, 2], "the no-op, a, lost1, lost2 at 2..5");
  assert.equal(h.get(1).node.status().commit, 3);

  // 2 and 3 elect a new leader, which commits "b" at index 5 — the index of "lost2".
  tickUntil(h, () => [2, 3].some((id) => h.get(id).node.status().role === "leader"), 100, [2, 3]);
  const newLeader = [2, 3].find((id) => h.get(id).node.status().role === "leader")!;
  h.get(newLeader).node.propose(bytes("b"));
  h.stabilize();
  const newTerms = storedTerms(h.get(newLeader).storage);
  assert.equal(newTerms.length, 4);
  assert.ok(newTerms[2]! > 2, "index 4 holds the new leader's no-op");

  // Heal: node 1 learns the new term and its conflicting suffix (4, 5 of term 2) is replaced.
  h.heal();
  tickUntil(h, () => h.appliedData(1).includes("b"));
  assert.deepEqual(storedTerms(h.get(1).storage), newTerms);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["a", "b"], `node ${id} never applied the lost entries`);
});

test("a leader counts itself only after its entries are persisted (1 node: nothing commits before advance())", () => {
  const storage = MemoryStorage.bootstrap([1]);
  const node = new RawNode({ id: 1, storage, random: new SeededRandom(1) });
  node.campaign();
  assert.equal(node.status().role, "leader");

  let rd = node.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [2], "the no-op (after the bootstrap snapshot at 1), to persist");
  assert.deepEqual(rd.committedEntries, []);
  assert.equal(node.status().commit, 1, "a quorum of one, but the one has not persisted: only the bootstrap is committed");
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  assert.equal(node.status().commit, 1, "persisted by the host but not reported yet");
  node.advance();
  assert.equal(node.status().commit, 2, "advance() reports the persistence: committed");

  rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  storage.append(rd.entries);
  node.advance();

  const r = node.propose(bytes("x"));
  assert.deepEqual(r, { ok: true, index: 3, term: 2 });
  rd = node.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [3]);
  assert.deepEqual(rd.committedEntries, []);
  // Things that happen between ready() and advance() do not count the unpersisted entry either.
  node.tick();
  assert.equal(node.status().commit, 2);
  storage.append(rd.entries);
  node.advance();
  assert.equal(node.status().commit, 3);
  rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => new TextDecoder().decode(e.data)), ["x"]);
  node.advance();
  assert.equal(node.hasReady(), false);
});

test("a leader counts itself only after persisting (3 nodes: one follower's ack is not a quorum until the leader's advance())", () => {
  const h = cluster();
  const leader = h.get(1);
  leader.node.propose(bytes("x"));
  const rd = leader.node.ready(); // the leader starts persisting index 3 ...
  assert.deepEqual(rd.entries.map((e) => e.index), [3]);
  const toTwo = rd.messages.filter(isAppendWithEntries(1, 2));
  assert.equal(toTwo.length, 1);
  // ... and meanwhile sends it; node 2 persists and acknowledges before the leader's fsync finishes.
  h.get(2).node.step(toTwo[0]!);
  h.processReady(h.get(2));
  assert.equal(leader.node.status().progress!.get(2)!.match, 3, "node 2's ack arrived");
  assert.equal(leader.node.status().commit, 2, "leader (not persisted) + node 2 is not a quorum of persisted copies");

  leader.storage.append(rd.entries);
  if (rd.hardState) leader.storage.setHardState(rd.hardState);
  leader.node.advance();
  assert.equal(leader.node.status().commit, 3, "now the leader's own copy counts");
  h.stabilize();
  assert.deepEqual(h.appliedData(1), ["x"]);
});

test("proposals on followers are rejected with notLeader and the leader's id (0 if unknown)", () => {
  const fresh = new Harness([1, 2, 3]);
  assert.deepEqual(fresh.get(2).node.propose(bytes("x")), { ok: false, reason: "notLeader", lead: 0 });
  const h = cluster();
  for (const id of [2, 3]) {
    assert.deepEqual(h.get(id).node.propose(bytes("x")), { ok: false, reason: "notLeader", lead: 1 });
    assert.deepEqual(h.get(id).node.proposeConfChange({ type: "addLearner", nodeId: 4 }), { ok: false, reason: "notLeader", lead: 1 });
  }
  h.stabilize();
  assert.equal(h.get(1).node.status().lastIndex, 2, "nothing was appended anywhere (after the no-op)");
  assert.equal(h.get(2).node.status().lastIndex, 2);
});

test("overloaded: past maxUncommittedBytes the leader rejects proposals until entries are applied", () => {
  const h = cluster({ maxUncommittedBytes: 10 });
  const leader = h.get(1).node;
  h.partition(1); // nothing commits
  assert.equal(leader.propose(bytes("12345678")).ok, true, "8 of 10 bytes");
  assert.deepEqual(leader.propose(bytes("abc")), { ok: false, reason: "overloaded", lead: 1 }, "11 > 10");
  assert.equal(leader.propose(bytes("ab")).ok, true, "exactly 10 is still allowed");
  assert.deepEqual(leader.propose(bytes("z")), { ok: false, reason: "overloaded", lead: 1 });
  assert.equal(leader.propose(new Uint8Array(0)).ok, true, "an empty proposal adds no bytes");
  h.stabilize();

  h.heal();
  tickUntil(h, () => h.appliedData(1).length === 2);
  assert.deepEqual(h.appliedData(1), ["12345678", "ab"]);
  assert.equal(leader.propose(bytes("12345678")).ok, true, "applied entries no longer count");
  h.stabilize();
  assert.deepEqual(h.appliedData(2), ["12345678", "ab", "12345678"]);
});

test("overloaded: a single proposal larger than the limit is accepted when nothing is uncommitted (no livelock)", () => {
  const h = cluster({ maxUncommittedBytes: 10 });
  assert.equal(h.get(1).node.propose(new Uint8Array(50)).ok, true);
  assert.equal(h.get(1).node.propose(new Uint8Array(1)).ok, false);
  h.stabilize();
  assert.equal(h.get(1).node.propose(new Uint8Array(1)).ok, true);
});

test("lazyCommit: a commit that finds nothing to send waits for the next append or heartbeat; eager sends empty appends at once", () => {
  for (const lazyCommit of [false, true]) {
    const h = new Harness([1, 2, 3], { lazyCommit });
    h.elect(1);
    h.tick(1); // a heartbeat: every follower knows the no-op is committed
    for (const id of [1, 2, 3]) assert.equal(h.get(id).node.status().commit, 2);
    const before = h.delivered.length;
    assert.equal(h.get(1).node.propose(bytes("x")).ok, true);
    h.stabilize();
    const sent = h.delivered.slice(before);
    const appends = sent.filter((m) => m.type === "app" && m.from === 1);
    assert.equal(h.get(1).node.status().commit, 3, `lazyCommit ${lazyCommit}: the leader committed`);
    assert.deepEqual(h.appliedData(1), ["x"]);
    if (!lazyCommit) {
      assert.equal(appends.length, 4, "one append with the entry and one carrying the commit, per follower");
      for (const id of [2, 3]) assert.equal(h.get(id).node.status().commit, 3);
      continue;
    }
    assert.equal(appends.length, 2, "one append per follower: the entry");
    for (const id of [2, 3]) assert.equal(h.get(id).node.status().commit, 2, `follower ${id} has not heard of the commit yet`);
    // The next write carries it...
    assert.equal(h.get(1).node.propose(bytes("y")).ok, true);
    h.stabilize();
    for (const id of [2, 3]) assert.deepEqual(h.appliedData(id), ["x"], `follower ${id} applied x with y's append`);
    // ...and a heartbeat brings the rest.
    h.tick(1);
    for (const id of [2, 3]) assert.deepEqual(h.appliedData(id), ["x", "y"]);
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRandom } from "../lib/random.js";
import { message, type ConfState, type Snapshot } from "./messages.js";
import { RawNode } from "./raw-node.js";
import { MemoryStorage } from "./storage.js";
import { Harness, bytes } from "./testing/harness.js";
import { Held, RecordingHarness, storageWithLog, tickUntil } from "./testing/script-kit.js";

/**
 * Leader 1 of {1,2,3} (term 2, no-op at index 2 after the bootstrap snapshot at 1); node 3 is cut
 * off while v1..v5 commit (indexes 3..7); the leader then snapshots at its applied index 7 and
 * compacts its log, and commits v6 at index 8.
 *
 *   leader log   [snapshot ≤ 7] 8
 *   node 3       [bootstrap ≤ 1] 2   → needs entries the leader no longer has
 */
function leaderCompactedWhileThreeWasAway(): RecordingHarness {
  const h = new RecordingHarness([1, 2, 3]);
  h.elect(1);
  h.partition(3);
  for (let i = 1; i <= 5; i++) h.get(1).node.propose(bytes(`v${i}`));
  h.stabilize();
  const leader = h.get(1);
  const st = leader.node.status();
  assert.equal(st.applied, 7);
  leader.storage.createSnapshot(7, st.confState, bytes("state machine @7"));
  leader.storage.compact(7);
  leader.node.propose(bytes("v6"));
  h.stabilize();
  assert.equal(leader.node.status().commit, 8);
  assert.equal(leader.node.status().firstIndex, 8);
  assert.equal(h.get(3).node.status().lastIndex, 2);
  return h;
}

test("a lagging follower behind the leader's log start gets a snapshot, installs it, then catches up with appends", () => {
  const h = leaderCompactedWhileThreeWasAway();
  const mark = h.delivered.length;
  h.heal();
  tickUntil(h, () => h.appliedData(3).includes("v6"));

  const toThree = h.delivered.slice(mark).filter((m) => m.to === 3);
  const snaps = toThree.filter((m) => m.type === "snap");
  assert.equal(snaps.length, 1, "exactly one snapshot was sent");
  assert.equal(snaps[0]!.snapshot!.metadata.index, 7);
  const afterSnap = toThree.slice(toThree.indexOf(snaps[0]!) + 1);
  assert.ok(
    afterSnap.some((m) => m.type === "app" && m.entries.some((e) => e.index === 8)),
    "entry 8 arrived by a normal append after the snapshot",
  );

  const installed = h.readiesOf(3).filter((rd) => rd.snapshot !== undefined);
  assert.equal(installed.length, 1, "node 3 got Ready.snapshot once");
  assert.deepEqual(installed[0]!.snapshot!.data, bytes("state machine @7"));
  assert.deepEqual(installed[0]!.snapshot!.metadata.confState, { voters: [1, 2, 3], learners: [] });
  assert.equal(installed[0]!.mustSync, true);

  const s3 = h.get(3).node.status();
  assert.equal(s3.firstIndex, 8);
  assert.equal(s3.commit, 8);
  assert.equal(s3.applied, 8);
  assert.equal(h.get(3).storage.snapshot().metadata.index, 7);
  assert.deepEqual(h.appliedData(3), ["v6"], "entries up to 7 came inside the snapshot, not one by one");
  const pr = h.get(1).node.status().progress!.get(3)!;
  assert.equal(pr.state, "replicate");
  assert.equal(pr.match, 8);

  h.get(1).node.propose(bytes("v7"));
  h.stabilize();
  assert.deepEqual(h.appliedData(3), ["v6", "v7"], "and replicates normally afterwards");
});

test("a new node with empty storage joins through a snapshot and learns the membership from it", () => {
  const h = new RecordingHarness([1, 2, 3]);
  h.elect(1);
  for (let i = 1; i <= 3; i++) h.get(1).node.propose(bytes(`v${i}`));
  h.stabilize();
  const leader = h.get(1);
  assert.equal(leader.node.status().applied, 5, "the no-op (2) and v1..v3 (3..5)");
  leader.storage.createSnapshot(5, leader.node.status().confState, bytes("sm@5"));
  leader.storage.compact(5);

  assert.equal(leader.node.proposeConfChange({ type: "addLearner", nodeId: 4 }).ok, true);
  h.stabilize();
  h.add(4, new MemoryStorage());
  tickUntil(h, () => h.get(4).node.status().confState.learners.includes(4), 20);

  assert.equal(h.readiesOf(4).filter((rd) => rd.snapshot?.metadata.index === 5).length, 1);
  assert.deepEqual(h.get(4).node.status().confState, { voters: [1, 2, 3], learners: [4] });
  leader.node.propose(bytes("v4"));
  h.stabilize();
  assert.deepEqual(h.appliedData(4), ["v4"]);
});

test("reportSnapshot(failure): the leader stops waiting and probes again, which sends a new snapshot", () => {
  const h = leaderCompactedWhileThreeWasAway();
  h.heal();
  const lost = new Held(h, (m) => m.type === "snap");
  h.tick(1);
  assert.equal(lost.messages.length, 1, "a snapshot is on its way (and will be lost)");
  const leader = h.get(1).node;
  assert.equal(leader.status().progress!.get(3)!.state, "snapshot");

  // Without a report the leader keeps waiting: nothing more is sent to 3, heartbeats aside.
  const mark = h.delivered.length;
  h.tick(5);
  assert.equal(lost.messages.length, 1, "no second snapshot while the first one is pending");
  assert.equal(h.delivered.slice(mark).filter((m) => m.to === 3 && m.type === "app").length, 0);
  assert.equal(leader.status().progress!.get(3)!.state, "snapshot");

  lost.drop();
  leader.reportSnapshot(3, false);
  const pr = leader.status().progress!.get(3)!;
  assert.equal(pr.state, "probe");
  assert.equal(pr.next, pr.match + 1, "a failed snapshot says nothing about the follower's log");

  h.tick(1); // the heartbeat answer lets the probe go, which needs the snapshot again
  assert.equal(lost.messages.length, 1, "a new snapshot was sent");
  lost.release();
  h.heal();
  tickUntil(h, () => h.appliedData(3).includes("v6"), 10);
  assert.equal(leader.status().progress!.get(3)!.state, "replicate");
});

test("reportSnapshot(success) probes from after the snapshot", () => {
  const h = leaderCompactedWhileThreeWasAway();
  h.heal();
  const inTransit = new Held(h, (m) => m.type === "snap");
  h.tick(1);
  assert.equal(inTransit.messages.length, 1);
  const leader = h.get(1).node;
  leader.reportSnapshot(3, true);
  assert.equal(leader.status().progress!.get(3)!.state, "probe");
  assert.equal(leader.status().progress!.get(3)!.next, 8, "the follower has at least the snapshot (7)");
  inTransit.release();
  h.heal();
  tickUntil(h, () => h.appliedData(3).includes("v6"), 10);
});

function snapMessage(to: number, term: number, index: number, snapTerm: number, confState: ConfState): ReturnType<typeof message> {
  const snapshot: Snapshot = { metadata: { index, term: snapTerm, confState }, data: bytes(`sm@${index}`) };
  return message({ type: "snap", from: 1, to, term, snapshot });
}

test("a follower ignores a snapshot that is not newer than its commit index, and answers with its commit", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  for (let i = 1; i <= 5; i++) h.get(1).node.propose(bytes(`v${i}`));
  h.stabilize();
  const follower = h.get(2).node;
  const { term, commit, confState } = follower.status();
  assert.equal(commit, 7, "the no-op (2) and v1..v5 (3..7), all of term 2");
  for (const index of [5, 7]) {
    follower.step(snapMessage(2, term, index, 2, confState));
    const rd = follower.ready();
    assert.equal(rd.snapshot, undefined, `snapshot at ${index} ignored`);
    assert.deepEqual(rd.entries, []);
    const resp = rd.messages.filter((m) => m.type === "appResp");
    assert.equal(resp.length, 1);
    assert.equal(resp[0]!.index, 7, "tells the leader where it really is");
    assert.equal(resp[0]!.reject, false);
    follower.advance();
  }
  assert.equal(follower.status().firstIndex, 2, "the log was not replaced (still right after the bootstrap snapshot)");
  assert.equal(follower.status().commit, 7);

  // The dangerous case: the follower compacted its own log past a delayed snapshot. It can no
  // longer match the snapshot's last entry by term, and only the commit check keeps it from
  // rolling its state back to index 5.
  const two = h.get(2);
  two.storage.createSnapshot(6, confState, bytes("own sm@6"));
  two.storage.compact(6);
  follower.step(snapMessage(2, term, 5, 2, confState));
  const rd = follower.ready();
  assert.equal(rd.snapshot, undefined, "a delayed snapshot below the compaction point is ignored");
  assert.equal(rd.messages.find((m) => m.type === "appResp")?.index, 7);
  follower.advance();
  assert.equal(follower.status().commit, 7);
  assert.equal(follower.status().firstIndex, 7);
});

test("a snapshot whose last entry the follower already has only fast-forwards its commit", () => {
  // Node 2 stores 1..8 of term 1 but knows only commit 6.
  const storage = storageWithLog([1, 2, 3], [1, 1, 1, 1, 1, 1, 1, 1], { term: 1, vote: 0, commit: 6 });
  const node = new RawNode({ id: 2, storage, random: new SeededRandom(2) });
  const cs = { voters: [1, 2, 3], learners: [] };
  node.step(snapMessage(2, 1, 8, 1, cs));
  const rd = node.ready();
  assert.equal(rd.snapshot, undefined);
  assert.equal(node.status().commit, 8);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(rd.messages.find((m) => m.type === "appResp")?.index, 8);
  node.advance();
  assert.equal(node.status().lastIndex, 8);
});

test("a snapshot that conflicts with an uncommitted suffix replaces the whole log", () => {
  // Node 2 stores 1..8 of term 1, commit 3; the leader's snapshot covers up to (6, t2).
  const storage = storageWithLog([1, 2, 3], [1, 1, 1, 1, 1, 1, 1, 1], { term: 2, vote: 0, commit: 3 });
  const node = new RawNode({ id: 2, storage, random: new SeededRandom(2) });
  node.step(snapMessage(2, 2, 6, 2, { voters: [1, 2, 3], learners: [] }));
  const rd = node.ready();
  assert.equal(rd.snapshot?.metadata.index, 6);
  assert.equal(rd.messages.find((m) => m.type === "appResp")?.index, 6);
  storage.applySnapshot(rd.snapshot!);
  node.advance();
  const st = node.status();
  assert.deepEqual([st.firstIndex, st.lastIndex, st.commit, st.applied], [7, 6, 6, 6], "entries 7, 8 of term 1 are gone");
});

test("restart from a snapshot-only storage restores commit, applied and membership", () => {
  const cs: ConfState = { voters: [1, 2, 3], learners: [4] };
  const snapshotOnly = () => {
    const s = new MemoryStorage();
    s.applySnapshot({ metadata: { index: 10, term: 3, confState: cs }, data: bytes("sm@10") });
    s.setHardState({ term: 3, vote: 0, commit: 10 });
    return s;
  };
  const node = new RawNode({ id: 2, storage: snapshotOnly(), random: new SeededRandom(1) });
  const st = node.status();
  assert.deepEqual(
    { commit: st.commit, applied: st.applied, firstIndex: st.firstIndex, lastIndex: st.lastIndex, term: st.term, confState: st.confState },
    { commit: 10, applied: 10, firstIndex: 11, lastIndex: 10, term: 3, confState: cs },
  );
  assert.equal(node.hasReady(), false, "nothing to apply: the snapshot is the state");

  // A whole cluster restarted that way elects a leader and continues after index 10.
  const h = new Harness([1, 2, 3]);
  for (const id of [1, 2, 3]) h.add(id, snapshotOnly());
  h.elect(1);
  const leader = h.get(1).node.status();
  assert.equal(leader.role, "leader");
  assert.equal(leader.term, 4);
  assert.equal(leader.progress?.get(4)?.isLearner, true, "the learner of the snapshot's membership is tracked");
  h.get(1).node.propose(bytes("after"));
  h.stabilize();
  for (const id of [1, 2, 3]) {
    assert.deepEqual(h.appliedData(id), ["after"]);
    assert.equal(h.get(id).node.status().commit, 12);
  }
});

test("restart after compaction re-applies only entries after the snapshot, with the membership changes among them", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  const leader = h.get(1).node;
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 4 }).ok, true); // index 3 (the no-op is 2)
  h.stabilize();
  leader.propose(bytes("before")); // 4
  h.stabilize();
  // Node 2 snapshots at 4 (membership {1,2,3} + learner 4) and compacts.
  const two = h.get(2);
  assert.equal(two.node.status().applied, 4);
  two.storage.createSnapshot(4, two.node.status().confState, bytes("sm@4"));
  two.storage.compact(4);
  assert.equal(leader.proposeConfChange({ type: "addLearner", nodeId: 5 }).ok, true); // 5
  h.stabilize();
  leader.propose(bytes("after")); // 6
  h.stabilize();

  const restarted = h.restart(2).node;
  const st = restarted.status();
  assert.equal(st.applied, 4, "applied restarts from the snapshot");
  assert.equal(st.commit, 6, "commit comes from the hard state");
  assert.deepEqual(st.confState, { voters: [1, 2, 3], learners: [4] }, "membership as of the snapshot");
  h.stabilize();
  assert.deepEqual(h.appliedData(2), ["after"], "only entries after the snapshot are re-applied");
  assert.deepEqual(restarted.status().confState, { voters: [1, 2, 3], learners: [4, 5] }, "and their membership changes");
});

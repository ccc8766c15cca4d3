import { test } from "node:test";
import assert from "node:assert/strict";
import { Progress, type ProgressState } from "./progress.js";

function progress(state: ProgressState, match: number, next: number, opts: { maxMsgs?: number; maxBytes?: number } = {}): Progress {
  const pr = new Progress(next, opts.maxMsgs ?? 256, opts.maxBytes ?? 0, false);
  pr.match = match;
  if (state === "replicate") {
    pr.state = "replicate";
  } else if (state === "snapshot") {
    pr.becomeSnapshot(next);
  }
  pr.next = next;
  return pr;
}

test("a new progress probes from `next` and is not paused", () => {
  const pr = new Progress(5, 4, 100, false);
  assert.equal(pr.state, "probe");
  assert.equal(pr.match, 0);
  assert.equal(pr.next, 5);
  assert.equal(pr.isPaused(), false);
});

test("probe: one append out pauses until the follower answers", () => {
  const pr = progress("probe", 3, 5);
  pr.sentEntries(2, 6, 48);
  assert.equal(pr.isPaused(), true, "an append is out");
  assert.equal(pr.next, 5, "probe does not move next optimistically");
  assert.equal(pr.maybeUpdate(6), true);
  assert.equal(pr.match, 6);
  assert.equal(pr.next, 7);
  assert.equal(pr.isPaused(), false, "the answer unpauses");
});

test("probe → replicate streams optimistically until inflights are full (by count)", () => {
  const pr = progress("probe", 4, 5, { maxMsgs: 2 });
  pr.becomeReplicate();
  assert.equal(pr.state, "replicate");
  assert.equal(pr.next, 5);
  pr.sentEntries(2, 6, 10);
  assert.equal(pr.next, 7, "next runs ahead of match");
  assert.equal(pr.isPaused(), false);
  pr.sentEntries(1, 7, 10);
  assert.equal(pr.next, 8);
  assert.equal(pr.isPaused(), true, "2 messages in flight");
  pr.sentEntries(0, 7, 0); // an empty append (a commit update) does not count
  assert.equal(pr.inflights.length, 2);
  assert.equal(pr.maybeUpdate(6), true);
  pr.inflights.freeLE(6); // what the leader does on an acknowledgement in replicate state
  assert.equal(pr.isPaused(), false);
});

test("replicate: paused by bytes in flight", () => {
  const pr = progress("replicate", 0, 1, { maxMsgs: 100, maxBytes: 100 });
  pr.sentEntries(1, 1, 60);
  assert.equal(pr.isPaused(), false);
  pr.sentEntries(1, 2, 60);
  assert.equal(pr.isPaused(), true);
});

test("snapshot state is always paused; leaving it probes from after the snapshot", () => {
  const pr = progress("replicate", 3, 10);
  pr.becomeSnapshot(20);
  assert.equal(pr.state, "snapshot");
  assert.equal(pr.pendingSnapshot, 20);
  assert.equal(pr.isPaused(), true);
  pr.becomeProbe();
  assert.equal(pr.state, "probe");
  assert.equal(pr.next, 21, "the follower has at least the snapshot: max(match+1, pending+1)");
  assert.equal(pr.pendingSnapshot, 0);
  assert.equal(pr.isPaused(), false);

  // A failed snapshot (pendingSnapshot cleared by the leader) probes from match + 1.
  const failed = progress("replicate", 3, 10);
  failed.becomeSnapshot(20);
  failed.pendingSnapshot = 0;
  failed.becomeProbe();
  assert.equal(failed.next, 4);
});

test("replicate → probe (e.g. unreachable) restarts from match + 1 and forgets inflights", () => {
  const pr = progress("replicate", 3, 4, { maxMsgs: 2 });
  pr.sentEntries(3, 6, 10);
  pr.sentEntries(2, 8, 10);
  assert.equal(pr.isPaused(), true);
  pr.becomeProbe();
  assert.equal(pr.next, 4);
  assert.equal(pr.inflights.length, 0);
  assert.equal(pr.isPaused(), false);
});

test("maybeUpdate only moves match forward and never moves next back", () => {
  const pr = progress("replicate", 5, 10);
  assert.equal(pr.maybeUpdate(4), false, "an old acknowledgement");
  assert.equal(pr.match, 5);
  assert.equal(pr.next, 10);
  assert.equal(pr.maybeUpdate(5), false);
  assert.equal(pr.maybeUpdate(7), true);
  assert.equal(pr.match, 7);
  assert.equal(pr.next, 10, "next stays ahead (appends 8, 9 are in flight)");
  assert.equal(pr.maybeUpdate(12), true);
  assert.equal(pr.next, 13);
});

test("maybeDecrTo: stale rejections are ignored, fresh ones move next back (etcd's table)", () => {
  //  state      match next  rejected hint → ok     next
  const cases: [ProgressState, number, number, number, number, boolean, number][] = [
    // replicate: a rejection at or below match is stale (it answers an append the follower has since matched)
    ["replicate", 5, 10, 5, 5, false, 10],
    ["replicate", 5, 10, 4, 4, false, 10],
    // replicate: a fresh rejection goes straight back to match + 1
    ["replicate", 5, 10, 9, 9, true, 6],
    // probe: only a rejection of the append we sent (next - 1) counts
    ["probe", 0, 0, 0, 0, false, 0],
    ["probe", 0, 10, 5, 5, false, 10],
    // probe: back to min(rejected, hint + 1)
    ["probe", 0, 10, 9, 9, true, 9],
    ["probe", 0, 2, 1, 1, true, 1],
    ["probe", 0, 1, 0, 0, true, 1],
    ["probe", 0, 10, 9, 2, true, 3],
    ["probe", 0, 10, 9, 0, true, 1],
    // probe: never below match + 1, whatever the hint says
    ["probe", 4, 10, 9, 0, true, 5],
  ];
  for (const [state, match, next, rejected, hint, wantOk, wantNext] of cases) {
    const pr = progress(state, match, next);
    const ok = pr.maybeDecrTo(rejected, hint);
    const what = `${state} match=${match} next=${next} maybeDecrTo(${rejected}, ${hint})`;
    assert.equal(ok, wantOk, what);
    assert.equal(pr.next, wantNext, what);
  }
});

test("maybeDecrTo in probe unpauses so that the next probe can go out", () => {
  const pr = progress("probe", 0, 10);
  pr.sentEntries(1, 10, 24);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeDecrTo(8, 8), false, "a stale rejection leaves the probe outstanding");
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeDecrTo(9, 3), true);
  assert.equal(pr.next, 4);
  assert.equal(pr.isPaused(), false);
});

test("isPaused by state", () => {
  const probe = progress("probe", 0, 1);
  assert.equal(probe.isPaused(), false);
  probe.probeSent = true;
  assert.equal(probe.isPaused(), true);

  const rep = progress("replicate", 0, 1, { maxMsgs: 1 });
  assert.equal(rep.isPaused(), false);
  rep.probeSent = true; // irrelevant in replicate state
  assert.equal(rep.isPaused(), false);
  rep.sentEntries(1, 1, 1);
  assert.equal(rep.isPaused(), true);

  const snap = progress("snapshot", 0, 1);
  assert.equal(snap.isPaused(), true);
});

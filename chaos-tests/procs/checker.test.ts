/**
 * Negative controls for the chaos-run checker: a checker is trusted only once it has caught a
 * planted bug. Each anomaly gets a small hand-written scenario in two versions, clean and planted,
 * that differ by the one thing the anomaly is about; the clean one must report nothing and the
 * planted one exactly that anomaly, with its exact count. A realistic clean run (producers of both
 * kinds, a consumer group with a restart, offset commits, faults, the drain) must pass, also at the
 * size of a long run (~500k events), which keeps the checker free of quadratic scans.
 *
 * Positions are written as in the checker's examples: "t/0@3" is topic t, partition 0, offset 3.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkHistory, formatCheckResult, type CheckResult, type ViolationKind } from "./checker.js";
import type { EventType, HistoryEvent } from "./history.js";

type Fields = Omit<HistoryEvent, "type" | "wall" | "mono" | "req">;
type Completion = (type: Exclude<EventType, "invoke">, extra?: Partial<HistoryEvent>) => void;

interface ProduceOptions {
  readonly key?: string;
  readonly seq?: number;
  readonly idempotent?: boolean;
}

/** "t/0@3" → topic t, partition 0, offset 3; "t/0" → topic t, partition 0. */
function parse(at: string): { topic: string; partition: number; offset: number } {
  const match = /^([^/]+)\/(\d+)(?:@(-?\d+))?$/.exec(at);
  assert.ok(match !== null, `bad position ${at}`);
  return { topic: match[1] as string, partition: Number(match[2]), offset: Number(match[3] ?? -1) };
}

/** Writes a history like the harness does, on a clock that moves 1 ms per event unless set. */
class History {
  readonly events: HistoryEvent[] = [];
  private mono = 0;
  private readonly reqs = new Map<string, number>();

  /** Moves the clock forward to `mono` ms. */
  at(mono: number): this {
    assert.ok(mono >= this.mono, `time goes forward: ${mono} < ${this.mono}`);
    this.mono = mono;
    return this;
  }

  record(type: EventType, fields: Fields & { req?: number }): void {
    this.events.push({ type, wall: 1_700_000_000_000 + this.mono, mono: this.mono, ...fields });
    this.mono += 1;
  }

  /** Records an invoke now; the returned function records its completion when called. */
  begin(fields: Fields): Completion {
    const req = (this.reqs.get(fields.process) ?? 0) + 1;
    this.reqs.set(fields.process, req);
    this.record("invoke", { ...fields, req });
    return (type, extra = {}) => this.record(type, { ...fields, ...extra, req });
  }

  /** A produce acknowledged at `at` ("t/0@3"). */
  produce(process: string, id: string, at: string, o: ProduceOptions = {}): this {
    const { topic, partition, offset } = parse(at);
    this.begin({ process, op: "produce", topic, id, ...o })("ok", { partition, offset });
    return this;
  }

  /** A produce of `topic` that completed with fail or info, or never completed ("open"). */
  produceNot(outcome: "fail" | "info" | "open", process: string, id: string, o: ProduceOptions = {}, topic = "t"): this {
    const done = this.begin({ process, op: "produce", topic, id, ...o });
    if (outcome !== "open") done(outcome, { error: "boom" });
    return this;
  }

  deliver(group: string, session: string, id: string, at: string): this {
    const { topic, partition, offset } = parse(at);
    this.record("ok", { process: session, op: "deliver", group, session, topic, partition, offset, id });
    return this;
  }

  /** Delivers `ids` at consecutive offsets of `part` ("t/0") from `first`. */
  deliverAll(group: string, session: string, ids: readonly string[], part = "t/0", first = 0): this {
    ids.forEach((id, i) => this.deliver(group, session, id, `${part}@${first + i}`));
    return this;
  }

  assign(group: string, session: string, partitions: readonly number[], topic = "t"): this {
    this.record("ok", { process: session, op: "assign", group, session, topic, partitions });
    return this;
  }

  /** An offset commit of `part` ("t/0") with the given outcome. */
  commit(group: string, session: string, part: string, offset: number, outcome: "ok" | "fail" | "info" = "ok"): this {
    const { topic, partition } = parse(part);
    this.begin({ process: session, op: "commit", group, session, topic, partition, offset })(outcome);
    return this;
  }

  /** A read of committed offsets that returned `offsets` one millisecond after it was invoked. */
  readCommitted(group: string, offsets: Record<string, number>, topic = "t"): this {
    this.begin({ process: "harness", op: "read-committed", group, topic })("ok", { offsets });
    return this;
  }

  drain(id: string, at: string): this {
    const { topic, partition, offset } = parse(at);
    this.record("ok", { process: "drain", op: "drain", topic, partition, offset, id });
    return this;
  }

  /** Drains `ids` at consecutive offsets of `part` from `first`, then reports the end after them. */
  drainAll(ids: readonly string[], part = "t/0", first = 0): this {
    ids.forEach((id, i) => this.drain(id, `${part}@${first + i}`));
    return this.drainEnd(part, first + ids.length);
  }

  drainEnd(part: string, end: number): this {
    const { topic, partition } = parse(part);
    this.record("ok", { process: "drain", op: "drain-end", topic, partition, offset: end });
    return this;
  }

  leaders(leaders: Record<string, number>, topic = "t"): this {
    this.record("ok", { process: "harness", op: "leaders", topic, leaders });
    return this;
  }

  fault(fault: string, heal = false): this {
    this.record("ok", { process: "harness", op: "fault", fault, ...(heal ? { heal } : {}) });
    return this;
  }
}

/** Produces `ids` by `process` at consecutive offsets of `part` from `first`. */
function produceAll(h: History, process: string, ids: readonly string[], part = "t/0", first = 0, o: ProduceOptions = {}): void {
  ids.forEach((id, i) => h.produce(process, id, `${part}@${first + i}`, o));
}

const ABCD = ["a", "b", "c", "d"];

/** Asserts that `kind` is the only violation (or none, for count 0) with exactly `count`. */
function assertOnly(r: CheckResult, kind: ViolationKind, count: number): void {
  const found = r.violations.map((v) => `${v.kind} ${v.count}`);
  assert.deepEqual(found, count === 0 ? [] : [`${kind} ${count}`], formatCheckResult(r));
  assert.equal(r[kind], count, `${kind}\n${formatCheckResult(r)}`);
  assert.equal(r.valid, count === 0);
  const v = r.violations[0];
  if (v !== undefined) assert.ok(v.examples.length >= 1 && v.examples.length <= 5, `examples: ${v.examples.join(" | ")}`);
}

function examplesOf(r: CheckResult, kind: ViolationKind): string {
  return r.violations.find((v) => v.kind === kind)?.examples.join("\n") ?? "";
}

// --- lost -------------------------------------------------------------------------------------

function lostScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ABCD);
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ABCD);
  h.drainAll(planted ? ["a", "b"] : ABCD); // planted: the log lost its tail (c, d)
  return h.events;
}

test("lost: acknowledged records the drain never read", () => {
  assertOnly(checkHistory(lostScenario(false)), "lost", 0);
  const r = checkHistory(lostScenario(true));
  assertOnly(r, "lost", 2);
  assert.equal(r.acknowledged, 4);
  assert.match(examplesOf(r, "lost"), /"c" acknowledged at t\/0@2 to p1/);
});

// --- unseen -----------------------------------------------------------------------------------

function unseenScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ABCD);
  h.produce("p1", "x", "u/0@0"); // another topic, consumed by group g3 only
  h.assign("g1", "c1", [0]).deliverAll("g1", "c1", ABCD);
  h.assign("g2", "c2", [0]).deliverAll("g2", "c2", planted ? ["a", "b"] : ABCD);
  h.assign("g3", "c3", [0], "u").deliver("g3", "c3", "x", "u/0@0");
  h.drainAll(ABCD).drainAll(["x"], "u/0");
  return h.events;
}

test("unseen: drained records of a group's topics that the group never got, per group", () => {
  const clean = checkHistory(unseenScenario(false));
  assertOnly(clean, "unseen", 0);
  assert.deepEqual(clean.unseenByGroup, { g1: 0, g2: 0, g3: 0 }, "g3 does not consume topic t, g1 and g2 not u");
  const r = checkHistory(unseenScenario(true));
  assertOnly(r, "unseen", 2);
  assert.deepEqual(r.unseenByGroup, { g1: 0, g2: 2, g3: 0 });
  assert.deepEqual(r.consumeCounts, { g1: { 1: 4 }, g2: { 0: 2, 1: 2 }, g3: { 1: 1 } });
  assert.match(examplesOf(r, "unseen"), /group g2 never got "c" \(drained at t\/0@2\)/);
});

// --- duplicated -------------------------------------------------------------------------------

function duplicatedScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.produce("p1", "a", "t/0@0", { idempotent: true, key: "k", seq: 0 });
  h.produce("p2", "b", "t/0@1"); // a plain producer: its retries may write a record twice
  const log = planted ? ["a", "b", "b", "a"] : ["a", "b", "b"];
  h.assign("g", "c1", [0]).deliverAll("g", "c1", log);
  h.drainAll(log);
  return h.events;
}

test("duplicated: an idempotent producer's record in the log twice; a plain producer's is allowed", () => {
  const clean = checkHistory(duplicatedScenario(false));
  assertOnly(clean, "duplicated", 0);
  assert.equal(clean.duplicatedPlain, 1);
  const r = checkHistory(duplicatedScenario(true));
  assertOnly(r, "duplicated", 1);
  assert.equal(r.duplicatedPlain, 1);
  assert.match(examplesOf(r, "duplicated"), /"a" drained at t\/0@0, t\/0@3/);
});

// --- inconsistentOffsets ----------------------------------------------------------------------

function inconsistentScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.produce("p1", "a", "t/0@0");
  h.produce("p1", "b", planted ? "t/0@0" : "t/0@1"); // planted: a stale offset in the acknowledgement
  h.produce("p1", "c", planted ? "t/0@5" : "t/0@2"); // planted: an offset from nowhere
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "b", "c"]);
  h.drainAll(["a", "b", "c"]);
  return h.events;
}

test("inconsistentOffsets: two ids at one position, and an acknowledged offset the drain disagrees with", () => {
  assertOnly(checkHistory(inconsistentScenario(false)), "inconsistentOffsets", 0);
  const r = checkHistory(inconsistentScenario(true));
  assertOnly(r, "inconsistentOffsets", 3);
  assert.equal(r.inconsistentPositions, 1, "t/0@0 holds a and b");
  assert.equal(r.acknowledgedElsewhere, 2, "b acknowledged at @0 and c at @5, drained at @1 and @2");
  const examples = examplesOf(r, "inconsistentOffsets");
  assert.match(examples, /t\/0@0 holds "a" \(acknowledged to p1\) and "b" \(acknowledged to p1\)/);
  assert.match(examples, /"c" acknowledged at t\/0@5 to p1, drained at t\/0@2/);
});

test("inconsistentOffsets: a consumer handed another id than the drain read at the same position", () => {
  const h = new History();
  produceAll(h, "p1", ["a", "b"]);
  h.produceNot("info", "p1", "z");
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "z"]).assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "b"]);
  h.drainAll(["a", "b"]);
  const r = checkHistory(h.events);
  assertOnly(r, "inconsistentOffsets", 1);
  assert.match(examplesOf(r, "inconsistentOffsets"), /t\/0@1 holds "b" \(acknowledged to p1\) and "z" \(delivered to g\/c1\)/);
});

// --- abortedReads -----------------------------------------------------------------------------

function abortedScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.produce("p1", "a", "t/0@0");
  h.produceNot(planted ? "fail" : "info", "p1", "x"); // x is in the log: fine only if its outcome was unknown
  h.produceNot("fail", "p1", "y"); // y failed and is nowhere: fine
  h.produceNot("fail", "p1", "z").produce("p1", "z", "t/0@2"); // z failed once, then a retry with the same id succeeded
  const log = ["a", "x", "z"];
  h.assign("g", "c1", [0]).deliverAll("g", "c1", log);
  h.drainAll(log);
  return h.events;
}

test("abortedReads: a record whose produce certainly failed is delivered and drained", () => {
  assertOnly(checkHistory(abortedScenario(false)), "abortedReads", 0);
  const r = checkHistory(abortedScenario(true));
  assertOnly(r, "abortedReads", 1);
  assert.match(examplesOf(r, "abortedReads"), /"x" drained at t\/0@1, its produce by p1 failed/);
  assert.deepEqual(r.ops.produce, { invoke: 5, ok: 2, fail: 3, info: 0, unfinished: 0 });
});

// --- unexpected -------------------------------------------------------------------------------

function unexpectedScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.produce("p1", "a", "t/0@0");
  if (!planted) h.produceNot("open", "p1", "ghost"); // an unfinished produce may well have happened
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "ghost"]);
  h.drainAll(["a", "ghost"]);
  return h.events;
}

test("unexpected: a record read that no produce ever named", () => {
  const clean = checkHistory(unexpectedScenario(false));
  assertOnly(clean, "unexpected", 0);
  assert.equal(clean.ops.produce.unfinished, 1);
  const r = checkHistory(unexpectedScenario(true));
  assertOnly(r, "unexpected", 1);
  assert.match(examplesOf(r, "unexpected"), /"ghost" drained at t\/0@1, never produced/);
});

// --- nonMonotonic and skipped -----------------------------------------------------------------

const ABCDEF = ["a", "b", "c", "d", "e", "f"];

function nonMonotonicScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ABCDEF);
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "b", "c"]);
  // A rebalance that keeps partition 0 may start again from the committed offset (1). Planted: the
  // assignment names partition 1 only, so partition 0's run goes on and goes back from 2 to 1.
  h.assign("g", "c1", planted ? [1] : [0, 1]).deliverAll("g", "c1", ["b", "c", "d", "e", "f"], "t/0", 1);
  h.assign("g", "c2", [0]).deliverAll("g", "c2", ABCDEF); // another session has runs of its own
  h.drainAll(ABCDEF);
  return h.events;
}

test("nonMonotonic: within a run a session is handed an offset at or below the previous one", () => {
  assertOnly(checkHistory(nonMonotonicScenario(false)), "nonMonotonic", 0);
  const r = checkHistory(nonMonotonicScenario(true));
  assertOnly(r, "nonMonotonic", 1);
  assert.match(examplesOf(r, "nonMonotonic"), /group g session c1 t\/0: @1 after @2/);
});

function skippedScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ABCDEF);
  h.assign("g", "c1", [0]).deliverAll("g", "c1", ["a", "b"]);
  h.assign("g", "c2", [0]).deliverAll("g", "c2", ["c", "d"], "t/0", 2);
  if (!planted) h.assign("g", "c1", [0]); // planted: c1 goes on past offsets 2..3 without a new assignment
  h.deliverAll("g", "c1", ["e", "f"], "t/0", 4);
  h.drainAll(ABCDEF);
  return h.events;
}

test("skipped: within a run a session is handed an offset beyond the next one", () => {
  assertOnly(checkHistory(skippedScenario(false)), "skipped", 0);
  const r = checkHistory(skippedScenario(true));
  assertOnly(r, "skipped", 1);
  assert.match(examplesOf(r, "skipped"), /group g session c1 t\/0: @4 after @1 \(skipped 2\.\.3\)/);
});

// --- reordered --------------------------------------------------------------------------------

function reorderedScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  const idem = { idempotent: true, key: "k" };
  h.produce("p1", "a", "t/0@0", { ...idem, seq: 0 });
  h.produce("p1", "b", planted ? "t/0@2" : "t/0@1", { ...idem, seq: 1 });
  h.produce("p1", "c", planted ? "t/0@1" : "t/0@2", { ...idem, seq: 2 });
  h.produce("p1", "d", "t/0@3", { idempotent: true, key: "other", seq: 3 });
  // A plain producer gives no order guarantee: its retries may reorder a key.
  h.produce("p2", "x", "t/1@1", { key: "k", seq: 0 });
  h.produce("p2", "y", "t/1@0", { key: "k", seq: 1 });
  const log = planted ? ["a", "c", "b", "d"] : ["a", "b", "c", "d"];
  h.assign("g", "c1", [0, 1]).deliverAll("g", "c1", log).deliverAll("g", "c1", ["y", "x"], "t/1");
  h.drainAll(log).drainAll(["y", "x"], "t/1");
  return h.events;
}

test("reordered: an idempotent producer's records of one key land out of send order", () => {
  assertOnly(checkHistory(reorderedScenario(false)), "reordered", 0);
  const r = checkHistory(reorderedScenario(true));
  assertOnly(r, "reordered", 1);
  assert.match(examplesOf(r, "reordered"), /p1 key "k": seq 1 "b" at t\/0@2, then seq 2 "c" at t\/0@1/);
});

// --- commitRegressions ------------------------------------------------------------------------

function commitScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.at(10).commit("g", "c1", "t/0", 3);
  h.at(20).readCommitted("g", { "0": 3 });
  // Two reads overlapping a slow commit of 5 (invoked at 25, done at 50) may see either value.
  const commit5 = h.at(25).begin({ process: "c1", op: "commit", group: "g", session: "c1", topic: "t", partition: 0, offset: 5 });
  const readA = h.at(30).begin({ process: "harness", op: "read-committed", group: "g", topic: "t" });
  const readB = h.at(35).begin({ process: "harness", op: "read-committed", group: "g", topic: "t" });
  h.at(40);
  readA("ok", { offsets: { "0": 5 } });
  h.at(45);
  readB("ok", { offsets: { "0": 3 } }); // concurrent with readA: no regression
  h.at(50);
  commit5("ok");
  h.at(55).commit("g", "c1", "t/0", 9, "info"); // unknown outcome: not a lower bound
  h.at(60).readCommitted("g", { "0": planted ? 4 : 5 }); // (a) and (b): below the read at 40 and the commit at 50
  h.at(70).readCommitted("g", { "0": planted ? -1 : 5 }); // (a): gone
  h.at(80).commit("g", "c1", "t/0", 7);
  h.at(90).readCommitted("g", { "0": planted ? 6 : 7, "1": -1 }); // (b): below the commit of 7
  return h.events;
}

test("commitRegressions: a committed offset read lower than one known before the read began", () => {
  assertOnly(checkHistory(commitScenario(false)), "commitRegressions", 0);
  const r = checkHistory(commitScenario(true));
  assertOnly(r, "commitRegressions", 3);
  const examples = examplesOf(r, "commitRegressions");
  // Each regression names the highest bound known when the read began (the earliest, on a tie).
  assert.deepEqual(r.violations[0]?.examples, [
    "group g t/0: read 4 by harness (req 4, 60..61 ms) after read 5 by harness (req 2, 30..40 ms)",
    "group g t/0: read -1 by harness (req 5, 70..71 ms) after read 5 by harness (req 2, 30..40 ms)",
    "group g t/0: read 6 by harness (req 6, 90..91 ms) after commit 7 by c1 (req 4, done at 81 ms)",
  ]);
});

function beyondEndScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ["a", "b", "c"]);
  h.drainAll(["a", "b", "c"]); // the end of t/0 is 3
  h.commit("g", "c1", "t/0", 3); // the next offset to consume: the end itself is fine
  h.readCommitted("g", { "0": 3 });
  h.commit("g2", "c2", "t/0", planted ? 4 : 2);
  h.readCommitted("g3", { "0": planted ? 5 : 3 });
  h.commit("g4", "c4", "t/1", 100); // t/1 was not drained: its end is unknown
  return h.events;
}

test("commitBeyondEnd: a committed offset beyond the partition's end, once per group and partition", () => {
  assertOnly(checkHistory(beyondEndScenario(false)), "commitBeyondEnd", 0);
  const r = checkHistory(beyondEndScenario(true));
  assertOnly(r, "commitBeyondEnd", 2);
  assert.match(examplesOf(r, "commitBeyondEnd"), /group g2 t\/0: commit 4 by c2 .*beyond the end 3/);
});

// --- drainGaps --------------------------------------------------------------------------------

function drainGapScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  produceAll(h, "p1", ["a", "b", "c"]);
  h.produceNot("info", "p1", "x");
  produceAll(h, "p1", ["d", "e"], "t/0", 4);
  h.produce("p1", "old", "t/1@10").produce("p1", "older", "t/1@11");
  if (planted) {
    // x (at 3) and two more records (at 6 and 7, from nobody the history knows) were never read.
    for (const [id, offset] of [["a", 0], ["b", 1], ["c", 2], ["d", 4], ["e", 5]] as const) h.drain(id, `t/0@${offset}`);
    h.drainEnd("t/0", 8);
  } else {
    h.drainAll(["a", "b", "c", "x", "d", "e"]);
  }
  h.drainAll(["old", "older"], "t/1", 10); // the log starts at 10 (retention): no gap below it
  return h.events;
}

test("drainGaps: offsets between the first drained and the end that the drain never read", () => {
  assertOnly(checkHistory(drainGapScenario(false)), "drainGaps", 0);
  const r = checkHistory(drainGapScenario(true));
  assertOnly(r, "drainGaps", 3);
  assert.deepEqual(r.violations[0]?.examples, ["t/0@3 never drained", "t/0@6..7 never drained"]);
});

// --- leaderlessAfterHeal ----------------------------------------------------------------------

function leaderScenario(planted: boolean): HistoryEvent[] {
  const h = new History();
  h.at(0).leaders({ "0": 1, "1": 1, "2": 1 });
  h.at(1_000).fault("kill");
  h.at(1_100).leaders({ "0": 0, "1": 1, "2": 1 });
  h.at(3_100).leaders({ "0": 2, "1": 1, "2": 1 }); // 2000 ms without a leader during the fault
  h.at(4_000).leaders({ "0": 2, "1": 1, "2": planted ? 0 : 1 });
  h.at(5_000).fault("kill", true); // the last heal
  h.at(5_100).leaders({ "0": 2, "1": 0, "2": planted ? 0 : 1 });
  h.at(6_000).leaders({ "0": 2, "1": planted ? 0 : 3, "2": planted ? 0 : 1 });
  h.at(36_000).leaders({ "0": 2, "1": planted ? 0 : 3, "2": planted ? 0 : 1 });
  h.at(40_000).leaders({ "0": 2, "1": planted ? 0 : 3, "2": planted ? 3 : 1 });
  return h.events;
}

test("leaderlessAfterHeal: partitions without a leader for longer than the limit after the last heal", () => {
  const clean = checkHistory(leaderScenario(false));
  assertOnly(clean, "leaderlessAfterHeal", 0);
  assert.equal(clean.maxUnavailabilityMs, 2_000);
  assert.equal(clean.leaderlessAfterHealMs, 900);
  assert.deepEqual(clean.ops.faults, { kill: 1 });
  assert.equal(clean.ops.heals, 1);
  const r = checkHistory(leaderScenario(true));
  assertOnly(r, "leaderlessAfterHeal", 2);
  assert.equal(r.maxUnavailabilityMs, 36_000, "t/2 from 4000 to 40000");
  assert.equal(r.leaderlessAfterHealMs, 35_000, "t/2 from the heal at 5000 to 40000");
  assert.match(examplesOf(r, "leaderlessAfterHeal"), /t\/1 leaderless for 34900 ms after the last fault event \(at 5000 ms\)/);
});

test("leaderlessAfterHeal: the limit is an option; a run without leader samples reports zeros", () => {
  assertOnly(checkHistory(leaderScenario(false), { leaderlessAfterHealLimitMs: 500 }), "leaderlessAfterHeal", 1);
  assertOnly(checkHistory(leaderScenario(false), { leaderlessAfterHealLimitMs: 900 }), "leaderlessAfterHeal", 0);
  const none = checkHistory(lostScenario(false));
  assert.equal(none.maxUnavailabilityMs, 0);
  assert.equal(none.leaderlessAfterHealMs, 0);
  assert.equal(none.leaderlessAfterHeal, 0);
});

// --- malformed --------------------------------------------------------------------------------

test("malformed: events the checker cannot use are reported, notes are not", () => {
  const clean = new History();
  produceAll(clean, "p1", ["a"]);
  clean.record("info", { process: "c1", op: "deliver", group: "g", session: "c1", error: "consumer loop ended" });
  clean.drainAll(["a"]);
  const cleanResult = checkHistory(clean.events);
  assertOnly(cleanResult, "malformed", 0);
  assert.equal(cleanResult.ops.notes, 1);

  const h = new History();
  produceAll(h, "p1", ["a"]);
  h.record("ok", { process: "p1", op: "produce", id: "b", req: 7, topic: "t", partition: 0, offset: 1 }); // no invoke
  h.record("ok", { process: "c1", op: "deliver", group: "g", session: "c1", topic: "t", partition: 0, offset: 0 }); // no id
  h.drainAll(["a"]);
  const r = checkHistory(h.events);
  assert.deepEqual(r.violations.map((v) => `${v.kind} ${v.count}`), ["malformed 2"], formatCheckResult(r));
  assert.match(examplesOf(r, "malformed"), /line 3: ok of produce of p1 req 7 without an open invoke/);
});

// --- a realistic clean run --------------------------------------------------------------------

/**
 * A clean run as the harness would record it: three producers (two idempotent, one plain whose
 * retries duplicate some records), produce failures and unknown outcomes, leader samples around a
 * healed fault, a consumer group whose first member restarts and re-reads from its last offset
 * commit, a second group, committed-offset reads, and the drain. Deterministic.
 */
function realisticRun(recordsPerProducer: number): HistoryEvent[] {
  const h = new History();
  const partitions = 3;
  const log: string[][] = [[], [], []];
  h.leaders({ "0": 1, "1": 2, "2": 3 });
  produceRecords(h, log, recordsPerProducer);
  const groupG = new GroupModel(h, "g", partitions);
  groupG.consume("c1#1", [0, 1], log, { stopAfter: Math.floor((log[1]?.length ?? 0) / 2) });
  groupG.consume("c1#2", [0, 1], log, {});
  groupG.consume("c2#1", [2], log, {});
  new GroupModel(h, "audit", partitions).consume("a1#1", [0, 1, 2], log, {});
  log.forEach((ids, p) => h.drainAll(ids, `t/${p}`));
  return h.events;
}

function produceRecords(h: History, log: string[][], count: number): void {
  const producers = [
    { name: "p1", idempotent: true },
    { name: "p2", idempotent: true },
    { name: "p3", idempotent: false },
  ];
  for (let seq = 0; seq < count; seq++) {
    if (seq === Math.floor(count / 3)) h.fault("kill").leaders({ "0": 1, "1": 0, "2": 3 });
    if (seq === Math.floor(count / 2)) h.fault("kill", true).leaders({ "0": 1, "1": 2, "2": 3 });
    producers.forEach((p, pi) => {
      const id = `${p.name}-${seq}`;
      const key = `k${(seq * 7 + pi) % 6}`;
      const partition = Number(key.slice(1)) % 3;
      const ids = log[partition] as string[];
      const o = { key, seq, idempotent: p.idempotent };
      if (pi === 0 && seq % 23 === 5) return void h.produceNot("fail", p.name, id, o);
      if (pi === 0 && seq % 31 === 7) return void h.produceNot("info", p.name, id, o);
      if (pi === 1 && seq % 29 === 3) {
        ids.push(id); // unknown outcome, but it happened
        return void h.produceNot("info", p.name, id, o);
      }
      if (pi === 2 && seq % 17 === 4) ids.push(id); // a retry of a plain producer wrote it twice
      h.produce(p.name, id, `t/${partition}@${ids.length}`, o);
      ids.push(id);
    });
  }
}

/** A consumer group as a broker would run it: sessions resume from the group's offset commits. */
class GroupModel {
  private readonly committed: number[];

  constructor(
    private readonly h: History,
    private readonly group: string,
    partitions: number,
  ) {
    this.committed = new Array<number>(partitions).fill(-1);
  }

  /** One session: assigned `partitions`, consumes each from its commit, committing every 10. */
  consume(session: string, partitions: readonly number[], log: readonly string[][], o: { stopAfter?: number }): void {
    this.h.assign(this.group, session, partitions);
    for (const p of partitions) {
      const ids = log[p] ?? [];
      const from = Math.max(this.committed[p] ?? -1, 0);
      for (let offset = from; offset < ids.length; offset++) {
        this.h.deliver(this.group, session, ids[offset] as string, `t/${p}@${offset}`);
        if (o.stopAfter !== undefined && p === 1 && offset === o.stopAfter) return; // the session dies
        if (offset % 10 === 9 || offset === ids.length - 1) this.commit(session, p, offset + 1);
      }
    }
  }

  private commit(session: string, partition: number, offset: number): void {
    this.h.commit(this.group, session, `t/${partition}`, offset);
    this.committed[partition] = offset;
    if (offset % 50 === 0) this.h.readCommitted(this.group, Object.fromEntries(this.committed.map((c, p) => [String(p), c])));
  }
}

test("a realistic clean run (producers, a consumer group with a restart, commits, faults, drain) is valid", () => {
  const r = checkHistory(realisticRun(300));
  assert.equal(r.valid, true, formatCheckResult(r));
  assert.deepEqual(r.violations, []);
  assert.ok(r.duplicatedPlain > 0, "the plain producer's retries wrote duplicates");
  assert.ok(r.ops.produce.fail > 0 && r.ops.produce.info > 0);
  assert.ok(r.ops.committedReads > 0);
  assert.equal(r.acknowledged, r.ops.produce.ok);
  const g = r.consumeCounts["g"] ?? {};
  assert.ok((g[2] ?? 0) > 0, "the restarted session re-delivered records after its last commit");
  assert.equal(g[0], undefined, "nothing unseen");
  assert.deepEqual(r.ops.faults, { kill: 1 });
  assert.equal(r.maxUnavailabilityMs > 0, true);
  assert.equal(r.leaderlessAfterHealMs, 1, "the sample after the heal (1 ms later) saw the leader back");
});

test("formatCheckResult: the verdict, the counts, and each violation with its examples", () => {
  const clean = formatCheckResult(checkHistory(realisticRun(50)));
  assert.match(clean, /^history: VALID\n/);
  assert.match(clean, /produce 150 invoked/);
  assert.match(clean, /group g: 0 unseen; times delivered: 1×\d+ 2×\d+/);
  assert.match(clean, /faults: kill 1 \(1 heals\)/);
  const bad = formatCheckResult(checkHistory(lostScenario(true)));
  assert.match(bad, /^history: INVALID \(lost 2\)\n/);
  assert.match(bad, /\nviolation lost: 2\n  "c" acknowledged at t\/0@2 to p1\n  "d" acknowledged at t\/0@3 to p1$/);
});

test("every violation kind lists at most five examples but counts them all", () => {
  const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
  const h = new History();
  produceAll(h, "p1", ids);
  h.drainEnd("t/0", 0);
  const r = checkHistory(h.events);
  assertOnly(r, "lost", 12);
  assert.equal(r.violations[0]?.examples.length, 5);
});

test("a long run (~500k events) is checked in a few seconds", () => {
  const events = realisticRun(30_500);
  const started = performance.now();
  const r = checkHistory(events);
  const ms = performance.now() - started;
  console.log(`checked ${events.length} events in ${ms.toFixed(0)} ms`);
  assert.ok(events.length >= 450_000, `${events.length} events`);
  assert.equal(r.valid, true, formatCheckResult(r));
  assert.ok(ms < 20_000, `took ${ms} ms`);
});

/**
 * The simulator in `npm test`: many generated schedules against the real core, every fault kind
 * shown to actually occur, determinism (same seed → same trace hash), negative controls (planted
 * host bugs must be caught), and regression tests for the core bugs the simulator found.
 *
 * The seed comes from SIM_SEED if set, else a fixed default; it is printed either way. Replay a
 * failure with `SIM_SEED=<seed> npm test`, or with the CLI command printed in the report.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { COVERAGE_KEYS, formatCoverage } from "./coverage.js";
import { sweep, type SweepResult } from "./harness.js";
import { InvariantViolation } from "./checker.js";
import type { PlantedBug } from "./node.js";
import { runSchedule, SimulationFailure } from "./run.js";
import { scheduleArbitrary, type Schedule } from "./schedule.js";

const DEFAULT_SEED = 20_251_128;
const SEED = process.env["SIM_SEED"] === undefined ? DEFAULT_SEED : Number(process.env["SIM_SEED"]);
/** Schedules in the main sweep, and their maximum length. */
const RUNS = 2000;
const MAX_STEPS = 60;

console.log(`sim seed: ${SEED} (set SIM_SEED=<seed> to replay another)`);

let main: SweepResult | undefined;
/** The main sweep, run once and shared by the tests that inspect it. */
function mainSweep(): SweepResult {
  main ??= sweep({ seed: SEED, runs: RUNS, maxSteps: MAX_STEPS });
  return main;
}

test(`sim: ${RUNS} generated schedules keep every invariant (seed ${SEED})`, (t) => {
  const r = mainSweep();
  t.diagnostic(`seed ${SEED}: ${r.runs} runs, ${r.totalSteps} steps, ${(r.virtualMs / 1000).toFixed(1)}s virtual in ${(r.wallMs / 1000).toFixed(2)}s wall, trace hash ${r.hash}`);
  t.diagnostic(`coverage:\n${formatCoverage(r.coverage)}`);
  assert.ok(r.ok, r.failure?.text);
  assert.equal(r.runs, RUNS);
});

for (const key of COVERAGE_KEYS) {
  test(`sim: coverage: ${key} happens in the generated schedules`, () => {
    const r = mainSweep();
    assert.ok(r.coverage[key] > 0, `${key} never happened in ${r.runs} schedules (seed ${SEED}); the generator lost a fault kind`);
  });
}

test("sim: the same seed gives the same trace hash; another seed a different one", () => {
  const a = sweep({ seed: SEED + 1, runs: 60, maxSteps: MAX_STEPS });
  const b = sweep({ seed: SEED + 1, runs: 60, maxSteps: MAX_STEPS });
  const c = sweep({ seed: SEED + 2, runs: 60, maxSteps: MAX_STEPS });
  assert.ok(a.ok && b.ok && c.ok, a.failure?.text ?? b.failure?.text ?? c.failure?.text);
  assert.equal(a.hash, b.hash);
  assert.equal(a.virtualMs, b.virtualMs);
  assert.notEqual(a.hash, c.hash);
});

test("sim: a recorded run has the same trace hash as an unrecorded one, and identical lines when repeated", () => {
  const [schedule] = fc.sample(scheduleArbitrary({ maxSteps: MAX_STEPS }), { seed: SEED, numRuns: 1 });
  const quiet = runSchedule(schedule!);
  const loud1 = runSchedule(schedule!, { record: true });
  const loud2 = runSchedule(schedule!, { record: true });
  assert.equal(quiet.hash, loud1.hash);
  assert.deepEqual(loud1.lines, loud2.lines);
  assert.ok((loud1.lines?.length ?? 0) > 10);
});

/**
 * Runs generated schedules with a planted host bug until one fails as `wanted`; returns the
 * failure. `contractChecks: false` leaves only the end-to-end invariants.
 */
function firstFailureWith(bug: PlantedBug, maxRuns: number, wanted: (e: unknown) => boolean, contractChecks = true): SimulationFailure | undefined {
  const schedules = fc.sample(scheduleArbitrary({ maxSteps: MAX_STEPS }), { seed: SEED, numRuns: maxRuns });
  for (const s of schedules) {
    try {
      runSchedule(s, { timing: { plantedBug: bug }, contractChecks });
    } catch (e) {
      if (e instanceof SimulationFailure && wanted(e.error)) return e;
    }
  }
  return undefined;
}

/** Whether `e` is a violation of one of `invariants`. */
function violates(...invariants: string[]): (e: unknown) => boolean {
  return (e) => e instanceof InvariantViolation && invariants.includes(e.invariant);
}

test("sim: negative control: reads answered locally (staleReads) violate read linearizability", () => {
  const r = sweep({ seed: SEED, runs: 500, maxSteps: MAX_STEPS, run: { timing: { plantedBug: "staleReads" } } });
  assert.equal(r.ok, false, "the planted stale reads were not caught");
  assert.match(r.failure?.message ?? "", /invariant readLinearizability violated/);
});

test("sim: negative control: a host that never persists its hard state is caught by the end-to-end checks", () => {
  const f = firstFailureWith("forgetHardState", 2000, violates("electionSafety", "logMatching", "stateMachineSafety", "leaderCompleteness", "voteStability"), false);
  assert.ok(f !== undefined, "forgetting votes and terms on restart was never caught as a safety violation");
});

test("sim: negative control: a host that never persists its hard state is caught at its first vote grant", () => {
  const f = firstFailureWith("forgetHardState", 20, violates("voteDurability"));
  assert.ok(f !== undefined, "a vote granted without being persisted was not caught by the vote durability check");
});

test("sim: negative control: a host that ignores mustSync (never fsyncs) is caught", () => {
  const f = firstFailureWith("ignoreMustSync", 20, violates("voteDurability", "ackDurability"));
  assert.ok(f !== undefined, "acknowledging unsynced votes and entries was not caught by the durability checks");
  const e2e = firstFailureWith("ignoreMustSync", 500, violates("electionSafety", "logMatching", "stateMachineSafety", "leaderCompleteness", "voteStability", "commitMonotonic", "termMonotonic"), false);
  assert.ok(e2e !== undefined, "losing unsynced writes in crashes was never caught end to end");
});

test("sim: negative control: sending before persisting is caught", () => {
  const r = sweep({ seed: SEED, runs: 3000, maxSteps: MAX_STEPS, run: { timing: { plantedBug: "sendBeforePersist" } } });
  assert.equal(r.ok, false, "acknowledging entries before persisting them was never caught");
});

// ---------------------------------------------------------------------------------------------
// Core bugs the simulator found, kept as regression tests with the shrunk schedules it printed.

/** Runs `schedule`; a failure is rethrown with only its message and last trace lines. */
function runStrict(schedule: Schedule): void {
  try {
    runSchedule(schedule, { record: true });
  } catch (e) {
    if (!(e instanceof SimulationFailure)) throw e;
    throw new Error(`${e.message}\nlast trace lines:\n${(e.lines ?? []).slice(-12).join("\n")}`);
  }
}

test(
  "core bug #1 (fixed): a restart after a lagging compaction re-applied entries already in the snapshot",
  () => {
    runStrict({ nodes: 3, raft: {}, seed: 0, steps: [{ kind: "snapshot", pick: 977, lag: 1 }, { kind: "crash", pick: 851, leader: false }] });
  },
);

test(
  "core bug #3 (fixed): one lost append response with a full inflight window stalled a follower for good",
  () => {
    runStrict({
      nodes: 3,
      raft: { electionTicks: 4, heartbeatTicks: 1, maxInflightMsgs: 1 },
      seed: 0,
      steps: [{ kind: "propose", to: "leader", pick: 0, count: 1 }, { kind: "weather", drop: 6, duplicate: 21, delay: 1, delayMaxMs: 1 }, { kind: "advance", ms: 11 }],
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Witnesses of planted core bugs: schedules the simulator shrank a planted bug to (README, "Planted
// core bugs"). The correct core passes them; the planted core fails them at once.

test("core witness: a new leader brought a follower up one entry at a time (commit rule, Figure 8)", () => {
  // With `<= term` in RaftLog.maybeCommit: leaderCommitRule.
  runStrict({ nodes: 3, raft: { maxMsgBytes: 1 }, world: {}, host: "multiraft", seed: 0, steps: [
    { kind: "churn", count: 2, afterMs: 0, how: "crash" },
    { kind: "advance", ms: 154 },
    { kind: "drop", percent: 1, salt: 472670614 },
    { kind: "propose", to: "leader", pick: 0, count: 1 },
  ] });
});

test("core witness: a vote granted in a term the node already had (vote-only hard-state change)", () => {
  // Without the vote in hardStateEqual, or in mustSync (RawNode): voteDurability.
  runStrict({ nodes: 5, raft: {}, world: {}, host: "multiraft", seed: 358729371, steps: [{ kind: "transfer", pick: 0 }, { kind: "propose", to: "leader", pick: 0, count: 1 }] });
});

test("core witness: acknowledgements reach a leader before its own write completes", () => {
  // With the leader counting its own entries on append (Raft.appendEntries): commitDurability.
  runStrict({ nodes: 5, raft: { heartbeatTicks: 1 }, world: { maxLatencyMs: 6, maxDiskMs: 15 }, host: "multiraft", seed: 0, steps: [
    { kind: "delay", percent: 4, maxMs: 14, salt: 0 },
    { kind: "transfer", pick: 117 },
  ] });
});

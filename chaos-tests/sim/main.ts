/**
 * The simulator's command line:
 *
 *   npm run sim -- --runs N --seed S [--path P] [--nodes K] [--steps M] [--end-to-end] [--verbose]
 *
 * Prints the seed first, then the totals and the combined trace hash; exits 1 on a failure after
 * printing the report (seed, replay path, shrunk schedule, trace). The same arguments always print
 * the same hash.
 * `--schedule '<json>'` runs one schedule (as printed in a failure report) with its trace.
 * `--trace` prints every run's readable trace (use with `--runs 1`). `--nodes K` fixes the cluster
 * size (membership changes off; knobs, timing and host model still vary), e.g. `--nodes 5` to
 * measure the speed of 5-node clusters. `--end-to-end` turns off the direct host-contract checks
 * (checker.ts), to measure what the end-to-end invariants alone find.
 */
import { parseArgs } from "node:util";
import { formatCoverage } from "./coverage.js";
import { sweep } from "./harness.js";
import { runSchedule, SimulationFailure, type RunOptions } from "./run.js";
import type { Schedule } from "./schedule.js";

function parseIntOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name} must be an integer in [${min}, ${max}], got ${value}`);
  return n;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      runs: { type: "string" },
      seed: { type: "string" },
      path: { type: "string" },
      nodes: { type: "string" },
      steps: { type: "string" },
      verbose: { type: "boolean", default: false },
      coverage: { type: "boolean", default: false },
      trace: { type: "boolean", default: false },
      schedule: { type: "string" },
      "end-to-end": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run sim -- [--runs N] [--seed S] [--path P] [--nodes K] [--steps M] [--end-to-end] [--verbose] [--coverage] [--trace] [--schedule JSON]");
    return 0;
  }
  // The real clock only picks a default seed, outside the simulated world; it is printed first.
  const seed = parseIntOption("seed", values.seed, Date.now() % 2 ** 31, 0, 2 ** 31 - 1);
  console.log(`seed: ${seed}`);
  const runs = parseIntOption("runs", values.runs, 100, 1, 10_000_000);
  const nodes = values.nodes === undefined ? undefined : parseIntOption("nodes", values.nodes, 3, 3, 7);
  const maxSteps = parseIntOption("steps", values.steps, 60, 1, 100_000);
  // --end-to-end: only the end-to-end invariants, without the direct host-contract checks.
  const run: RunOptions = values["end-to-end"] ? { contractChecks: false } : {};
  if (values.schedule !== undefined) return runOne(JSON.parse(values.schedule) as Schedule, run);
  const r = sweep({ seed, runs, path: values.path, nodes, maxSteps, verbose: values.verbose, printTrace: values.trace, run, log: (l) => console.log(l) });
  const virtualS = r.virtualMs / 1000;
  const wallS = r.wallMs / 1000;
  console.log(`runs: ${r.runs}${nodes === undefined ? "" : ` (${nodes} nodes, membership changes off)`}`);
  console.log(`steps: ${r.totalSteps} (max ${maxSteps} per schedule)`);
  console.log(`virtual time: ${virtualS.toFixed(1)}s`);
  console.log(`wall time: ${wallS.toFixed(1)}s`);
  console.log(`speed: ${(virtualS / wallS).toFixed(1)} virtual-s/wall-s, ${Math.round(r.events / wallS)} events/s, ${r.messages} messages`);
  console.log(`trace hash: ${r.hash}`);
  if (values.coverage || values.verbose) console.log(`coverage:\n${formatCoverage(r.coverage)}`);
  if (r.firstFailure !== undefined) console.log(`first failure: run ${r.firstFailure.run}, after ${(r.firstFailure.wallMs / 1000).toFixed(2)}s wall (the rest is shrinking)`);
  if (r.failure !== undefined) {
    console.log(r.failure.text);
    return 1;
  }
  return 0;
}

/** Runs one given schedule with its readable trace. */
function runOne(schedule: Schedule, run: RunOptions): number {
  try {
    const r = runSchedule(schedule, { ...run, record: true });
    for (const l of r.lines ?? []) console.log(l);
    console.log(`ok: ${r.steps} steps, ${(r.virtualMs / 1000).toFixed(3)}s virtual, trace hash ${r.hash}`);
    return 0;
  } catch (e) {
    if (!(e instanceof SimulationFailure)) throw e;
    for (const l of e.lines ?? []) console.log(l);
    console.log(`FAILURE ${e.message}\ntrace hash: ${e.hash}`);
    return 1;
  }
}

process.exitCode = main();

/**
 * Many runs under fast-check: generates schedules from one seed, runs each, and on a failure lets
 * fast-check shrink the schedule to a minimal one, then replays that one with the readable trace
 * on and builds the failure report (seed, replay path, shrunk schedule, trace, trace hash).
 *
 * Totals and the combined trace hash count only the runs before the first failure, so they do not
 * depend on how shrinking went.
 */
import fc from "fast-check";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { addCoverage, emptyCoverage, type Coverage } from "./coverage.js";
import { runSchedule, SimulationFailure, type RunOptions } from "./run.js";
import { describeSchedule, scheduleArbitrary, type Schedule } from "./schedule.js";
import { Fnv64, hashString } from "./trace.js";

/** What to sweep: fast-check seed and run count (or a replay path), and the schedule shape. */
export interface SweepOptions {
  readonly seed: number;
  readonly runs: number;
  /** fast-check replay path of a failure (with the same seed, nodes and maxSteps). */
  readonly path?: string | undefined;
  /** Fixed initial size (membership changes off). */
  readonly nodes?: number | undefined;
  readonly maxSteps: number;
  /** Log one line per run. */
  readonly verbose?: boolean;
  readonly log?: (line: string) => void;
  readonly run?: RunOptions;
  /** Print every run's readable trace (slow; meant for `--runs 1`). */
  readonly printTrace?: boolean;
  /** Lines of trace to include in the report (the file has all of them). Default 150. */
  readonly traceTailLines?: number;
}

/** A shrunk failure, replayed with its trace. */
export interface FailureReport {
  readonly seed: number;
  readonly path: string;
  readonly schedule: Schedule;
  readonly message: string;
  /** The whole report as printed. */
  readonly text: string;
  /** Where the full report and trace were written, if writing worked. */
  readonly file: string | undefined;
}

/** Totals of a sweep and its failure, if any. */
export interface SweepResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly runs: number;
  readonly totalSteps: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly events: number;
  readonly messages: number;
  /** Hash over the per-run trace hashes, in run order. */
  readonly hash: string;
  readonly coverage: Coverage;
  readonly failure: FailureReport | undefined;
  /** The 1-based number of the first failing run, and the wall time until it failed (before shrinking). */
  readonly firstFailure: { readonly run: number; readonly wallMs: number } | undefined;
}

/** Runs `opts.runs` generated schedules (or replays `opts.path`). */
export function sweep(opts: SweepOptions): SweepResult {
  const log = opts.log ?? (() => {});
  const arb = scheduleArbitrary({ nodes: opts.nodes, maxSteps: opts.maxSteps });
  const acc = { runs: 0, steps: 0, virtualMs: 0, events: 0, messages: 0, coverage: emptyCoverage(), hash: new Fnv64() };
  let failing = false;
  let firstFailure: { run: number; wallMs: number } | undefined;
  const started = performance.now();
  const property = fc.property(arb, (s) => {
    if (failing) return runQuietly(s, opts.run);
    try {
      const r = runSchedule(s, opts.printTrace === true ? { ...opts.run, record: true } : opts.run);
      if (r.lines !== undefined) for (const l of r.lines) log(l);
      acc.runs++;
      acc.steps += r.steps;
      acc.virtualMs += r.virtualMs;
      acc.events += r.events;
      acc.messages += r.messages;
      acc.hash.string(r.hash);
      addCoverage(acc.coverage, r.coverage);
      if (opts.verbose === true) log(`run ${acc.runs}: nodes=${s.nodes} steps=${r.steps} virtual=${(r.virtualMs / 1000).toFixed(2)}s events=${r.events} hash=${r.hash}`);
    } catch (e) {
      failing = true;
      firstFailure = { run: acc.runs + 1, wallMs: performance.now() - started };
      if (opts.verbose === true) log(`run ${acc.runs + 1} failed, shrinking: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
  });
  const details = fc.check(property, { seed: opts.seed, numRuns: opts.runs, path: opts.path });
  const wallMs = performance.now() - started;
  let failure: FailureReport | undefined;
  if (details.failed) failure = buildReport(opts, details);
  const { runs, steps: totalSteps, virtualMs, events, messages, coverage } = acc;
  return { ok: !details.failed, seed: opts.seed, runs, totalSteps, virtualMs, wallMs, events, messages, hash: acc.hash.hex(), coverage, failure, firstFailure };
}

/** A run during shrinking: only pass/fail matters. */
function runQuietly(s: Schedule, run: RunOptions | undefined): void {
  runSchedule(s, run);
}

function buildReport(opts: SweepOptions, details: fc.RunDetails<[Schedule]>): FailureReport {
  const schedule = details.counterexample?.[0];
  const path = details.counterexamplePath ?? "";
  if (schedule === undefined || schedule === null) {
    const message = `fast-check stopped without a counterexample (interrupted=${details.interrupted})`;
    return { seed: details.seed, path, schedule: { nodes: 0, raft: {}, seed: 0, steps: [] }, message, text: message, file: undefined };
  }
  let failure: SimulationFailure | undefined;
  try {
    runSchedule(schedule, { ...opts.run, record: true });
  } catch (e) {
    if (e instanceof SimulationFailure) failure = e;
    else throw e;
  }
  const message = failure?.message ?? `the shrunk schedule did not fail when replayed (original error: ${String(details.errorInstance)})`;
  const replay = `npm run sim -- --seed ${details.seed} --path ${path} --steps ${opts.maxSteps}${opts.nodes === undefined ? "" : ` --nodes ${opts.nodes}`}${opts.run?.contractChecks === false ? " --end-to-end" : ""}`;
  const lines = failure?.lines ?? [];
  const tail = opts.traceTailLines ?? 150;
  const head = [
    `FAILURE ${message}`,
    `seed: ${details.seed}`,
    `path: ${path}`,
    `replay: ${replay}`,
    `runs before failure: ${details.numRuns}, shrinks: ${details.numShrinks}`,
    `trace hash of the shrunk run: ${failure?.hash ?? "n/a"}`,
    `shrunk schedule: ${describeSchedule(schedule)}`,
    `as JSON (run it alone with --schedule '<json>'): ${JSON.stringify(schedule)}`,
    "",
  ];
  const cause = failure?.error;
  const stack = cause instanceof Error && cause.name !== "InvariantViolation" ? [`core exception stack:`, cause.stack ?? "", ""] : [];
  const full = [...head, ...stack, `trace (${lines.length} lines):`, ...lines].join("\n");
  const file = writeReport(details.seed, path, full);
  const shown = lines.length > tail ? [`trace (last ${tail} of ${lines.length} lines; all of it in ${file ?? "(not written)"}):`, ...lines.slice(-tail)] : [`trace (${lines.length} lines):`, ...lines];
  const text = [...head, ...stack, ...shown, "", `full report: ${file ?? "(not written)"}`].join("\n");
  return { seed: details.seed, path, schedule, message, text, file };
}

function writeReport(seed: number, path: string, text: string): string | undefined {
  try {
    const dir = join(tmpdir(), "raftmq-sim");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `failure-seed${seed}-path${hashString(path).slice(0, 8)}.txt`);
    writeFileSync(file, text);
    return file;
  } catch {
    return undefined;
  }
}

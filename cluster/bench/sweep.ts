/**
 * `npm run bench -- --sweep DIM`: how throughput and latency grow with the load. For each value of
 * the swept dimension (record size, partition count or producer count), one throughput run, and
 * with --sweep-latency one latency run, each on a fresh cluster (runBench() starts and stops it),
 * so no point inherits the previous one's data, compaction debt or 1000 partitions. Every other
 * option keeps its value. `--sweep all` runs the three dimensions one after another.
 *
 * A run that fails is recorded in its point (errors) and the sweep goes on with the next one;
 * the stop signal (Ctrl-C) ends the sweep, and the result then holds the points run so far
 * (complete: false), so a long sweep's JSON and chart are not lost.
 */
import { inFlightOf, type BenchOptions, type SweepDimension } from "./options.js";
import { fmt, formatDimensionValue, machineInfo, type BenchResult, type SweepPointResult, type SweepResult } from "./report.js";
import type { RunContext } from "./run.js";

/** Runs one benchmark (runBench, or a stand-in in tests). */
export type BenchRunner = (options: BenchOptions, ctx: RunContext) => Promise<BenchResult>;

/** The options of one run of a sweep: `base` with the dimension set to `value`. */
export function pointOptions(base: BenchOptions, dimension: SweepDimension, value: number, scenario: "throughput" | "latency"): BenchOptions {
  const set = dimension === "record-bytes" ? { recordBytes: value } : dimension === "partitions" ? { partitions: value } : { producers: value };
  return { ...base, ...set, scenario, sweep: undefined, json: false, out: undefined };
}

/** Whether the latency scenario varies with `dimension`: it has one producer, so not with producers. */
export function latencyApplies(dimension: SweepDimension): boolean {
  return dimension !== "producers";
}

/** Runs every point of options.sweep (which must be set); never throws for a failed run. */
export async function runSweep(options: BenchOptions, ctx: RunContext, run: BenchRunner): Promise<SweepResult> {
  const sweep = options.sweep;
  if (sweep === undefined) throw new Error("runSweep: options.sweep is not set");
  const startedAt = new Date();
  const runsTotal = sweep.axes.reduce((n, a) => n + a.values.length * (sweep.latency && latencyApplies(a.dimension) ? 2 : 1), 0);
  let runsDone = 0;
  let runsMs = 0;
  const timed = async (o: BenchOptions, prefix: string): Promise<BenchResult> => {
    const left = runsDone === 0 ? "" : `; about ${fmt((runsMs / runsDone) * (runsTotal - runsDone) / 60_000, 1)} min left`;
    ctx.log(`run ${runsDone + 1} of ${runsTotal}: ${prefix}${left}`);
    const t0 = performance.now();
    try {
      return await run(o, { stop: ctx.stop, log: (line) => ctx.log(`[${prefix}] ${line}`) });
    } finally {
      runsDone++;
      runsMs += performance.now() - t0;
    }
  };
  const axes: SweepResult["axes"][number][] = [];
  for (const axis of sweep.axes) {
    if (ctx.stop.aborted) break;
    const points: SweepPointResult[] = [];
    axes.push({ dimension: axis.dimension, values: axis.values, points });
    for (const value of axis.values) {
      if (ctx.stop.aborted) break;
      const label = `${axis.dimension} = ${formatDimensionValue(axis.dimension, value)}`;
      const throughputOptions = pointOptions(options, axis.dimension, value, "throughput");
      const errors: string[] = [];
      const throughput = await attempt(() => timed(throughputOptions, `${label}, throughput`), "throughput", errors);
      const latency = sweep.latency && latencyApplies(axis.dimension) && !ctx.stop.aborted
        ? await attempt(() => timed(pointOptions(options, axis.dimension, value, "latency"), `${label}, latency`), "latency", errors)
        : undefined;
      // After an interruption the sweep ends here; the point is kept only if its throughput run finished.
      if (!ctx.stop.aborted || throughput !== undefined) points.push({ value, inFlight: inFlightOf(throughputOptions), throughput, latency, errors });
    }
  }
  return {
    benchmark: "raftmq-sweep",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    complete: !ctx.stop.aborted,
    machine: machineInfo(),
    fixed: {
      durationS: options.durationS,
      warmupS: options.warmupS,
      recordBytes: options.recordBytes,
      partitions: options.partitions,
      producers: options.producers,
      inFlight: options.inFlight,
      inFlightBytesMax: options.inFlightBytesMax,
      lingerMs: options.lingerMs,
      batchRecordsMax: options.batchRecordsMax,
      replication: options.replication,
      nodes: options.nodes,
    },
    latency: sweep.latency,
    axes: axes.filter((a) => a.points.length > 0),
  };
}

/** The run's result, with "scenario: error" added to `errors` if it failed or reported errors. */
async function attempt(fn: () => Promise<BenchResult>, scenario: string, errors: string[]): Promise<BenchResult | undefined> {
  try {
    const result = await fn();
    if (result.result.errors > 0) errors.push(`${scenario}: ${result.result.errors} produce errors; the first: ${result.result.firstError}`);
    return result;
  } catch (error) {
    errors.push(`${scenario}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

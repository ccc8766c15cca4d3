/**
 * `npm run bench`: raftmq's produce benchmark.
 *
 * One run (run.ts) starts its own local cluster (3 node processes on free loopback ports, data in
 * a temporary folder removed at the end), creates a topic (6 partitions, 3 replicas by default),
 * runs a scenario's load for a warm-up and then for the measured duration, and reports records/s,
 * MB/s, produce-acknowledgement latency per record (send() to acknowledgement, HdrHistogram) and
 * CPU and RSS per node (sampled from /proc once a second). Progress goes to stderr once a second;
 * the result goes to stdout (a table, or JSON with --json) and always to a JSON file.
 *
 * `--scenario idle` puts no load on the cluster at all: it reports what hosting the topic's
 * partitions costs each node (CPU, RSS, event-loop delay, CPU per 1,000 partition replicas).
 *
 * `--sweep DIM` (sweep.ts) runs one throughput run per value of record size, partition count or
 * producer count, each on a fresh cluster, and writes every point as JSON plus an SVG chart
 * (chart.ts) of throughput and latency against the dimension.
 *
 * Processes: every node is stopped by PID at the end of each run, also after an error or Ctrl-C
 * (the first Ctrl-C stops the run cleanly, a second one exits at once and LocalCluster's exit
 * hook SIGKILLs the nodes). The load generator is this process.
 */
import { writeFileSync } from "node:fs";
import { renderSweepChart } from "./chart.js";
import { BenchUsageError, parseBenchArgs, USAGE, type BenchOptions } from "./options.js";
import { chartPath, formatSweepTable, formatTable, resultPath, writeResult } from "./report.js";
import { runBench, type RunContext } from "./run.js";
import { runSweep } from "./sweep.js";

const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions;
  try {
    const parsed = parseBenchArgs(argv);
    if (parsed === "help") {
      process.stdout.write(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return error instanceof BenchUsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? EXIT_USAGE : 1;
  }

  const stop = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      process.stderr.write(`bench: ${signal} again: exiting at once (the nodes get SIGKILL)\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    interrupted = true;
    process.stderr.write(`bench: ${signal}: stopping the load and the cluster (again to exit at once)\n`);
    stop.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A throw the run did not catch (in the client, say) fails the run, which then stops the cluster.
  const onUncaught = (error: unknown): void => {
    if (!stop.signal.aborted) stop.abort(error instanceof Error ? error : new Error(String(error)));
    else process.stderr.write(`bench: ${String(error)}\n`);
  };
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  const ctx: RunContext = { stop: stop.signal, log };
  try {
    const code = options.sweep === undefined ? await single(options, ctx) : await sweep(options, ctx);
    return interrupted ? EXIT_INTERRUPTED : code;
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    return interrupted ? EXIT_INTERRUPTED : 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("uncaughtException", onUncaught);
    process.removeListener("unhandledRejection", onUncaught);
  }
}

/** One run: the table (or JSON) on stdout, the JSON in a file. */
async function single(options: BenchOptions, ctx: RunContext): Promise<number> {
  const startedAt = new Date();
  const result = await runBench(options, ctx);
  const path = resultPath(options, startedAt);
  writeResult(path, result);
  process.stdout.write(options.json ? JSON.stringify(result, null, 2) + "\n" : formatTable(result) + "\n");
  (options.json ? process.stderr : process.stdout).write(`\nresult written to ${path}\n`);
  if (options.cpuProfDir !== undefined) log(`CPU profiles of the nodes are written to ${options.cpuProfDir} as they exit`);
  return result.result.errors > 0 ? 1 : 0;
}

/** A sweep: one row per point on stdout (or the JSON), the JSON and the SVG chart in files. */
async function sweep(options: BenchOptions, ctx: RunContext): Promise<number> {
  const startedAt = new Date();
  const result = await runSweep(options, ctx, runBench);
  const path = resultPath(options, startedAt);
  const svgPath = chartPath(options, path);
  writeResult(path, result);
  writeFileSync(svgPath, renderSweepChart(result));
  process.stdout.write(options.json ? JSON.stringify(result, null, 2) + "\n" : formatSweepTable(result) + "\n");
  (options.json ? process.stderr : process.stdout).write(`\nresult written to ${path}\nchart written to ${svgPath}\n`);
  const failed = result.axes.some((a) => a.points.some((p) => p.errors.length > 0));
  return failed || !result.complete ? 1 : 0;
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

const code = await main(process.argv.slice(2));
// Bounded retries of abandoned calls may hold timers after an abort; the nodes are stopped already.
process.exit(code);

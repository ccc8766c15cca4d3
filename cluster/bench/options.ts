/**
 * The benchmark's command line: `npm run bench -- [--scenario throughput|latency] [options]`,
 * parsed with node:util parseArgs into a validated BenchOptions. Every bound is checked here, with
 * an error naming the option, before any process starts.
 */
import { parseArgs } from "node:util";

export const SCENARIOS = ["throughput", "latency", "consume", "e2e"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  readonly scenario: ScenarioName;
  /** Measured phase, after the warm-up, in seconds. */
  readonly durationS: number;
  readonly warmupS: number;
  /** Body size of each record (random, incompressible), in bytes. */
  readonly recordBytes: number;
  readonly partitions: number;
  readonly replication: number;
  readonly nodes: number;
  /** Concurrent producers, each with its own client (throughput scenario). */
  readonly producers: number;
  /** Records sent and not yet acknowledged, per producer (throughput scenario). */
  readonly inFlight: number;
  /** The producer's linger (throughput scenario); 0 sends whenever a partition is idle. */
  readonly lingerMs: number;
  /** The producer's batch bound in records (throughput scenario). */
  readonly batchRecordsMax: number;
  /** Records pre-loaded, then consumed (consume scenario). */
  readonly records: number;
  /** Members of the consumer group, each its own client (consume, e2e). */
  readonly consumers: number;
  /** Records/s produced (e2e scenario). */
  readonly rate: number;
  /** The consumer's prefetch bounds (consume, e2e). */
  readonly prefetchRecords: number;
  readonly prefetchBytes: number;
  readonly json: boolean;
  /** Where the JSON result goes; default a file in os.tmpdir(). */
  readonly out: string | undefined;
  /** When set, the nodes run with --cpu-prof and write their profiles here (kept). */
  readonly cpuProfDir: string | undefined;
  /** --log-level of the nodes. */
  readonly logLevel: string;
  /** Keep the cluster's data folder (and node logs) instead of removing it. */
  readonly keepData: boolean;
}

export class BenchUsageError extends Error {
  override readonly name = "BenchUsageError";
}

export const USAGE = `Usage: npm run bench -- [options]

Starts its own local raftmq cluster on loopback (3 nodes), creates a topic, produces records and
reports throughput, produce-acknowledgement latency, and CPU and RSS per node.

  --scenario NAME       throughput (default): N producers, many records in flight, batching
                        latency: one record in flight, no batching
                        consume: pre-load --records records, then consume them with one group
                        e2e: produce at --rate while a group consumes; send-to-delivery latency
  --duration S          measured seconds, after the warm-up (default 10)
  --warmup S            warm-up seconds, not measured (default 2)
  --record-bytes N      body bytes per record, random (default 1024)
  --partitions N        partitions of the topic (default 6)
  --replication N       replicas per partition (default 3)
  --nodes N             nodes of the local cluster (default 3)
  --producers N         concurrent producers, each its own client (default 4; throughput)
  --in-flight N         records sent and not yet acknowledged, per producer (default 1000; throughput)
  --linger-ms N         producer linger; 0 sends whenever a partition is idle (default 0; throughput)
  --batch-records N     producer batch bound in records (default 1000; throughput, consume pre-load)
  --records N           records pre-loaded and consumed (default 200000; consume)
  --consumers N         members of the consumer group, each its own client (default 1; consume, e2e)
  --rate N              records/s produced, in bursts every 5 ms (default 8000; e2e)
  --prefetch-records N  consumer prefetch in records (default 1000; consume, e2e)
  --prefetch-bytes N    consumer prefetch in bytes (default 4194304; consume, e2e)
  --json                print the result as JSON on stdout (progress stays on stderr)
  --out FILE            write the JSON result here (default: a file in the OS temp folder)
  --cpu-prof DIR        run the nodes with node --cpu-prof, writing profiles into DIR (kept)
  --log-level LEVEL     the nodes' log level (default warn)
  --keep-data           keep the cluster's data folder and node logs
  -h, --help            this text
`;

/** Parses `argv` (without node and script); throws BenchUsageError naming the bad option. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | "help" {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      scenario: { type: "string", default: "throughput" },
      duration: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      "record-bytes": { type: "string", default: "1024" },
      partitions: { type: "string", default: "6" },
      replication: { type: "string", default: "3" },
      nodes: { type: "string", default: "3" },
      producers: { type: "string", default: "4" },
      "in-flight": { type: "string", default: "1000" },
      "linger-ms": { type: "string", default: "0" },
      "batch-records": { type: "string", default: "1000" },
      records: { type: "string", default: "200000" },
      consumers: { type: "string", default: "1" },
      rate: { type: "string", default: "8000" },
      "prefetch-records": { type: "string", default: "1000" },
      "prefetch-bytes": { type: "string", default: String(4 * 1024 * 1024) },
      json: { type: "boolean", default: false },
      out: { type: "string" },
      "cpu-prof": { type: "string" },
      "log-level": { type: "string", default: "warn" },
      "keep-data": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new BenchUsageError(`unexpected argument "${positionals[0]}" (options start with --)`);
  const scenario = values.scenario;
  if (!(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new BenchUsageError(`--scenario must be one of ${SCENARIOS.join(", ")}, got "${scenario}"`);
  }
  const nodes = int(values.nodes, "--nodes", 1, 9);
  const options: BenchOptions = {
    scenario: scenario as ScenarioName,
    durationS: num(values.duration, "--duration", 1, 3600),
    warmupS: num(values.warmup, "--warmup", 0, 600),
    recordBytes: int(values["record-bytes"], "--record-bytes", 1, 1024 * 1024 - 1024),
    partitions: int(values.partitions, "--partitions", 1, 10_000),
    replication: int(values.replication, "--replication", 1, nodes),
    nodes,
    producers: int(values.producers, "--producers", 1, 256),
    inFlight: int(values["in-flight"], "--in-flight", 1, 100_000),
    lingerMs: num(values["linger-ms"], "--linger-ms", 0, 10_000),
    batchRecordsMax: int(values["batch-records"], "--batch-records", 1, 100_000),
    records: int(values.records, "--records", 1, 100_000_000),
    consumers: int(values.consumers, "--consumers", 1, 256),
    rate: num(values.rate, "--rate", 1, 1_000_000),
    prefetchRecords: int(values["prefetch-records"], "--prefetch-records", 1, 1_000_000),
    prefetchBytes: int(values["prefetch-bytes"], "--prefetch-bytes", 1024, 1024 * 1024 * 1024),
    json: values.json,
    out: values.out,
    cpuProfDir: values["cpu-prof"],
    logLevel: values["log-level"],
    keepData: values["keep-data"],
  };
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(options.logLevel)) {
    throw new BenchUsageError(`--log-level must be trace, debug, info, warn, error, fatal or silent, got "${options.logLevel}"`);
  }
  return options;
}

function num(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
    throw new BenchUsageError(`${name} must be a number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

function int(text: string, name: string, min: number, max: number): number {
  const value = num(text, name, min, max);
  if (!Number.isInteger(value)) throw new BenchUsageError(`${name} must be a whole number, got "${text}"`);
  return value;
}

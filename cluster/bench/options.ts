/**
 * The benchmark's command line: `npm run bench -- [--scenario NAME] [options]`, or
 * `npm run bench -- --sweep record-bytes|partitions|producers|all [--values A,B,C] [options]`,
 * parsed with node:util parseArgs into a validated BenchOptions. Every bound is checked here, with
 * an error naming the option, before any process starts.
 */
import { parseArgs } from "node:util";

export const SCENARIOS = ["throughput", "latency", "consume", "e2e", "idle"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * --warmup and --duration when not given, in seconds. `idle` warms up longer: the topic's
 * creation traffic and its elections (10,000 partitions are 30,000 Raft groups on 3 nodes) must
 * be over before an idle cluster is measured.
 */
export const SCENARIO_PHASES_S: Readonly<Record<ScenarioName, { readonly warmupS: number; readonly durationS: number }>> = {
  throughput: { warmupS: 2, durationS: 10 },
  latency: { warmupS: 2, durationS: 10 },
  consume: { warmupS: 2, durationS: 10 },
  e2e: { warmupS: 2, durationS: 10 },
  idle: { warmupS: 10, durationS: 20 },
};

/** Options that shape a load; `idle` puts no load on the cluster and refuses them. */
const LOAD_OPTIONS = [
  "record-bytes", "producers", "in-flight", "in-flight-bytes", "linger-ms", "batch-records", "records", "consumers", "rate", "prefetch-records", "prefetch-bytes",
] as const;

/** The dimensions a sweep can vary, named as their options (without the dashes). */
export const SWEEP_DIMENSIONS = ["record-bytes", "partitions", "producers"] as const;
export type SweepDimension = (typeof SWEEP_DIMENSIONS)[number];

/** The points of each dimension when --values is not given. */
export const SWEEP_DEFAULT_VALUES: Readonly<Record<SweepDimension, readonly number[]>> = {
  "record-bytes": [100, 1024, 4096, 16384, 65536],
  partitions: [1, 10, 100, 1000],
  producers: [1, 2, 4, 8],
};

/**
 * Bounds of each dimension, the same whether given as a fixed option or as sweep points. The
 * partitions bound is the controller's limit per topic (PARTITIONS_MAX, src/controller/frontend.ts;
 * a test checks they agree).
 */
export const DIMENSION_BOUNDS: Readonly<Record<SweepDimension, { readonly min: number; readonly max: number }>> = {
  "record-bytes": { min: 1, max: 1024 * 1024 - 1024 },
  partitions: { min: 1, max: 10_000 },
  producers: { min: 1, max: 256 },
};

/** Points of one sweep dimension, at most this many (each point is a fresh cluster and a run). */
export const SWEEP_VALUES_MAX = 20;

/** One dimension of a sweep and its points, in increasing order. */
export interface SweepAxis {
  readonly dimension: SweepDimension;
  readonly values: readonly number[];
}

export interface SweepOptions {
  /** The dimensions, run one after another; the other dimensions keep their options' values. */
  readonly axes: readonly SweepAxis[];
  /** Also run the latency scenario (one record in flight) at each point. */
  readonly latency: boolean;
  /** Where the SVG chart goes; default the JSON path with .svg. */
  readonly chart: string | undefined;
}

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
  /** Records sent and not yet acknowledged, per producer (throughput scenario), as asked. */
  readonly inFlight: number;
  /**
   * Bound on the record bodies in flight per producer, in bytes: a run uses
   * min(inFlight, inFlightBytesMax / recordBytes) records in flight (at least 1); see inFlightOf().
   */
  readonly inFlightBytesMax: number;
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
  /** A sweep instead of one run (--sweep); undefined for one run. */
  readonly sweep: SweepOptions | undefined;
}

/**
 * Records in flight per producer that a run uses: --in-flight, scaled down so that the record
 * bodies in flight stay within --in-flight-bytes (1000 x 64 KiB would be 64 MiB per producer);
 * at least one.
 */
export function inFlightOf(o: Pick<BenchOptions, "inFlight" | "inFlightBytesMax" | "recordBytes">): number {
  return Math.max(1, Math.min(o.inFlight, Math.floor(o.inFlightBytesMax / o.recordBytes)));
}

export class BenchUsageError extends Error {
  override readonly name = "BenchUsageError";
}

export const USAGE = `Usage: npm run bench -- [options]

Starts its own local raftmq cluster on loopback (3 nodes), creates a topic, produces records and
reports throughput, produce-acknowledgement latency, and CPU and RSS per node (--scenario idle:
no records at all, the cost of hosting the topic's partitions).

  --scenario NAME       throughput (default): N producers, many records in flight, batching
                        latency: one record in flight, no batching
                        consume: pre-load --records records, then consume them with one group
                        e2e: produce at --rate while a group consumes; send-to-delivery latency
                        idle: no load at all; CPU, RSS and event-loop delay of the nodes
                        hosting --partitions partitions (10000 x 3 replicas on 3 nodes:
                        10,000 replicas per node)
  --duration S          measured seconds, after the warm-up (default 10; idle 20)
  --warmup S            warm-up seconds, not measured (default 2; idle 10)
  --record-bytes N      body bytes per record, random (default 1024)
  --partitions N        partitions of the topic (default 6, at most 10000: the controller's limit)
  --replication N       replicas per partition (default 3)
  --nodes N             nodes of the local cluster (default 3)
  --producers N         concurrent producers, each its own client (default 4; throughput)
  --in-flight N         records sent and not yet acknowledged, per producer (default 1000; throughput)
  --in-flight-bytes N   scale --in-flight down so that at most N body bytes are in flight per
                        producer (default 16777216 = 16 MiB; 1000 x 64 KiB records would be 64 MiB)
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

Sweep: how throughput and latency grow with the load (a fresh cluster for every run):
  --sweep DIM           record-bytes, partitions, producers, or all (the three one after another);
                        each point runs the throughput scenario with DIM set to the point's value
                        and every other option as given (or its default)
  --values A,B,...      the points of DIM (default record-bytes 100,1024,4096,16384,65536;
                        partitions 1,10,100,1000; producers 1,2,4,8); not with --sweep all
  --sweep-latency       also run the latency scenario (one record in flight) at each point of
                        record-bytes and partitions (it has one producer, so not of producers)
  --chart FILE          the SVG chart (default: the JSON path with .svg)
  With --sweep, --out is the JSON of every point and --json prints it on stdout.
`;

/** Parses `argv` (without node and script); throws BenchUsageError naming the bad option. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | "help" {
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    tokens: true,
    options: {
      scenario: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "record-bytes": { type: "string", default: "1024" },
      partitions: { type: "string", default: "6" },
      replication: { type: "string", default: "3" },
      nodes: { type: "string", default: "3" },
      producers: { type: "string", default: "4" },
      "in-flight": { type: "string", default: "1000" },
      "in-flight-bytes": { type: "string", default: String(16 * 1024 * 1024) },
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
      sweep: { type: "string" },
      values: { type: "string" },
      "sweep-latency": { type: "boolean", default: false },
      chart: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new BenchUsageError(`unexpected argument "${positionals[0]}" (options start with --)`);
  const scenario = values.scenario ?? "throughput";
  if (!(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new BenchUsageError(`--scenario must be one of ${SCENARIOS.join(", ")}, got "${scenario}"`);
  }
  const given = new Set(tokens.flatMap((t) => (t.kind === "option" ? [t.name] : [])));
  const phases = SCENARIO_PHASES_S[scenario as ScenarioName];
  if (scenario === "idle") {
    const load = LOAD_OPTIONS.find((name) => given.has(name));
    if (load !== undefined) throw new BenchUsageError(`--${load} does not apply to --scenario idle (it puts no load on the cluster)`);
  }
  const nodes = int(values.nodes, "--nodes", 1, 9);
  const options: BenchOptions = {
    scenario: scenario as ScenarioName,
    durationS: num(values.duration ?? String(phases.durationS), "--duration", 1, 3600),
    warmupS: num(values.warmup ?? String(phases.warmupS), "--warmup", 0, 600),
    recordBytes: dimension(values["record-bytes"], "record-bytes"),
    partitions: dimension(values.partitions, "partitions"),
    replication: int(values.replication, "--replication", 1, nodes),
    nodes,
    producers: dimension(values.producers, "producers"),
    inFlight: int(values["in-flight"], "--in-flight", 1, 100_000),
    inFlightBytesMax: int(values["in-flight-bytes"], "--in-flight-bytes", 1024, 1024 * 1024 * 1024),
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
    sweep: undefined,
  };
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(options.logLevel)) {
    throw new BenchUsageError(`--log-level must be trace, debug, info, warn, error, fatal or silent, got "${options.logLevel}"`);
  }
  const sweep = parseSweep(values, given);
  return sweep === undefined ? options : { ...options, sweep };
}

/** The sweep options, checked against the others; undefined without --sweep. */
function parseSweep(
  values: { sweep?: string | undefined; values?: string | undefined; "sweep-latency": boolean; chart?: string | undefined },
  given: ReadonlySet<string>,
): SweepOptions | undefined {
  if (values.sweep === undefined) {
    for (const name of ["values", "sweep-latency", "chart"]) {
      if (given.has(name)) throw new BenchUsageError(`--${name} needs --sweep`);
    }
    return undefined;
  }
  if (given.has("scenario")) {
    throw new BenchUsageError("--scenario does not apply to --sweep (each point runs the throughput scenario, and the latency one with --sweep-latency)");
  }
  const name = values.sweep;
  if (name === "all") {
    if (values.values !== undefined) throw new BenchUsageError("--values needs a single --sweep dimension (record-bytes, partitions or producers), not all");
    return { axes: SWEEP_DIMENSIONS.map((d) => ({ dimension: d, values: SWEEP_DEFAULT_VALUES[d] })), latency: values["sweep-latency"], chart: values.chart };
  }
  if (!(SWEEP_DIMENSIONS as readonly string[]).includes(name)) {
    throw new BenchUsageError(`--sweep must be one of ${SWEEP_DIMENSIONS.join(", ")} or all, got "${name}"`);
  }
  const d = name as SweepDimension;
  if (given.has(d)) throw new BenchUsageError(`--${d} is the swept dimension: give its points with --values, not --${d}`);
  const points = values.values === undefined ? SWEEP_DEFAULT_VALUES[d] : sweepValues(values.values, d);
  return { axes: [{ dimension: d, values: points }], latency: values["sweep-latency"], chart: values.chart };
}

/** "100,1024,65536": whole numbers within the dimension's bounds, at most SWEEP_VALUES_MAX; sorted, duplicates dropped. */
function sweepValues(text: string, d: SweepDimension): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.some((p) => p === "")) throw new BenchUsageError(`--values must be numbers separated by commas, got "${text}"`);
  if (parts.length > SWEEP_VALUES_MAX) throw new BenchUsageError(`--values takes at most ${SWEEP_VALUES_MAX} points, got ${parts.length}`);
  const { min, max } = DIMENSION_BOUNDS[d];
  const points = parts.map((p) => int(p, `--values (of --sweep ${d})`, min, max));
  return [...new Set(points)].sort((a, b) => a - b);
}

function dimension(text: string, d: SweepDimension): number {
  return int(text, `--${d}`, DIMENSION_BOUNDS[d].min, DIMENSION_BOUNDS[d].max);
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

/**
 * `npm run bench`: raftmq's produce benchmark.
 *
 * It starts its own local cluster (3 node processes on free loopback ports, data in a temporary
 * folder removed at the end), creates a topic (6 partitions, 3 replicas by default), runs a
 * produce load for a warm-up and then for the measured duration, and reports records/s, MB/s,
 * produce-acknowledgement latency per record (send() to acknowledgement, HdrHistogram) and CPU and
 * RSS per node (sampled from /proc once a second). Progress goes to stderr once a second; the
 * result goes to stdout (a table, or JSON with --json) and always to a JSON file.
 *
 * Scenarios are produce loads with fixed shapes (see SCENARIO_LOADS): `throughput` (N producers,
 * many records in flight, batching) and `latency` (one record in flight, one record per request).
 * A new scenario is a new entry there; a sweep (issue 6) is a loop over runs of runProduce().
 *
 * Processes: every node is stopped by PID at the end, also after an error or Ctrl-C (the first
 * Ctrl-C stops the run cleanly, a second one exits at once and LocalCluster's exit hook SIGKILLs
 * the nodes). The load generator is this process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { TopicInfo } from "../../src/client/index.js";
import { BenchCluster } from "./bench-cluster.js";
import { BenchUsageError, parseBenchArgs, USAGE, type BenchOptions, type ScenarioName } from "./options.js";
import { PayloadPool } from "./payloads.js";
import { ProcSampler } from "./proc-stats.js";
import { GroupConsume, PacedProducer, preload } from "./consume-load.js";
import { LatencyHistogram } from "./latency-histogram.js";
import { ProduceLoad, ProduceMeter, type ProduceLoadSettings } from "./produce-load.js";
import { fmt, formatTable, machineInfo, nodeUsages, resultPath, round, writeResult, type BenchResult } from "./report.js";

const SAMPLE_INTERVAL_MS = 1_000;
const PROGRESS_INTERVAL_MS = 1_000;
/** After an abort, how long the load may take to wind down before the cluster is stopped under it. */
const ABORT_DRAIN_MS = 2_000;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** The load each scenario puts on the cluster. */
const SCENARIO_LOADS: Record<ScenarioName, (o: BenchOptions) => ProduceLoadSettings> = {
  throughput: (o) => ({ producers: o.producers, inFlight: o.inFlight, lingerMs: o.lingerMs, batchRecordsMax: o.batchRecordsMax }),
  // The pre-load of `consume` produces like `throughput`.
  consume: (o) => ({ producers: o.producers, inFlight: o.inFlight, lingerMs: o.lingerMs, batchRecordsMax: o.batchRecordsMax }),
  // One paced producer (see PacedProducer); inFlight is not bounded by the load but by the rate.
  e2e: () => ({ producers: 1, inFlight: 0, lingerMs: 0, batchRecordsMax: 1000 }),
  // One record in flight, and a batch bound of one record: each Produce request carries one record.
  latency: () => ({ producers: 1, inFlight: 1, lingerMs: 0, batchRecordsMax: 1 }),
};

const ACKS = "committed by Raft: fsynced on a quorum (2 of 3 replicas)";

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

  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) {
      process.stderr.write(`bench: ${signal} again: exiting at once (the nodes get SIGKILL)\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    interrupted = true;
    process.stderr.write(`bench: ${signal}: stopping the load and the cluster (again to exit at once)\n`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A throw the run did not catch (in the client, say) fails the run, which then stops the cluster.
  const onUncaught = (error: unknown): void => {
    if (!abort.signal.aborted) abort.abort(error instanceof Error ? error : new Error(String(error)));
    else process.stderr.write(`bench: ${String(error)}\n`);
  };
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);

  const execArgv = ["--enable-source-maps", ...(options.cpuProfDir !== undefined ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : [])];
  const cluster = BenchCluster.create({
    nodes: options.nodes,
    logLevel: options.logLevel,
    execArgv,
    keepData: options.keepData,
    onUnexpectedExit: (id, code, signal) => {
      const tail = cluster.logTail(id).slice(-10).map((l) => `    | ${l}`).join("\n");
      abort.abort(new Error(`node ${id} exited during the benchmark (code ${code}, signal ${signal}); its last output:\n${tail}`));
    },
  });
  try {
    const startedAt = new Date();
    log(`starting a ${options.nodes}-node cluster (data in ${cluster.dataDir}, log level ${options.logLevel})`);
    await untilAborted(cluster.start(), abort.signal);
    const topicName = `bench-${options.scenario}-${process.pid}`;
    const topic = await untilAborted(cluster.createTopic(topicName, options.partitions, options.replication), abort.signal);
    log(`topic ${topicName}: ${options.partitions} partitions x ${options.replication} replicas; leaders ${describeLeaders(topic)}`);
    const result =
      options.scenario === "consume" ? await runConsume(options, cluster, topic, startedAt, abort)
      : options.scenario === "e2e" ? await runE2e(options, cluster, topic, startedAt, abort)
      : await runProduce(options, cluster, topic, startedAt, abort);
    const path = resultPath(options, startedAt);
    writeResult(path, result);
    process.stdout.write(options.json ? JSON.stringify(result, null, 2) + "\n" : formatTable(result) + "\n");
    (options.json ? process.stderr : process.stdout).write(`\nresult written to ${path}\n`);
    if (options.cpuProfDir !== undefined) log(`CPU profiles of the nodes are written to ${options.cpuProfDir} as they exit`);
    return result.result.errors > 0 ? 1 : 0;
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    return interrupted ? EXIT_INTERRUPTED : 1;
  } finally {
    log("stopping the cluster");
    await cluster.close();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("uncaughtException", onUncaught);
    process.removeListener("unhandledRejection", onUncaught);
  }
}

/** Runs the scenario's produce load: warm-up, measurement, drain; returns the result. */
async function runProduce(options: BenchOptions, cluster: BenchCluster, topic: TopicInfo, startedAt: Date, abort: AbortController): Promise<BenchResult> {
  const settings = SCENARIO_LOADS[options.scenario](options);
  const meter = new ProduceMeter();
  const load = new ProduceLoad(cluster.brokers(), topic.name, settings, new PayloadPool(options.recordBytes), meter, (e) => abort.abort(e));
  const nodes = cluster.processes();
  const sampler = new ProcSampler([...nodes.map((n) => ({ label: `node-${n.id}`, pid: n.pid })), { label: "load-generator", pid: process.pid }], SAMPLE_INTERVAL_MS);
  const progress = startProgress(meter);
  let drained = false;
  load.start();
  try {
    await untilAborted(sleep(options.warmupS * 1000), abort.signal);
    meter.beginMeasure();
    sampler.start();
    await untilAborted(sleep(options.durationS * 1000), abort.signal);
    meter.endMeasure();
    const usage = sampler.stop();
    const machinePct = sampler.machineCpuPct();
    log(`measured; waiting for the records in flight`);
    await load.stop();
    drained = true;
    const leaders = new Map<number, number>();
    for (const p of topic.partitions) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
    const loadUsage = usage.find((u) => u.label === "load-generator")!;
    return {
      benchmark: "raftmq-produce",
      scenario: options.scenario,
      startedAt: startedAt.toISOString(),
      machine: machineInfo(),
      settings: {
        durationS: options.durationS,
        warmupS: options.warmupS,
        recordBytes: options.recordBytes,
        partitions: options.partitions,
        replication: options.replication,
        nodes: options.nodes,
        acks: ACKS,
        ...settings,
      },
      result: {
        records: meter.ackedMeasured,
        bodyBytes: meter.bytesMeasured,
        seconds: round(meter.measuredS, 3),
        recordsPerS: round(meter.ackedMeasured / meter.measuredS, 1),
        mbPerS: round(meter.bytesMeasured / meter.measuredS / 1e6, 2),
        latencyMs: roundLatency(meter.latency.summary()),
        errors: meter.errors,
        firstError: meter.firstError === undefined ? undefined : String(meter.firstError),
      },
      nodes: nodeUsages(usage.filter((u) => u.label !== "load-generator"), leaders),
      loadGenerator: { pid: loadUsage.pid, cpuPct: round(loadUsage.cpuPct, 1), rssMeanMiB: round(loadUsage.rssMeanMiB, 1), rssMaxMiB: round(loadUsage.rssMaxMiB, 1) },
      machineCpu: { totalPct: round(machinePct, 1), otherPct: round(machinePct - usage.reduce((a, u) => a + u.cpuPct, 0), 1) },
      cpuProfDir: options.cpuProfDir,
    };
  } finally {
    clearInterval(progress);
    if (!drained) await Promise.race([load.stop().catch(() => undefined), sleep(ABORT_DRAIN_MS)]);
  }
}

/** `consume`: pre-load options.records records, then consume them all with one group. */
async function runConsume(options: BenchOptions, cluster: BenchCluster, topic: TopicInfo, startedAt: Date, abort: AbortController): Promise<BenchResult> {
  const settings = SCENARIO_LOADS.consume(options);
  let acked = 0;
  let lastLog = performance.now();
  log(`pre-loading ${options.records} records`);
  const pre = await untilAborted(
    preload(cluster.brokers(), topic.name, options.records, settings, new PayloadPool(options.recordBytes), (n) => {
      acked = n;
      if (performance.now() - lastLog > PROGRESS_INTERVAL_MS) {
        lastLog = performance.now();
        log(`pre-load: ${fmt(acked, 0)} acknowledged`);
      }
    }),
    abort.signal,
  );
  log(`pre-loaded ${pre.records} records in ${fmt(pre.seconds, 1)} s; consuming with ${options.consumers} member(s)`);
  const group = new GroupConsume(cluster.brokers(), topic.name, `bench-group-${process.pid}`, options, (e) => abort.abort(e));
  const sampler = samplerOf(cluster);
  const progress = setInterval(() => log(`consumed ${fmt(group.delivered, 0)}`), PROGRESS_INTERVAL_MS);
  try {
    sampler.start();
    group.start();
    const done = await untilAborted(group.waitFor(pre.records, Math.max(60_000, pre.records / 10)), abort.signal);
    const usage = sampler.stop();
    const machinePct = sampler.machineCpuPct();
    if (!done) throw new Error(`only ${group.delivered} of ${pre.records} records were delivered before the timeout`);
    const seconds = (group.lastMs - group.firstMs) / 1000;
    const meter = new ProduceMeter();
    return assemble(options, startedAt, topic, settings, usage, machinePct, {
      records: group.delivered,
      bodyBytes: group.bytes,
      seconds: round(seconds, 3),
      recordsPerS: round(group.delivered / seconds, 1),
      mbPerS: round(group.bytes / seconds / 1e6, 2),
      latencyMs: roundLatency(meter.latency.summary()),
      errors: 0,
      firstError: undefined,
    }, {
      consumers: options.consumers,
      prefetchRecords: options.prefetchRecords,
      prefetchBytes: options.prefetchBytes,
      records: group.delivered,
      seconds: round(seconds, 3),
      recordsPerS: round(group.delivered / seconds, 1),
      mbPerS: round(group.bytes / seconds / 1e6, 2),
      preload: { records: pre.records, seconds: round(pre.seconds, 3), recordsPerS: round(pre.records / pre.seconds, 1) },
    });
  } finally {
    clearInterval(progress);
    await Promise.race([group.close(), sleep(10_000)]);
  }
}

/** `e2e`: produce at options.rate while one group consumes; latency from send to delivery. */
async function runE2e(options: BenchOptions, cluster: BenchCluster, topic: TopicInfo, startedAt: Date, abort: AbortController): Promise<BenchResult> {
  const settings = SCENARIO_LOADS.e2e(options);
  const group = new GroupConsume(cluster.brokers(), topic.name, `bench-group-${process.pid}`, options, (e) => abort.abort(e));
  const producer = new PacedProducer(cluster.brokers(), topic.name, options.rate, 5, new PayloadPool(options.recordBytes), (e) => abort.abort(e));
  const sampler = samplerOf(cluster);
  let lastDelivered = 0;
  const progress = setInterval(() => {
    log(`sent ${fmt(producer.sent, 0)}, delivered ${fmt(group.delivered, 0)} (+${fmt(group.delivered - lastDelivered, 0)} this second)`);
    lastDelivered = group.delivered;
  }, PROGRESS_INTERVAL_MS);
  let stopped = false;
  try {
    group.start();
    producer.start();
    await untilAborted(sleep(options.warmupS * 1000), abort.signal);
    const from = performance.now();
    producer.measureFromMs = group.measureFromMs = from;
    const delivered0 = group.delivered;
    sampler.start();
    await untilAborted(sleep(options.durationS * 1000), abort.signal);
    const to = performance.now();
    producer.measureToMs = group.measureToMs = to;
    const deliveredInWindow = group.delivered - delivered0;
    const usage = sampler.stop();
    const machinePct = sampler.machineCpuPct();
    log("measured; waiting for the measured records to be delivered");
    await untilAborted(producer.stop(), abort.signal);
    stopped = true;
    await untilAborted(group.waitFor(producer.sentMeasured, 30_000), abort.signal);
    const seconds = (to - from) / 1000;
    const e2e = roundLatency(group.latency.summary());
    return assemble(options, startedAt, topic, settings, usage, machinePct, {
      records: producer.sentMeasured,
      bodyBytes: producer.sentMeasured * options.recordBytes,
      seconds: round(seconds, 3),
      recordsPerS: round(producer.sentMeasured / seconds, 1),
      mbPerS: round((producer.sentMeasured * options.recordBytes) / seconds / 1e6, 2),
      latencyMs: roundLatency(new LatencyHistogram().summary()),
      errors: producer.errors,
      firstError: producer.firstError === undefined ? undefined : String(producer.firstError),
    }, {
      consumers: options.consumers,
      prefetchRecords: options.prefetchRecords,
      prefetchBytes: options.prefetchBytes,
      records: deliveredInWindow,
      seconds: round(seconds, 3),
      recordsPerS: round(deliveredInWindow / seconds, 1),
      mbPerS: round((deliveredInWindow * options.recordBytes) / seconds / 1e6, 2),
      rate: options.rate,
      endToEndMs: e2e,
      undelivered: Math.max(0, producer.sentMeasured - group.measuredDelivered),
    });
  } finally {
    clearInterval(progress);
    if (!stopped) await Promise.race([producer.stop().catch(() => undefined), sleep(ABORT_DRAIN_MS)]);
    await Promise.race([group.close(), sleep(10_000)]);
  }
}

function samplerOf(cluster: BenchCluster): ProcSampler {
  return new ProcSampler([...cluster.processes().map((n) => ({ label: `node-${n.id}`, pid: n.pid })), { label: "load-generator", pid: process.pid }], SAMPLE_INTERVAL_MS);
}

function assemble(
  options: BenchOptions,
  startedAt: Date,
  topic: TopicInfo,
  settings: ProduceLoadSettings,
  usage: ReturnType<ProcSampler["stop"]>,
  machinePct: number,
  result: BenchResult["result"],
  consume: BenchResult["consume"],
): BenchResult {
  const leaders = new Map<number, number>();
  for (const p of topic.partitions) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
  const loadUsage = usage.find((u) => u.label === "load-generator")!;
  return {
    benchmark: "raftmq-produce",
    scenario: options.scenario,
    startedAt: startedAt.toISOString(),
    machine: machineInfo(),
    settings: {
      durationS: options.durationS,
      warmupS: options.warmupS,
      recordBytes: options.recordBytes,
      partitions: options.partitions,
      replication: options.replication,
      nodes: options.nodes,
      acks: ACKS,
      ...settings,
    },
    result,
    consume,
    nodes: nodeUsages(usage.filter((u) => u.label !== "load-generator"), leaders),
    loadGenerator: { pid: loadUsage.pid, cpuPct: round(loadUsage.cpuPct, 1), rssMeanMiB: round(loadUsage.rssMeanMiB, 1), rssMaxMiB: round(loadUsage.rssMaxMiB, 1) },
    machineCpu: { totalPct: round(machinePct, 1), otherPct: round(machinePct - usage.reduce((a, u) => a + u.cpuPct, 0), 1) },
    cpuProfDir: options.cpuProfDir,
  };
}

/** Prints acknowledged records per second to stderr, once a second. */
function startProgress(meter: ProduceMeter): NodeJS.Timeout {
  const t0 = performance.now();
  let lastAcked = 0;
  let lastMs = t0;
  return setInterval(() => {
    const now = performance.now();
    const rate = ((meter.ackedTotal - lastAcked) * 1000) / (now - lastMs);
    const soFar = meter.phase === "measure" ? `; ${fmt(meter.ackedMeasured, 0)} measured` : "";
    log(`${fmt((now - t0) / 1000, 0).padStart(3)} s  ${meter.phase.padEnd(7)}  ${fmt(rate, 0).padStart(9)} records/s${soFar}${meter.errors > 0 ? `; ${meter.errors} errors` : ""}`);
    lastAcked = meter.ackedTotal;
    lastMs = now;
  }, PROGRESS_INTERVAL_MS);
}

/** `promise`, or the abort reason as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  promise.catch(() => undefined); // an abandoned promise must not become an unhandled rejection
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}

function describeLeaders(topic: TopicInfo): string {
  const byNode = new Map<number, number[]>();
  for (const p of topic.partitions) byNode.set(p.leader, [...(byNode.get(p.leader) ?? []), p.partition]);
  return [...byNode].sort(([a], [b]) => a - b).map(([node, ps]) => `node ${node}: ${ps.join(",")}`).join("; ");
}

function roundLatency(l: ReturnType<ProduceMeter["latency"]["summary"]>): ReturnType<ProduceMeter["latency"]["summary"]> {
  return {
    count: l.count,
    p50Ms: round(l.p50Ms, 3),
    p90Ms: round(l.p90Ms, 3),
    p99Ms: round(l.p99Ms, 3),
    p999Ms: round(l.p999Ms, 3),
    maxMs: round(l.maxMs, 3),
    meanMs: round(l.meanMs, 3),
  };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

const code = await main(process.argv.slice(2));
// Bounded retries of abandoned calls may hold timers after an abort; the nodes are stopped already.
process.exit(code);

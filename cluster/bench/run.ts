/**
 * One benchmark run: a fresh local cluster, a topic, one scenario's load, its result. runBench()
 * stops the cluster (every node by PID) before it returns or throws, so a sweep can run point
 * after point without leftovers.
 *
 * Scenarios are loads with fixed shapes (see SCENARIO_LOADS): `throughput` (N producers, many
 * records in flight, batching), `latency` (one record in flight, one record per request),
 * `consume` (pre-load, then one consumer group), `e2e` (a paced producer while a group
 * consumes) and `idle` (no load: what hosting the partitions costs). A new scenario is a new
 * entry there.
 *
 * Failure: a node that exits, a load that fails too often, or the caller's `stop` signal (Ctrl-C)
 * aborts the run; runBench() then rejects with the reason, after the cluster is stopped.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { TopicInfo } from "../../src/client/index.js";
import { NODE_RUNTIME_FLAGS } from "../../src/server/runtime-flags.js";
import { BenchCluster } from "./bench-cluster.js";
import { GroupConsume, PacedProducer, preload } from "./consume-load.js";
import { LatencyHistogram } from "./latency-histogram.js";
import { inFlightOf, type BenchOptions, type ScenarioName } from "./options.js";
import { LOOP_DELAY_RESOLUTION_MS } from "./loop-delay.js";
import { PayloadPool } from "./payloads.js";
import { ProcSampler, readProc } from "./proc-stats.js";
import { ProduceLoad, ProduceMeter, type ProduceLoadSettings } from "./produce-load.js";
import { fmt, fmtBytes, idleNodes, machineInfo, nodeUsages, partitionsReelected, replicasByNode, round, type BenchResult } from "./report.js";

const SAMPLE_INTERVAL_MS = 1_000;
const PROGRESS_INTERVAL_MS = 1_000;
/** After an abort, how long the load may take to wind down before the cluster is stopped under it. */
const ABORT_DRAIN_MS = 2_000;
/** Above this many partitions, the start-up line counts each node's leaders instead of listing them. */
const LEADERS_LISTED_MAX = 24;
/**
 * idle: the metadata is read this long before the measurement starts (within the warm-up), so
 * that the node that answers (10,000 partitions to describe) is done with it when it starts.
 */
const IDLE_DESCRIBE_LEAD_MS = 1_000;

/** The load each scenario puts on the cluster. */
export const SCENARIO_LOADS: Record<ScenarioName, (o: BenchOptions) => ProduceLoadSettings> = {
  throughput: (o) => ({ producers: o.producers, inFlight: inFlightOf(o), lingerMs: o.lingerMs, batchRecordsMax: o.batchRecordsMax }),
  // The pre-load of `consume` produces like `throughput`.
  consume: (o) => ({ producers: o.producers, inFlight: inFlightOf(o), lingerMs: o.lingerMs, batchRecordsMax: o.batchRecordsMax }),
  // One paced producer (see PacedProducer); inFlight is not bounded by the load but by the rate.
  e2e: () => ({ producers: 1, inFlight: 0, lingerMs: 0, batchRecordsMax: 1000 }),
  // One record in flight, and a batch bound of one record: each Produce request carries one record.
  latency: () => ({ producers: 1, inFlight: 1, lingerMs: 0, batchRecordsMax: 1 }),
  // No load at all.
  idle: () => ({ producers: 0, inFlight: 0, lingerMs: 0, batchRecordsMax: 0 }),
};

const ACKS = "committed by Raft: fsynced on a quorum (2 of 3 replicas)";

/** What a run needs from its caller. */
export interface RunContext {
  /** Aborted on Ctrl-C or an uncaught error: the run stops, its cluster is stopped, runBench() rejects. */
  readonly stop: AbortSignal;
  /** Writes one line of progress (to stderr). */
  readonly log: (line: string) => void;
}

/** Starts a fresh cluster, runs options.scenario on it, stops the cluster; returns the result. */
export async function runBench(options: BenchOptions, ctx: RunContext): Promise<BenchResult> {
  const abort = new AbortController();
  const onStop = (): void => abort.abort(ctx.stop.reason);
  if (ctx.stop.aborted) throw ctx.stop.reason as Error;
  ctx.stop.addEventListener("abort", onStop, { once: true });
  const execArgv = ["--enable-source-maps", ...NODE_RUNTIME_FLAGS, ...(options.cpuProfDir !== undefined ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : [])];
  const cluster = BenchCluster.create({
    nodes: options.nodes,
    logLevel: options.logLevel,
    execArgv,
    keepData: options.keepData,
    loopDelayProbe: options.scenario === "idle",
    onUnexpectedExit: (id, code, signal) => {
      const tail = cluster.logTail(id).slice(-10).map((l) => `    | ${l}`).join("\n");
      abort.abort(new Error(`node ${id} exited during the benchmark (code ${code}, signal ${signal}); its last output:\n${tail}`));
    },
  });
  const log = ctx.log;
  try {
    const startedAt = new Date();
    log(`starting a ${options.nodes}-node cluster (data in ${cluster.dataDir}, log level ${options.logLevel})`);
    await untilAborted(cluster.start(), abort.signal);
    const topicName = `bench-${options.scenario}-${process.pid}`;
    log(`creating topic ${topicName} (${options.partitions} partitions x ${options.replication} replicas) and waiting for its partition leaders`);
    const createdAtMs = performance.now();
    const topic = await untilAborted(
      cluster.createTopic(topicName, options.partitions, options.replication, (w) =>
        log(`waiting for partition leaders: ${w.done} of ${w.partitions} elected (${fmt(w.waitedMs / 1000, 0)} s of at most ${fmt(w.timeoutMs / 1000, 0)} s)`),
      ),
      abort.signal,
    );
    const leadersElectedS = (performance.now() - createdAtMs) / 1000;
    log(`topic ${topicName}: ${options.partitions} partitions x ${options.replication} replicas, all led after ${fmt(leadersElectedS, 1)} s; leaders ${describeLeaders(topic)}`);
    const settings = SCENARIO_LOADS[options.scenario](options);
    if (settings.inFlight < options.inFlight && (options.scenario === "throughput" || options.scenario === "consume")) {
      log(`in flight per producer: ${settings.inFlight} records of ${fmtBytes(options.recordBytes)} (--in-flight ${options.inFlight} scaled down to stay within --in-flight-bytes ${fmtBytes(options.inFlightBytesMax)})`);
    }
    const run = { options, cluster, topic, leadersElectedS, startedAt, abort, log };
    return options.scenario === "consume" ? await runConsume(run)
      : options.scenario === "e2e" ? await runE2e(run)
      : options.scenario === "idle" ? await runIdle(run)
      : await runProduce(run);
  } finally {
    ctx.stop.removeEventListener("abort", onStop);
    log("stopping the cluster");
    await cluster.close();
  }
}

/** One run's state, passed to the scenario functions. */
interface Run {
  readonly options: BenchOptions;
  readonly cluster: BenchCluster;
  readonly topic: TopicInfo;
  /** Seconds from the CreateTopic call until every partition had a leader. */
  readonly leadersElectedS: number;
  readonly startedAt: Date;
  readonly abort: AbortController;
  readonly log: (line: string) => void;
}

/** Runs the scenario's produce load: warm-up, measurement, drain; returns the result. */
async function runProduce({ options, cluster, topic, startedAt, abort, log }: Run): Promise<BenchResult> {
  const settings = SCENARIO_LOADS[options.scenario](options);
  const meter = new ProduceMeter();
  const load = new ProduceLoad(cluster.brokers(), topic.name, settings, new PayloadPool(options.recordBytes), meter, (e) => abort.abort(e));
  const sampler = samplerOf(cluster);
  const progress = startProgress(meter, log);
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
    return assemble(options, startedAt, topic, settings, usage, machinePct, {
      records: meter.ackedMeasured,
      bodyBytes: meter.bytesMeasured,
      seconds: round(meter.measuredS, 3),
      recordsPerS: round(meter.ackedMeasured / meter.measuredS, 1),
      mbPerS: round(meter.bytesMeasured / meter.measuredS / 1e6, 2),
      latencyMs: roundLatency(meter.latency.summary()),
      errors: meter.errors,
      firstError: meter.firstError === undefined ? undefined : String(meter.firstError),
    }, undefined);
  } finally {
    clearInterval(progress);
    if (!drained) await Promise.race([load.stop().catch(() => undefined), sleep(ABORT_DRAIN_MS)]);
  }
}

/** `consume`: pre-load options.records records, then consume them all with one group. */
async function runConsume({ options, cluster, topic, startedAt, abort, log }: Run): Promise<BenchResult> {
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
async function runE2e({ options, cluster, topic, startedAt, abort, log }: Run): Promise<BenchResult> {
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
      latencyMs: roundLatency(producer.ackLatency.summary()),
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

/**
 * `idle`: no load at all. Waits until every replica is in sync (so every node has created its
 * replicas), then warms up (ending with a fresh read of the metadata, for the leaders), samples
 * the nodes for the duration, and reads the metadata again to count the partitions elected
 * meanwhile.
 */
async function runIdle({ options, cluster, topic, leadersElectedS, startedAt, abort, log }: Run): Promise<BenchResult> {
  log("waiting until every replica is in sync (every node has created its replicas)");
  const syncFromMs = performance.now();
  await untilAborted(
    cluster.waitInSync(topic.name, options.partitions, (w) =>
      log(`waiting for replicas: ${w.done} of ${w.partitions} partitions have every replica in sync (${fmt(w.waitedMs / 1000, 0)} s of at most ${fmt(w.timeoutMs / 1000, 0)} s)`),
    ),
    abort.signal,
  );
  const replicasInSyncS = leadersElectedS + (performance.now() - syncFromMs) / 1000;
  const sampler = samplerOf(cluster);
  const phase = { name: "warm-up" };
  const progress = startIdleProgress(cluster, phase, log);
  const describeLeadMs = Math.min(IDLE_DESCRIBE_LEAD_MS, options.warmupS * 1000);
  try {
    log(`warm-up: ${options.warmupS} s with no load, for the creation traffic and elections to end`);
    await untilAborted(sleep(options.warmupS * 1000 - describeLeadMs), abort.signal);
    const before = await untilAborted(cluster.describeTopic(topic.name), abort.signal);
    await untilAborted(sleep(describeLeadMs), abort.signal);
    log(`measuring for ${options.durationS} s; leaders ${describeLeaders(before)}`);
    const fromMs = Date.now();
    const fromPerfMs = performance.now();
    phase.name = "measure";
    sampler.start();
    await untilAborted(sleep(options.durationS * 1000), abort.signal);
    const usage = sampler.stop();
    const machinePct = sampler.machineCpuPct();
    const toMs = Date.now();
    const seconds = (performance.now() - fromPerfMs) / 1000;
    phase.name = "done";
    const after = await untilAborted(cluster.describeTopic(topic.name), abort.signal);
    const nodeUsage = usage.filter((u) => u.label !== "load-generator");
    const result = assemble(options, startedAt, before, SCENARIO_LOADS.idle(options), usage, machinePct, {
      records: 0,
      bodyBytes: 0,
      seconds: round(seconds, 3),
      recordsPerS: 0,
      mbPerS: 0,
      latencyMs: roundLatency(new LatencyHistogram().summary()),
      errors: 0,
      firstError: undefined,
    }, undefined);
    return {
      ...result,
      idle: {
        topic: topic.name,
        leadersElectedS: round(leadersElectedS, 1),
        replicasInSyncS: round(replicasInSyncS, 1),
        partitionsReelected: partitionsReelected(before, after),
        loopDelayResolutionMs: LOOP_DELAY_RESOLUTION_MS,
        // The probes' lines written during the measurement (each covers the second before it).
        nodes: idleNodes(nodeUsage, replicasByNode(before), (pid) => cluster.loopDelay(pid, fromMs, toMs)),
      },
    };
  } finally {
    clearInterval(progress);
  }
}

/** idle: logs the phase and each node's CPU over the last second, once a second. */
function startIdleProgress(cluster: BenchCluster, phase: { readonly name: string }, log: (line: string) => void): NodeJS.Timeout {
  const t0 = performance.now();
  const nodes = cluster.processes();
  let last = nodes.map((n) => readProc(n.pid)?.cpuS ?? NaN);
  let lastMs = t0;
  return setInterval(() => {
    const now = performance.now();
    const cpuS = nodes.map((n) => readProc(n.pid)?.cpuS ?? NaN);
    const pct = cpuS.map((s, i) => fmt((100 * (s - last[i]!) * 1000) / (now - lastMs), 1));
    log(`${fmt((now - t0) / 1000, 0).padStart(3)} s  ${phase.name.padEnd(7)}  node CPU % of a core (${nodes.map((n) => n.id).join(" / ")}): ${pct.join(" / ")}`);
    last = cpuS;
    lastMs = now;
  }, PROGRESS_INTERVAL_MS);
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
      inFlightBytesMax: options.inFlightBytesMax,
      ...(settings.inFlight < options.inFlight && (options.scenario === "throughput" || options.scenario === "consume") ? { inFlightRequested: options.inFlight } : {}),
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

/** Logs acknowledged records per second, once a second. */
function startProgress(meter: ProduceMeter, log: (line: string) => void): NodeJS.Timeout {
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
  const list = topic.partitions.length <= LEADERS_LISTED_MAX;
  return [...byNode].sort(([a], [b]) => a - b).map(([node, ps]) => `node ${node}: ${list ? ps.join(",") : `${ps.length} partitions`}`).join("; ");
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


/**
 * The result of a benchmark run: its JSON form (written to a file every time, printed with
 * --json) and its table for people. MB is 10^6 bytes of record bodies (keys, headers, ids and
 * framing not counted), as in shared/peer-bench.
 */
import { writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem, type } from "node:os";
import { join } from "node:path";
import type { TopicInfo } from "../../src/client/index.js";
import type { LatencySummary } from "./latency-histogram.js";
import type { LoopDelaySummary } from "./loop-delay.js";
import type { BenchOptions, ScenarioName, SweepDimension } from "./options.js";
import type { ProduceLoadSettings } from "./produce-load.js";
import type { ProcUsage } from "./proc-stats.js";

export interface NodeUsage {
  readonly id: number;
  readonly pid: number;
  /** Partitions of the topic this node led when the measurement started. */
  readonly partitionLeaders: number;
  readonly cpuPct: number;
  readonly rssMeanMiB: number;
  readonly rssMaxMiB: number;
  /** Bytes the process caused to be written to disk per second (WAL, flushes, compaction), in MB. */
  readonly diskWriteMBps: number;
  /** CPU per kind of thread (main, rocksdb:low = compaction, rocksdb:high = flush, other), in percent of one core. */
  readonly threadsCpuPct: Readonly<Record<string, number>>;
}

export interface BenchResult {
  readonly benchmark: "raftmq-produce";
  readonly scenario: ScenarioName;
  readonly startedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memoryGiB: number; readonly os: string; readonly node: string };
  readonly settings: {
    readonly durationS: number;
    readonly warmupS: number;
    readonly recordBytes: number;
    readonly partitions: number;
    readonly replication: number;
    readonly nodes: number;
    /** What an acknowledgement means. */
    readonly acks: string;
    /** --in-flight-bytes: the bound on record bodies in flight per producer. */
    readonly inFlightBytesMax: number;
    /** --in-flight as asked, present when the bytes bound scaled it down to `inFlight`. */
    readonly inFlightRequested?: number;
  } & ProduceLoadSettings;
  readonly result: {
    readonly records: number;
    readonly bodyBytes: number;
    readonly seconds: number;
    readonly recordsPerS: number;
    readonly mbPerS: number;
    readonly latencyMs: LatencySummary;
    readonly errors: number;
    readonly firstError: string | undefined;
  };
  /**
   * consume and e2e scenarios: the consumer group's side. consume: records/s and MB/s from the
   * first to the last delivered record (pre-load reported apart). e2e: latency from send() to
   * delivery (same process, performance.now()) of the records sent during the measurement.
   */
  readonly consume?: {
    readonly consumers: number;
    readonly prefetchRecords: number;
    readonly prefetchBytes: number;
    readonly records: number;
    readonly seconds: number;
    readonly recordsPerS: number;
    readonly mbPerS: number;
    readonly preload?: { readonly records: number; readonly seconds: number; readonly recordsPerS: number };
    readonly rate?: number;
    readonly endToEndMs?: LatencySummary;
    readonly undelivered?: number;
  };
  /**
   * idle scenario: no load; what hosting the topic's partitions costs. `result` then holds zeros
   * (no record is sent) and `nodes` the CPU and RSS over the measurement.
   */
  readonly idle?: IdleResult;
  readonly nodes: readonly NodeUsage[];
  readonly loadGenerator: { readonly pid: number; readonly cpuPct: number; readonly rssMeanMiB: number; readonly rssMaxMiB: number };
  /**
   * CPU of the whole machine during the measurement, in percent of one core: all of it, and what
   * processes other than the nodes and the load generator took (other work on a shared machine,
   * kernel threads). A large `otherCpuPct` means the figures are disturbed.
   */
  readonly machineCpu: { readonly totalPct: number; readonly otherPct: number };
  /** Where the nodes' CPU profiles went, if --cpu-prof was given. */
  readonly cpuProfDir: string | undefined;
}

/** The idle scenario's own figures (BenchResult.idle). */
export interface IdleResult {
  readonly topic: string;
  /** Seconds from the CreateTopic call until every partition had a leader. */
  readonly leadersElectedS: number;
  /** Seconds from the CreateTopic call until every replica was in sync (every node had created its replicas); the warm-up starts then. */
  readonly replicasInSyncS: number;
  /**
   * Partitions whose leader or leader term changed between the start and the end of the
   * measurement: elections while "idle" (0 expected; more means the figures include elections).
   */
  readonly partitionsReelected: number;
  /** The timer interval of the event-loop delay probe, in ms (see loop-delay.ts). */
  readonly loopDelayResolutionMs: number;
  readonly nodes: readonly IdleNode[];
}

export interface IdleNode {
  readonly id: number;
  /** Partitions of the topic with a replica on this node (from the metadata's replica lists). */
  readonly partitionReplicas: number;
  /** The node's CPU (NodeUsage.cpuPct) per 1,000 of its partition replicas, in percent of one core. */
  readonly cpuPctPer1000Replicas: number;
  /** Event-loop delay beyond the probe's timer interval, over the measurement; undefined if the probe wrote nothing. */
  readonly loopDelayMs: LoopDelaySummary | undefined;
}

/** One point of a sweep: the swept dimension at `value`, every other option fixed. */
export interface SweepPointResult {
  readonly value: number;
  /** Records in flight per producer that the throughput run used (after the --in-flight-bytes bound). */
  readonly inFlight: number;
  /** The throughput scenario's run; undefined if it failed (see errors) or was not reached. */
  readonly throughput: BenchResult | undefined;
  /** The latency scenario's run (--sweep-latency, not for the producers dimension). */
  readonly latency: BenchResult | undefined;
  /** "throughput: ..." / "latency: ..." for a run that failed or reported errors; empty when both were clean. */
  readonly errors: readonly string[];
}

/** One swept dimension: its points in increasing order of value. */
export interface SweepAxisResult {
  readonly dimension: SweepDimension;
  readonly values: readonly number[];
  /** The points run so far, in order of value (fewer than `values` after an interruption). */
  readonly points: readonly SweepPointResult[];
}

/**
 * The JSON of `npm run bench -- --sweep ...`: every point's full BenchResult, grouped by dimension.
 * Each run had a fresh cluster. `fixed` holds the values of the dimensions that are not swept (an
 * axis ignores the fixed value of its own dimension).
 */
export interface SweepResult {
  readonly benchmark: "raftmq-sweep";
  readonly startedAt: string;
  readonly finishedAt: string;
  /** False when the sweep was interrupted (Ctrl-C): `axes` then holds the points run so far. */
  readonly complete: boolean;
  readonly machine: BenchResult["machine"];
  readonly fixed: {
    readonly durationS: number;
    readonly warmupS: number;
    readonly recordBytes: number;
    readonly partitions: number;
    readonly producers: number;
    /** --in-flight as asked; each point reports the value it used. */
    readonly inFlight: number;
    readonly inFlightBytesMax: number;
    readonly lingerMs: number;
    readonly batchRecordsMax: number;
    readonly replication: number;
    readonly nodes: number;
  };
  /** Whether the latency scenario ran at each point (--sweep-latency). */
  readonly latency: boolean;
  readonly axes: readonly SweepAxisResult[];
}

/** Above this share of a core taken by other processes, the report warns that the figures are disturbed. */
export const OTHER_CPU_WARN_PCT = 10;

export function machineInfo(): BenchResult["machine"] {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
  };
}

/** The path the JSON result goes to: --out, or a new file in the OS temp folder. */
export function resultPath(options: BenchOptions, startedAt: Date): string {
  if (options.out !== undefined) return options.out;
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const name = options.sweep === undefined ? options.scenario : `sweep-${options.sweep.axes.length === 1 ? options.sweep.axes[0]!.dimension : "all"}`;
  return join(tmpdir(), `raftmq-bench-${name}-${stamp}-${process.pid}.json`);
}

/** The path the SVG chart of a sweep goes to: --chart, or the JSON path with .svg instead of .json. */
export function chartPath(options: BenchOptions, jsonPath: string): string {
  return options.sweep?.chart ?? (jsonPath.endsWith(".json") ? jsonPath.slice(0, -".json".length) : jsonPath) + ".svg";
}

export function writeResult(path: string, result: BenchResult | SweepResult): void {
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
}

export function nodeUsages(usage: readonly ProcUsage[], leaders: ReadonlyMap<number, number>): NodeUsage[] {
  return usage.map((u) => {
    const id = nodeIdOf(u);
    return {
      id,
      pid: u.pid,
      partitionLeaders: leaders.get(id) ?? 0,
      cpuPct: round(u.cpuPct, 1),
      rssMeanMiB: round(u.rssMeanMiB, 1),
      rssMaxMiB: round(u.rssMaxMiB, 1),
      diskWriteMBps: round(u.diskWriteMBps, 1),
      threadsCpuPct: Object.fromEntries(Object.entries(u.threadsCpuPct).map(([k, v]) => [k, round(v, 1)])),
    };
  });
}

/** Partitions of `topic` that have a replica on each node, by node id. */
export function replicasByNode(topic: TopicInfo): Map<number, number> {
  const counts = new Map<number, number>();
  for (const p of topic.partitions) for (const id of p.replicas) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Partitions of `before` whose leader or leader term is different (or unknown) in `after`: the elections in between. */
export function partitionsReelected(before: TopicInfo, after: TopicInfo): number {
  const then = new Map(before.partitions.map((p) => [p.partition, p]));
  return after.partitions.filter((p) => {
    const b = then.get(p.partition);
    return b === undefined || p.leader !== b.leader || p.leaderTerm !== b.leaderTerm;
  }).length;
}

/**
 * The idle figures of each node (`usage`: the nodes' samples, labelled node-ID): its replicas,
 * its CPU per 1,000 of them (from the unrounded CPU), its event-loop delay.
 */
export function idleNodes(
  usage: readonly ProcUsage[],
  replicas: ReadonlyMap<number, number>,
  loopDelayOf: (pid: number) => LoopDelaySummary | undefined,
): IdleNode[] {
  return usage.map((u) => {
    const id = nodeIdOf(u);
    const partitionReplicas = replicas.get(id) ?? 0;
    const d = loopDelayOf(u.pid);
    return {
      id,
      partitionReplicas,
      cpuPctPer1000Replicas: partitionReplicas > 0 ? round((u.cpuPct * 1000) / partitionReplicas, 3) : NaN,
      loopDelayMs: d === undefined ? undefined : { seconds: d.seconds, meanMs: round(d.meanMs, 2), p99MaxMs: round(d.p99MaxMs, 2), maxMs: round(d.maxMs, 2) },
    };
  });
}

function nodeIdOf(u: ProcUsage): number {
  return Number(u.label.replace(/^node-/, ""));
}

/** The human-readable report. */
export function formatTable(r: BenchResult): string {
  if (r.idle !== undefined) return formatIdleTable(r, r.idle);
  const s = r.settings;
  const l = r.result.latencyMs;
  const lines = [
    `raftmq bench: scenario ${r.scenario}; ${s.nodes} nodes; topic of ${s.partitions} partitions x ${s.replication} replicas; ` +
      `${s.producers} producer(s) x ${s.inFlight} in flight${scaledNote(s)}; linger ${s.lingerMs} ms, batch <= ${s.batchRecordsMax} records; ` +
      `${s.recordBytes} B records; ${s.durationS} s measured after ${s.warmupS} s warm-up`,
    `acknowledged = ${s.acks}; machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, ${r.machine.node}`,
    "",
    table(
      ["records/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "records", "errors"],
      [[
        fmt(r.result.recordsPerS, 0), fmt(r.result.mbPerS, 1), fmt(l.p50Ms, 3), fmt(l.p90Ms, 3), fmt(l.p99Ms, 3), fmt(l.p999Ms, 3),
        fmt(l.maxMs, 1), fmt(r.result.records, 0), String(r.result.errors),
      ]],
    ),
    ...consumeLines(r),
    "",
    ...processLines(r),
  ];
  if (r.result.firstError !== undefined) lines.push("", `first error: ${r.result.firstError}`);
  return lines.join("\n");
}

/** The idle scenario's report: replicas, CPU and RSS per node first, then the per-thread table. */
function formatIdleTable(r: BenchResult, idle: IdleResult): string {
  const s = r.settings;
  const byId = new Map(idle.nodes.map((n) => [n.id, n]));
  const delay = (n: IdleNode | undefined, pick: (d: LoopDelaySummary) => number): string => fmt(n?.loopDelayMs === undefined ? NaN : pick(n.loopDelayMs), 1);
  const lines = [
    `raftmq bench: scenario idle (no load); ${s.nodes} nodes; topic ${idle.topic} of ${fmt(s.partitions, 0)} partitions x ${s.replication} replicas; ` +
      `${s.durationS} s measured after ${s.warmupS} s warm-up`,
    `after the topic was created: every partition had a leader at ${fmt(idle.leadersElectedS, 1)} s, every replica in sync at ${fmt(idle.replicasInSyncS, 1)} s; ` +
      `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, ${r.machine.node}`,
    "",
    table(
      ["node", "replicas", "leads", "CPU % of a core", "CPU % per 1,000 replicas", "RSS mean MiB", "RSS max MiB", "loop delay mean ms", "p99 ms", "max ms"],
      r.nodes.map((n) => {
        const i = byId.get(n.id);
        return [
          `node ${n.id}`, fmt(i?.partitionReplicas ?? NaN, 0), fmt(n.partitionLeaders, 0), fmt(n.cpuPct, 1), fmt(i?.cpuPctPer1000Replicas ?? NaN, 2),
          fmt(n.rssMeanMiB, 1), fmt(n.rssMaxMiB, 1), delay(i, (d) => d.meanMs), delay(i, (d) => d.p99MaxMs), delay(i, (d) => d.maxMs),
        ];
      }),
    ),
    `(replicas and leads: partitions of the topic, from the metadata at the start of the measurement; loop delay: how late a ` +
      `${idle.loopDelayResolutionMs} ms timer fired in the node, p99 of the worst second)`,
    "",
    ...idle.nodes.map((n) => `node ${n.id}: idle CPU per 1,000 replicas: ${fmt(n.cpuPctPer1000Replicas, 2)}% of a core`),
    "",
    ...processLines(r),
  ];
  if (idle.partitionsReelected > 0) {
    lines.push("", `warning: ${idle.partitionsReelected} partitions got a new leader or term during the measurement: the cluster was not idle (lengthen --warmup?)`);
  }
  return lines.join("\n");
}

/** The per-process table (CPU by thread kind, RSS, disk writes), and the warning of a disturbed run. */
function processLines(r: BenchResult): string[] {
  const lines = [
    table(
      ["process", "pid", "leads", "CPU % of a core", "main", "compaction", "flush", "other", "RSS mean MiB", "RSS max MiB", "disk write MB/s"],
      [
        ...r.nodes.map((n) => [
          `node ${n.id}`, String(n.pid), String(n.partitionLeaders), fmt(n.cpuPct, 1),
          fmt(n.threadsCpuPct["main"] ?? NaN, 1), fmt(n.threadsCpuPct["rocksdb:low"] ?? NaN, 1), fmt(n.threadsCpuPct["rocksdb:high"] ?? NaN, 1),
          fmt(n.threadsCpuPct["other"] ?? NaN, 1), fmt(n.rssMeanMiB, 1), fmt(n.rssMaxMiB, 1), fmt(n.diskWriteMBps, 1),
        ]),
        ["load generator", String(r.loadGenerator.pid), "", fmt(r.loadGenerator.cpuPct, 1), "", "", "", "", fmt(r.loadGenerator.rssMeanMiB, 1), fmt(r.loadGenerator.rssMaxMiB, 1), ""],
        ["other processes", "", "", fmt(r.machineCpu.otherPct, 1), "", "", "", "", "", "", ""],
        ["machine", "", "", fmt(r.machineCpu.totalPct, 1), "", "", "", "", "", "", ""],
      ],
    ),
    "(CPU of a node's threads: main = JavaScript, compaction = rocksdb:low, flush = rocksdb:high, other = libuv pool + V8 helpers)",
  ];
  if (r.machineCpu.otherPct > OTHER_CPU_WARN_PCT) {
    lines.push("", `warning: other processes took ${fmt(r.machineCpu.otherPct, 0)}% of a core during the measurement; the figures are disturbed`);
  }
  return lines;
}

/** The sweep's report: one row per point, then the warnings. */
export function formatSweepTable(r: SweepResult): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const axis of r.axes) {
    for (const p of axis.points) {
      const t = p.throughput;
      const l = p.latency?.result.latencyMs;
      const value = formatDimensionValue(axis.dimension, p.value);
      rows.push([
        axis.dimension, value, String(p.inFlight),
        fmt(t?.result.recordsPerS ?? NaN, 0), fmt(t?.result.mbPerS ?? NaN, 1),
        fmt(t?.result.latencyMs.p50Ms ?? NaN, 1), fmt(t?.result.latencyMs.p99Ms ?? NaN, 1), fmt(t?.result.latencyMs.p999Ms ?? NaN, 1),
        t === undefined ? "-" : t.nodes.map((n) => fmt(n.cpuPct, 0)).join("/"),
        t === undefined ? "-" : t.nodes.map((n) => fmt(n.rssMaxMiB, 0)).join("/"),
        fmt(t?.loadGenerator.cpuPct ?? NaN, 0), fmt(t?.machineCpu.otherPct ?? NaN, 0),
        ...(r.latency ? [fmt(l?.p50Ms ?? NaN, 3), fmt(l?.p99Ms ?? NaN, 3)] : []),
        String(p.errors.length),
      ]);
      for (const e of p.errors) notes.push(`${axis.dimension} = ${value}: ${e}`);
      if (t !== undefined && t.result.records === 0) {
        notes.push(`${axis.dimension} = ${value}: no record was acknowledged during the measurement (start-up still settling?); lengthen --warmup or --duration`);
      }
      for (const run of [t, p.latency]) {
        if (run !== undefined && run.machineCpu.otherPct > OTHER_CPU_WARN_PCT) {
          notes.push(`${axis.dimension} = ${value} (${run.scenario}): other processes took ${fmt(run.machineCpu.otherPct, 0)}% of a core; disturbed`);
        }
      }
    }
  }
  const f = r.fixed;
  const lines = [
    `raftmq bench sweep: ${r.axes.map((a) => a.dimension).join(", ")}; each run on a fresh ${f.nodes}-node cluster, ${f.replication} replicas; ` +
      `${f.durationS} s measured after ${f.warmupS} s warm-up${r.complete ? "" : "; INTERRUPTED: the points run so far"}`,
    `fixed (where not swept): ${fmtBytes(f.recordBytes)} records, ${f.partitions} partitions, ${f.producers} producer(s) x ${f.inFlight} in flight ` +
      `(<= ${fmtBytes(f.inFlightBytesMax)} of bodies per producer), linger ${f.lingerMs} ms, batch <= ${f.batchRecordsMax} records`,
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, ${r.machine.os}, ${r.machine.node}`,
    "",
    table(
      [
        "dimension", "value", "in flight", "records/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "node CPU %", "node RSS max MiB", "loadgen CPU %", "other CPU %",
        ...(r.latency ? ["1-in-flight p50 ms", "1-in-flight p99 ms"] : []), "errors",
      ],
      rows,
    ),
    "(latency: produce acknowledgement, send() to ack, of the throughput run; CPU in % of one core per node, by node id)",
  ];
  if (r.latency) lines.push("(1-in-flight: the latency scenario at the same point, one producer, one record in flight; not run for the producers dimension)");
  if (notes.length > 0) lines.push("", ...notes);
  return lines.join("\n");
}

/** A point's value as people read it: sizes in B/KiB, counts as numbers. */
export function formatDimensionValue(dimension: SweepDimension, value: number): string {
  return dimension === "record-bytes" ? fmtBytes(value) : String(value);
}

function scaledNote(s: BenchResult["settings"]): string {
  return s.inFlightRequested === undefined ? "" : ` (--in-flight ${s.inFlightRequested} scaled down: <= ${fmtBytes(s.inFlightBytesMax)} of bodies per producer)`;
}

/** 100 -> "100 B", 1024 -> "1 KiB", 65536 -> "64 KiB", 16777216 -> "16 MiB"; other sizes with one decimal. */
export function fmtBytes(bytes: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size) return `${Number.isInteger(bytes / size) ? bytes / size : (bytes / size).toFixed(1)} ${unit}`;
  }
  return `${bytes} B`;
}

function consumeLines(r: BenchResult): string[] {
  const c = r.consume;
  if (c === undefined) return [];
  const lines = [""];
  if (c.preload !== undefined) lines.push(`pre-load: ${fmt(c.preload.records, 0)} records in ${fmt(c.preload.seconds, 1)} s (${fmt(c.preload.recordsPerS, 0)} records/s); the table above is the consumer side`);
  lines.push(
    `consumer group: ${c.consumers} member(s), at-least-once, prefetch ${c.prefetchRecords} records / ${c.prefetchBytes} B; ` +
      `${fmt(c.records, 0)} records delivered in ${fmt(c.seconds, 2)} s: ${fmt(c.recordsPerS, 0)} records/s, ${fmt(c.mbPerS, 1)} MB/s`,
  );
  if (c.endToEndMs !== undefined) {
    const e = c.endToEndMs;
    lines.push(
      `end-to-end (send -> delivery) at ${fmt(c.rate ?? NaN, 0)} records/s: p50 ${fmt(e.p50Ms, 3)} ms, p90 ${fmt(e.p90Ms, 3)}, p99 ${fmt(e.p99Ms, 3)}, ` +
        `p99.9 ${fmt(e.p999Ms, 3)}, max ${fmt(e.maxMs, 1)} (${fmt(e.count, 0)} records${c.undelivered ? `; ${c.undelivered} sent but not delivered` : ""})`,
    );
  }
  return lines;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "-";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Number.isFinite(value) ? Math.round(value * f) / f : NaN;
}

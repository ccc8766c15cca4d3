/**
 * The result of a benchmark run: its JSON form (written to a file every time, printed with
 * --json) and its table for people. MB is 10^6 bytes of record bodies (keys, headers, ids and
 * framing not counted), as in shared/peer-bench.
 */
import { writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem, type } from "node:os";
import { join } from "node:path";
import type { LatencySummary } from "./latency-histogram.js";
import type { BenchOptions, ScenarioName } from "./options.js";
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
  return join(tmpdir(), `raftmq-bench-${options.scenario}-${stamp}-${process.pid}.json`);
}

export function writeResult(path: string, result: BenchResult): void {
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
}

export function nodeUsages(usage: readonly ProcUsage[], leaders: ReadonlyMap<number, number>): NodeUsage[] {
  return usage.map((u) => {
    const id = Number(u.label.replace(/^node-/, ""));
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

/** The human-readable report. */
export function formatTable(r: BenchResult): string {
  const s = r.settings;
  const l = r.result.latencyMs;
  const lines = [
    `raftmq bench: scenario ${r.scenario}; ${s.nodes} nodes; topic of ${s.partitions} partitions x ${s.replication} replicas; ` +
      `${s.producers} producer(s) x ${s.inFlight} in flight; linger ${s.lingerMs} ms, batch <= ${s.batchRecordsMax} records; ` +
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
  if (r.result.firstError !== undefined) lines.push("", `first error: ${r.result.firstError}`);
  return lines.join("\n");
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

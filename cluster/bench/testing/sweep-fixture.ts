/**
 * A deterministic SweepResult for the chart and report tests: fixed figures, a fixed date and
 * machine, the three dimensions, one failed point and one disturbed point. Test-only.
 */
import type { BenchResult, SweepPointResult, SweepResult } from "../report.js";

export interface Figures {
  readonly recordsPerS: number;
  readonly mbPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU other processes took, in percent of a core (above 10 marks the run disturbed). */
  readonly otherPct?: number;
}

export const FIXTURE_MACHINE: BenchResult["machine"] = { cpus: 2, cpuModel: "Test CPU <model> & co", memoryGiB: 24, os: "Linux 6.1.0", node: "v20.20.2" };

/** A BenchResult with the given figures and plausible everything else. */
export function benchResult(f: Figures, scenario: "throughput" | "latency" = "throughput", recordBytes = 1024): BenchResult {
  return {
    benchmark: "raftmq-produce",
    scenario,
    startedAt: "2026-11-28T10:00:00.000Z",
    machine: FIXTURE_MACHINE,
    settings: {
      durationS: 10, warmupS: 2, recordBytes, partitions: 6, replication: 3, nodes: 3, acks: "quorum fsync", inFlightBytesMax: 16 * 2 ** 20,
      producers: 4, inFlight: 1000, lingerMs: 0, batchRecordsMax: 1000,
    },
    result: {
      records: f.recordsPerS * 10, bodyBytes: f.mbPerS * 1e7, seconds: 10, recordsPerS: f.recordsPerS, mbPerS: f.mbPerS,
      latencyMs: { count: f.recordsPerS * 10, p50Ms: f.p50Ms, p90Ms: f.p99Ms * 0.8, p99Ms: f.p99Ms, p999Ms: f.p99Ms * 1.2, maxMs: f.p99Ms * 1.5, meanMs: f.p50Ms },
      errors: 0, firstError: undefined,
    },
    nodes: [1, 2, 3].map((id) => ({ id, pid: 1000 + id, partitionLeaders: 2, cpuPct: 50 + id, rssMeanMiB: 180, rssMaxMiB: 190 + id, diskWriteMBps: 170, threadsCpuPct: { main: 12 } })),
    loadGenerator: { pid: 999, cpuPct: 28, rssMeanMiB: 190, rssMaxMiB: 200 },
    machineCpu: { totalPct: 190, otherPct: f.otherPct ?? 3 },
    cpuProfDir: undefined,
  };
}

function point(value: number, inFlight: number, t: Figures | undefined, l: Figures | undefined, errors: string[] = []): SweepPointResult {
  return { value, inFlight, throughput: t && benchResult(t), latency: l && benchResult(l, "latency"), errors };
}

/** Three dimensions; record-bytes with latency runs; partitions 1000 failed; producers 8 disturbed. */
export function sweepFixture(): SweepResult {
  return {
    benchmark: "raftmq-sweep",
    startedAt: "2026-11-28T10:00:00.000Z",
    finishedAt: "2026-11-28T10:09:00.000Z",
    complete: true,
    machine: FIXTURE_MACHINE,
    fixed: {
      durationS: 10, warmupS: 2, recordBytes: 1024, partitions: 6, producers: 4, inFlight: 1000, inFlightBytesMax: 16 * 2 ** 20,
      lingerMs: 0, batchRecordsMax: 1000, replication: 3, nodes: 3,
    },
    latency: true,
    axes: [
      {
        dimension: "record-bytes",
        values: [100, 1024, 4096, 16384, 65536],
        points: [
          point(100, 1000, { recordsPerS: 21000, mbPerS: 2.1, p50Ms: 180, p99Ms: 450 }, { recordsPerS: 560, mbPerS: 0.06, p50Ms: 1.45, p99Ms: 6.5 }),
          point(1024, 1000, { recordsPerS: 17154, mbPerS: 17.6, p50Ms: 209.8, p99Ms: 533 }, { recordsPerS: 549, mbPerS: 0.56, p50Ms: 1.479, p99Ms: 6.855 }),
          point(4096, 1000, { recordsPerS: 9000, mbPerS: 36.9, p50Ms: 400, p99Ms: 900 }, { recordsPerS: 500, mbPerS: 2, p50Ms: 1.7, p99Ms: 7.5 }),
          point(16384, 1000, { recordsPerS: 3000, mbPerS: 49.2, p50Ms: 1200, p99Ms: 2400 }, { recordsPerS: 400, mbPerS: 6.6, p50Ms: 2.3, p99Ms: 9 }),
          point(65536, 256, { recordsPerS: 800, mbPerS: 52.4, p50Ms: 1250, p99Ms: 2600 }, { recordsPerS: 250, mbPerS: 16.4, p50Ms: 3.9, p99Ms: 14 }),
        ],
      },
      {
        dimension: "partitions",
        values: [1, 10, 100, 1000],
        points: [
          point(1, 1000, { recordsPerS: 12000, mbPerS: 12.3, p50Ms: 330, p99Ms: 700 }, { recordsPerS: 550, mbPerS: 0.56, p50Ms: 1.5, p99Ms: 6.9 }),
          point(10, 1000, { recordsPerS: 17500, mbPerS: 17.9, p50Ms: 220, p99Ms: 540 }, { recordsPerS: 540, mbPerS: 0.55, p50Ms: 1.5, p99Ms: 7 }),
          point(100, 1000, { recordsPerS: 11000, mbPerS: 11.3, p50Ms: 360, p99Ms: 900 }, { recordsPerS: 500, mbPerS: 0.51, p50Ms: 1.8, p99Ms: 8 }),
          point(1000, 1000, undefined, undefined, ["throughput: topic bench-throughput-1: only 812 of 1000 partitions had a leader within 90000 ms"]),
        ],
      },
      {
        dimension: "producers",
        values: [1, 2, 4, 8],
        points: [
          point(1, 1000, { recordsPerS: 9000, mbPerS: 9.2, p50Ms: 110, p99Ms: 250 }, undefined),
          point(2, 1000, { recordsPerS: 14000, mbPerS: 14.3, p50Ms: 140, p99Ms: 380 }, undefined),
          point(4, 1000, { recordsPerS: 17154, mbPerS: 17.6, p50Ms: 209.8, p99Ms: 533 }, undefined),
          point(8, 1000, { recordsPerS: 17800, mbPerS: 18.2, p50Ms: 440, p99Ms: 1100, otherPct: 35 }, undefined),
        ],
      },
    ],
  };
}

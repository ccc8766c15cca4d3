/**
 * The benchmark's pure parts: argument parsing, /proc reading, the latency histogram, the profile
 * summary, and the sweep's loop with a stand-in runner. (The benchmark itself needs a cluster and
 * minutes; `npm run bench` runs it.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TopicInfo } from "../../src/client/index.js";
import { PARTITIONS_MAX } from "../../src/controller/frontend.js";
import { LatencyHistogram } from "./latency-histogram.js";
import { LOOP_DELAY_RESOLUTION_MS, loopDelayFile, readLoopDelay, summarizeLoopDelay, type LoopDelayLine } from "./loop-delay.js";
import { BenchUsageError, DIMENSION_BOUNDS, inFlightOf, parseBenchArgs, SWEEP_DEFAULT_VALUES, type BenchOptions } from "./options.js";
import { PayloadPool } from "./payloads.js";
import { readMachineBusyS, readProc, type ProcUsage } from "./proc-stats.js";
import { moduleOf, summarize } from "./profile-summary.js";
import { chartPath, formatSweepTable, formatTable, idleNodes, partitionsReelected, replicasByNode, type BenchResult } from "./report.js";
import { runSweep, type BenchRunner } from "./sweep.js";
import { benchResult, sweepFixture } from "./testing/sweep-fixture.js";

test("parseBenchArgs: defaults", () => {
  const o = parseBenchArgs([]) as BenchOptions;
  assert.equal(o.scenario, "throughput");
  assert.equal(o.durationS, 10);
  assert.equal(o.recordBytes, 1024);
  assert.equal(o.partitions, 6);
  assert.equal(o.replication, 3);
  assert.equal(o.producers, 4);
  assert.equal(o.inFlight, 1000);
  assert.equal(o.json, false);
  assert.equal(o.logLevel, "warn");
});

test("parseBenchArgs: options and errors naming the option", () => {
  const o = parseBenchArgs(["--scenario", "latency", "--duration", "3", "--json", "--out", "/tmp/x.json"]) as BenchOptions;
  assert.equal(o.scenario, "latency");
  assert.equal(o.durationS, 3);
  assert.equal(o.json, true);
  assert.equal(o.out, "/tmp/x.json");
  assert.equal(parseBenchArgs(["-h"]), "help");
  assert.throws(() => parseBenchArgs(["--scenario", "nope"]), (e: Error) => e instanceof BenchUsageError && /--scenario/.test(e.message));
  assert.throws(() => parseBenchArgs(["--producers", "0"]), /--producers/);
  assert.throws(() => parseBenchArgs(["--partitions", "1.5"]), /--partitions/);
  assert.throws(() => parseBenchArgs(["--replication", "4"]), /--replication/);
  assert.throws(() => parseBenchArgs(["--bogus"]), /bogus/);
});

test("readProc reads this process; a missing pid gives undefined", () => {
  const s = readProc(process.pid)!;
  assert.ok(s.cpuS > 0 && s.rssBytes > 1024 * 1024, JSON.stringify(s));
  assert.equal(readProc(2 ** 22 + 12345), undefined);
  assert.ok(readMachineBusyS() > 0);
});

test("LatencyHistogram: percentiles within HdrHistogram's precision", () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.recordMs(i / 10); // 0.1 ms .. 100 ms
  const s = h.summary();
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50Ms - 50) < 0.1, `p50 ${s.p50Ms}`);
  assert.ok(Math.abs(s.p99Ms - 99) < 0.1, `p99 ${s.p99Ms}`);
  assert.ok(Math.abs(s.maxMs - 100) < 0.1, `max ${s.maxMs}`);
  assert.ok(Number.isNaN(new LatencyHistogram().summary().p50Ms));
});

test("PayloadPool: distinct random bodies of the asked size", () => {
  const pool = new PayloadPool(1024);
  const a = pool.take();
  const b = pool.take();
  assert.equal(a.length, 1024);
  assert.notDeepEqual(a, b);
});

test("profile summary: self and total time per function and module", () => {
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), children: [2, 4] },
      { id: 2, callFrame: frame("produce", "file:///w/dist/src/broker/broker.js"), children: [3] },
      { id: 3, callFrame: frame("batch", "file:///w/node_modules/rocksdb/leveldown.js") },
      { id: 4, callFrame: frame("(idle)", "") },
    ],
    startTime: 0,
    endTime: 4000,
    samples: [2, 3, 3, 4],
    timeDeltas: [1000, 1000, 1000, 1000],
  };
  const s = summarize(profile, 10);
  assert.equal(s.busyMs, 3);
  assert.deepEqual(s.modules, [{ name: "rocksdb", selfMs: 2 }, { name: "src/broker", selfMs: 1 }]);
  assert.equal(s.total.find((t) => t.name.startsWith("produce"))?.ms, 3);
  assert.equal(moduleOf(frame("x", "node:internal/streams/readable")), "node:internal");
  assert.equal(moduleOf(frame("x", "file:///w/node_modules/@grpc/grpc-js/build/src/server.js")), "@grpc/grpc-js");
});

test("consume/e2e: options and the send-time header", async () => {
  const o = parseBenchArgs(["--scenario", "e2e", "--rate", "500", "--consumers", "2"]) as BenchOptions;
  assert.equal(o.scenario, "e2e");
  assert.equal(o.rate, 500);
  assert.equal(o.consumers, 2);
  const d = parseBenchArgs(["--scenario", "consume"]) as BenchOptions;
  assert.equal(d.records, 200_000);
  assert.equal(d.consumers, 1);
  assert.throws(() => parseBenchArgs(["--records", "0"]), BenchUsageError);
  const { encodeSentMs, sentMsOf, SENT_HEADER } = await import("./consume-load.js");
  assert.equal(sentMsOf({ headers: [{ key: SENT_HEADER, value: encodeSentMs(1234.5678) }] }), 1234.5678);
  assert.equal(sentMsOf({ headers: [] }), undefined);
});

test("parseBenchArgs: --sweep, --values, --sweep-latency, --chart", () => {
  const d = parseBenchArgs([]) as BenchOptions;
  assert.equal(d.sweep, undefined);
  assert.equal(d.inFlightBytesMax, 16 * 2 ** 20);
  const one = parseBenchArgs(["--sweep", "record-bytes"]) as BenchOptions;
  assert.deepEqual(one.sweep, { axes: [{ dimension: "record-bytes", values: SWEEP_DEFAULT_VALUES["record-bytes"] }], latency: false, chart: undefined });
  const all = parseBenchArgs(["--sweep", "all", "--sweep-latency", "--partitions", "12", "--chart", "/tmp/c.svg"]) as BenchOptions;
  assert.deepEqual(all.sweep?.axes.map((a) => [a.dimension, a.values]), [
    ["record-bytes", [100, 1024, 4096, 16384, 65536]],
    ["partitions", [1, 10, 100, 1000]],
    ["producers", [1, 2, 4, 8]],
  ]);
  assert.equal(all.sweep?.latency, true);
  assert.equal(all.sweep?.chart, "/tmp/c.svg");
  assert.equal(all.partitions, 12, "--partitions fixes the partitions of the other dimensions");
  const values = parseBenchArgs(["--sweep", "producers", "--values", "8, 1,2,2", "--duration", "1", "--warmup", "0"]) as BenchOptions;
  assert.deepEqual(values.sweep?.axes, [{ dimension: "producers", values: [1, 2, 8] }], "sorted, duplicates dropped");
  assert.equal(values.durationS, 1);
});

test("parseBenchArgs: sweep errors name the option", () => {
  const usage = (argv: string[], pattern: RegExp): void => {
    assert.throws(() => parseBenchArgs(argv), (e: Error) => e instanceof BenchUsageError && pattern.test(e.message), argv.join(" "));
  };
  usage(["--sweep", "nodes"], /--sweep must be one of record-bytes, partitions, producers or all/);
  usage(["--sweep", "all", "--values", "1,2"], /--values needs a single --sweep dimension/);
  usage(["--values", "1,2"], /--values needs --sweep/);
  usage(["--sweep-latency"], /--sweep-latency needs --sweep/);
  usage(["--chart", "x.svg"], /--chart needs --sweep/);
  usage(["--sweep", "partitions", "--scenario", "latency"], /--scenario does not apply to --sweep/);
  usage(["--sweep", "partitions", "--partitions", "3"], /--partitions is the swept dimension/);
  usage(["--sweep", "partitions", "--values", "1,20000"], /--values \(of --sweep partitions\) must be a number from 1 to 10000, got "20000"/);
  usage(["--sweep", "producers", "--values", "1,,2"], /--values must be numbers separated by commas/);
  usage(["--sweep", "record-bytes", "--values", "1.5"], /--values \(of --sweep record-bytes\) must be a whole number/);
  usage(["--sweep", "producers", "--values", Array.from({ length: 21 }, (_, i) => i + 1).join(",")], /at most 20 points/);
  usage(["--in-flight-bytes", "10"], /--in-flight-bytes/);
});

test("inFlightOf: --in-flight scaled down to stay within --in-flight-bytes", () => {
  const mib16 = 16 * 2 ** 20;
  assert.equal(inFlightOf({ inFlight: 1000, inFlightBytesMax: mib16, recordBytes: 1024 }), 1000);
  assert.equal(inFlightOf({ inFlight: 1000, inFlightBytesMax: mib16, recordBytes: 16384 }), 1000);
  assert.equal(inFlightOf({ inFlight: 1000, inFlightBytesMax: mib16, recordBytes: 65536 }), 256);
  assert.equal(inFlightOf({ inFlight: 1000, inFlightBytesMax: 1024, recordBytes: 65536 }), 1, "at least one");
});

test("runSweep: a fresh run per point, the dimension set, failures recorded, latency not over producers", async () => {
  const base = parseBenchArgs(["--sweep", "all", "--sweep-latency", "--json", "--out", "/tmp/x.json"]) as BenchOptions;
  const runs: BenchOptions[] = [];
  const fake: BenchRunner = async (o) => {
    runs.push(o);
    if (o.partitions === 1000 && o.scenario === "throughput") throw new Error("no leaders");
    return benchResult({ recordsPerS: 1000, mbPerS: 1, p50Ms: 1, p99Ms: 2 }, o.scenario as "throughput" | "latency", o.recordBytes);
  };
  const lines: string[] = [];
  const r = await runSweep(base, { stop: new AbortController().signal, log: (l) => lines.push(l) }, fake);
  assert.equal(runs.length, 5 * 2 + 4 * 2 + 4);
  assert.ok(runs.every((o) => o.sweep === undefined && o.out === undefined && !o.json));
  assert.deepEqual(runs.filter((o) => o.scenario === "throughput").slice(0, 5).map((o) => o.recordBytes), [100, 1024, 4096, 16384, 65536]);
  assert.ok(runs.filter((o) => o.producers !== 4).every((o) => o.scenario === "throughput"), "no latency runs over producers");
  assert.deepEqual(r.axes.map((a) => a.points.length), [5, 4, 4]);
  assert.equal(r.axes[0]!.points[4]!.inFlight, 256);
  const failed = r.axes[1]!.points[3]!;
  assert.equal(failed.throughput, undefined);
  assert.deepEqual(failed.errors, ["throughput: no leaders"]);
  assert.ok(failed.latency !== undefined, "the latency run still ran");
  assert.equal(r.complete, true);
  assert.ok(lines[0]!.startsWith("run 1 of 22: record-bytes = 100 B, throughput"), lines[0]);
  const table = formatSweepTable(r);
  assert.equal(table.split("\n").filter((l) => /^(record-bytes|partitions|producers) +[^=]/.test(l)).length, 13);
  assert.match(table, /partitions = 1000: throughput: no leaders/);
});

test("runSweep: an interruption ends the sweep with the points run so far", async () => {
  const base = parseBenchArgs(["--sweep", "producers"]) as BenchOptions;
  const stop = new AbortController();
  let n = 0;
  const fake: BenchRunner = async (o) => {
    if (++n === 3) {
      stop.abort(new Error("interrupted by SIGINT"));
      throw new Error("interrupted by SIGINT");
    }
    return benchResult({ recordsPerS: 1000, mbPerS: 1, p50Ms: 1, p99Ms: 2 }, "throughput", o.recordBytes);
  };
  const r = await runSweep(base, { stop: stop.signal, log: () => undefined }, fake);
  assert.equal(n, 3);
  assert.equal(r.complete, false);
  assert.deepEqual(r.axes[0]!.points.map((p) => p.value), [1, 2]);
});

test("formatSweepTable and chartPath", () => {
  const table = formatSweepTable(sweepFixture());
  assert.match(table, /^record-bytes\s+64 KiB\s+256\s+800\s+52\.4/m);
  assert.match(table, /producers = 8 \(throughput\): other processes took 35% of a core; disturbed/);
  const o = parseBenchArgs(["--sweep", "producers"]) as BenchOptions;
  assert.equal(chartPath(o, "/tmp/a.json"), "/tmp/a.svg");
  assert.equal(chartPath(o, "/tmp/a"), "/tmp/a.svg");
  assert.equal(chartPath(parseBenchArgs(["--sweep", "producers", "--chart", "/tmp/c.svg"]) as BenchOptions, "/tmp/a.json"), "/tmp/c.svg");
});

test("parseBenchArgs: --scenario idle: its own warm-up and duration, no load options", () => {
  const d = parseBenchArgs(["--scenario", "idle", "--partitions", "10000"]) as BenchOptions;
  assert.equal(d.scenario, "idle");
  assert.equal(d.warmupS, 10);
  assert.equal(d.durationS, 20);
  assert.equal(d.partitions, 10_000);
  assert.equal(d.replication, 3);
  const given = parseBenchArgs(["--scenario", "idle", "--partitions", "50", "--warmup", "2", "--duration", "3"]) as BenchOptions;
  assert.deepEqual([given.warmupS, given.durationS, given.partitions], [2, 3, 50]);
  const other = parseBenchArgs(["--scenario", "latency"]) as BenchOptions;
  assert.deepEqual([other.warmupS, other.durationS], [2, 10], "the other scenarios keep 2 s and 10 s");
  for (const option of ["--producers", "--record-bytes", "--in-flight", "--rate", "--records", "--consumers", "--linger-ms"]) {
    assert.throws(
      () => parseBenchArgs(["--scenario", "idle", option, "2"]),
      (e: Error) => e instanceof BenchUsageError && e.message === `${option} does not apply to --scenario idle (it puts no load on the cluster)`,
      option,
    );
  }
  assert.throws(() => parseBenchArgs(["--scenario", "idle", "--partitions", "10001"]), /--partitions must be a number from 1 to 10000, got "10001"/);
  assert.throws(() => parseBenchArgs(["--scenario", "idle", "--sweep", "partitions"]), /--scenario does not apply to --sweep/);
});

test("the benchmark's partitions bound is the controller's limit per topic", () => {
  assert.equal(DIMENSION_BOUNDS.partitions.max, PARTITIONS_MAX);
});

function topicOf(partitions: Array<[replicas: number[], leader: number, term: number]>): TopicInfo {
  return {
    name: "t", id: 1, replicationFactor: 3, maxRecordBytes: 1024,
    partitions: partitions.map(([replicas, leader, leaderTerm], partition) => ({ partition, replicas, leader, inSync: replicas, leaderTerm, logStartOffset: 0, highWatermark: 0 })),
  };
}

test("idle: replicas per node, partitions re-elected, CPU per 1,000 replicas", () => {
  const before = topicOf([[[1, 2, 3], 1, 2], [[2, 3, 1], 2, 2], [[3, 1], 3, 2], [[1, 2], 1, 2]]);
  assert.deepEqual([...replicasByNode(before)].sort(), [[1, 4], [2, 3], [3, 3]]);
  assert.equal(partitionsReelected(before, before), 0);
  const after = topicOf([[[1, 2, 3], 1, 2], [[2, 3, 1], 3, 3], [[3, 1], 3, 3], [[1, 2], 0, 2]]);
  assert.equal(partitionsReelected(before, after), 3, "a new leader, a new term, an unknown leader");
  const usage = (id: number, cpuPct: number): ProcUsage => ({ label: `node-${id}`, pid: 100 + id, cpuPct, rssMeanMiB: 1, rssMaxMiB: 1, diskWriteMBps: 0, threadsCpuPct: {}, samples: 3 });
  const delay = { seconds: 3, meanMs: 0.123, p99MaxMs: 4.5678, maxMs: 12 };
  const nodes = idleNodes([usage(1, 12.34), usage(2, 5), usage(4, 1)], new Map([[1, 10_000], [2, 500]]), (pid) => (pid === 101 ? delay : undefined));
  assert.deepEqual(nodes, [
    { id: 1, partitionReplicas: 10_000, cpuPctPer1000Replicas: 1.234, loopDelayMs: { seconds: 3, meanMs: 0.12, p99MaxMs: 4.57, maxMs: 12 } },
    { id: 2, partitionReplicas: 500, cpuPctPer1000Replicas: 10, loopDelayMs: undefined },
    { id: 4, partitionReplicas: 0, cpuPctPer1000Replicas: NaN, loopDelayMs: undefined },
  ]);
});

test("idle: loop delay from the probe's lines, beyond the timer interval, within the window", () => {
  const r = LOOP_DELAY_RESOLUTION_MS;
  const line = (atMs: number, count: number, meanMs: number, p99Ms: number, maxMs: number): LoopDelayLine => ({ atMs, count, meanMs, p50Ms: meanMs, p99Ms, maxMs });
  const lines = [line(1000, 50, r + 9, r + 90, r + 99), line(2000, 50, r + 1, r + 2, r + 3), line(3000, 25, r + 4, r + 8, r + 30), line(4000, 0, NaN, 0, 0), line(5000, 50, r + 50, r + 50, r + 50)];
  const s = summarizeLoopDelay(lines, 1000, 4000)!;
  assert.equal(s.seconds, 2, "the lines of (1000, 4000], an empty second left out");
  assert.ok(Math.abs(s.meanMs - 2) < 1e-9, `count-weighted mean ${s.meanMs}`);
  assert.equal(s.p99MaxMs, 8);
  assert.equal(s.maxMs, 30);
  assert.equal(summarizeLoopDelay([line(1000, 50, r - 1, r - 0.5, r - 0.1)], 0, 1000)?.maxMs, 0, "a timer that fired early is no delay");
  assert.equal(summarizeLoopDelay(lines, 5000, 6000), undefined);
  const dir = mkdtempSync(join(tmpdir(), "raftmq-loop-delay-test-"));
  try {
    writeFileSync(loopDelayFile(dir, 42), lines.map((l) => JSON.stringify(l)).join("\n") + "\n{\"atMs\": 60");
    assert.deepEqual(readLoopDelay(dir, 42, 1000, 4000), s, "a line cut short is skipped");
    assert.equal(readLoopDelay(dir, 43, 0, 10_000), undefined, "no file");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("formatTable: the idle report shows replicas, CPU and RSS per node and CPU per 1,000 replicas", () => {
  const base = benchResult({ recordsPerS: 0, mbPerS: 0, p50Ms: NaN, p99Ms: NaN, otherPct: 25 });
  const r: BenchResult = {
    ...base,
    scenario: "idle",
    settings: { ...base.settings, partitions: 10_000, warmupS: 10, durationS: 20, producers: 0, inFlight: 0, batchRecordsMax: 0 },
    idle: {
      topic: "bench-idle-1",
      leadersElectedS: 95.3,
      replicasInSyncS: 101.25,
      partitionsReelected: 2,
      loopDelayResolutionMs: LOOP_DELAY_RESOLUTION_MS,
      nodes: [1, 2, 3].map((id) => ({ id, partitionReplicas: 10_000, cpuPctPer1000Replicas: (50 + id) / 10, loopDelayMs: id === 3 ? undefined : { seconds: 20, meanMs: 0.5, p99MaxMs: 7.25, maxMs: 31 } })),
    },
  };
  const table = formatTable(r);
  assert.match(table, /^raftmq bench: scenario idle \(no load\); 3 nodes; topic bench-idle-1 of 10,000 partitions x 3 replicas; 20 s measured after 10 s warm-up$/m);
  assert.match(table, /after the topic was created: every partition had a leader at 95\.3 s, every replica in sync at 101\.3 s;/);
  assert.match(table, /^node 1\s+10,000\s+2\s+51\.0\s+5\.10\s+180\.0\s+191\.0\s+0\.5\s+7\.3\s+31\.0$/m);
  assert.match(table, /^node 3\s+10,000\s+2\s+53\.0\s+5\.30\s+180\.0\s+193\.0\s+-\s+-\s+-$/m);
  assert.match(table, /^node 2: idle CPU per 1,000 replicas: 5\.20% of a core$/m);
  assert.match(table, /^other processes\s+25\.0$/m);
  assert.match(table, /warning: other processes took 25% of a core/);
  assert.match(table, /warning: 2 partitions got a new leader or term during the measurement/);
  assert.doesNotMatch(table, /records\/s/);
});

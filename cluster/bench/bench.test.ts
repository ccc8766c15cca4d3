/**
 * The benchmark's pure parts: argument parsing, /proc reading, the latency histogram, the profile
 * summary, and the sweep's loop with a stand-in runner. (The benchmark itself needs a cluster and
 * minutes; `npm run bench` runs it.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LatencyHistogram } from "./latency-histogram.js";
import { BenchUsageError, inFlightOf, parseBenchArgs, SWEEP_DEFAULT_VALUES, type BenchOptions } from "./options.js";
import { PayloadPool } from "./payloads.js";
import { readMachineBusyS, readProc } from "./proc-stats.js";
import { moduleOf, summarize } from "./profile-summary.js";
import { chartPath, formatSweepTable } from "./report.js";
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

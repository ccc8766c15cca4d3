/**
 * The benchmark's pure parts: argument parsing, /proc reading, the latency histogram and the
 * profile summary. (The benchmark itself needs a cluster and minutes; `npm run bench` runs it.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LatencyHistogram } from "./latency-histogram.js";
import { BenchUsageError, parseBenchArgs, type BenchOptions } from "./options.js";
import { PayloadPool } from "./payloads.js";
import { readMachineBusyS, readProc } from "./proc-stats.js";
import { moduleOf, summarize } from "./profile-summary.js";

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

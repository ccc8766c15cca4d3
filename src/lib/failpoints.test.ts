import { test } from "node:test";
import assert from "node:assert/strict";
import { FAILPOINTS, FailpointCrash, NO_FAILPOINTS, parseFailpoints, type CrashFailpoint } from "./failpoints.js";

/** A crash callback that records its calls instead of crashing. */
function recorder(): { crashes: CrashFailpoint[]; crash: (name: CrashFailpoint) => void } {
  const crashes: CrashFailpoint[] = [];
  return { crashes, crash: (name) => void crashes.push(name) };
}

test("parsing: switches, crash and crash:N, whitespace and empty entries", () => {
  const fp = parseFailpoints(" broker/dedup-off=on , raft-store/before-write=crash:40,raft-store/after-write=crash,");
  assert.deepEqual(fp.active, [
    { name: "broker/dedup-off", action: "on" },
    { name: "raft-store/before-write", action: "crash", atHit: 40 },
    { name: "raft-store/after-write", action: "crash", atHit: 1 },
  ]);
  assert.equal(fp.enabled("broker/dedup-off"), true);
  assert.equal(fp.enabled("broker/ack-before-quorum"), false);
  assert.equal(parseFailpoints(""), NO_FAILPOINTS, "an empty spec enables nothing");
  assert.equal(parseFailpoints(" , "), NO_FAILPOINTS);
});

test("parsing: an unknown name, a bad action, crash:0 and duplicates throw, naming the entry and listing the known failpoints", () => {
  const cases: [string, RegExp][] = [
    ["raft-store/befor-write=crash", /"raft-store\/befor-write=crash": unknown failpoint "raft-store\/befor-write"/],
    ["raft-store/before-write=crash:0", /"raft-store\/before-write=crash:0": .*N >= 1/],
    ["raft-store/before-write=crash:-1", /crash:N/],
    ["raft-store/before-write=crash:2x", /crash:N/],
    ["raft-store/before-write=crash:", /crash:N/],
    ["raft-store/before-write=boom", /got "boom"/],
    ["raft-store/before-write=on", /is a crash point/],
    ["broker/dedup-off=crash", /"broker\/dedup-off=crash": broker\/dedup-off is a switch/],
    ["broker/dedup-off=off", /is a switch/],
    ["broker/dedup-off", /"broker\/dedup-off": expected name=action/],
    ["broker/dedup-off=on,broker/dedup-off=on", /given twice/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(() => parseFailpoints(spec), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, message, spec);
      for (const name of Object.keys(FAILPOINTS)) assert.ok(e.message.includes(name), `${spec}: the error lists ${name}`);
      return true;
    });
  }
});

test("a crash point fires at exactly the Nth hit, once, and counts each point on its own", () => {
  const r = recorder();
  const fp = parseFailpoints("raft-store/before-write=crash:3,raft-store/after-write=crash", r.crash);
  fp.hit("raft-store/before-write");
  fp.hit("raft-store/before-write");
  fp.hit("raft-store/snapshot-write"); // not enabled: never fires
  assert.deepEqual(r.crashes, []);
  fp.hit("raft-store/before-write");
  assert.deepEqual(r.crashes, ["raft-store/before-write"], "the third hit crashes");
  for (let k = 0; k < 10; k++) fp.hit("raft-store/before-write");
  assert.deepEqual(r.crashes, ["raft-store/before-write"], "only once");
  fp.hit("raft-store/after-write");
  fp.hit("raft-store/after-write");
  assert.deepEqual(r.crashes, ["raft-store/before-write", "raft-store/after-write"]);
});

test("without a crash callback a crash point throws FailpointCrash", () => {
  const fp = parseFailpoints("raft-store/snapshot-write=crash:2");
  fp.hit("raft-store/snapshot-write");
  assert.throws(() => fp.hit("raft-store/snapshot-write"), (e: unknown) => e instanceof FailpointCrash && e.failpoint === "raft-store/snapshot-write" && /crashing/.test(e.message));
});

test("switches: only the named ones are on, and crash points are never switches", () => {
  const fp = parseFailpoints("storage/lose-unsynced=on,broker/ack-before-quorum=on");
  assert.equal(fp.enabled("storage/lose-unsynced"), true);
  assert.equal(fp.enabled("broker/ack-before-quorum"), true);
  assert.equal(fp.enabled("broker/dedup-off"), false);
  fp.hit("raft-store/before-write"); // no crash point enabled: nothing happens
});

test("the inert default: every switch off, hits do nothing", () => {
  for (const [name, p] of Object.entries(FAILPOINTS)) {
    if (p.kind === "switch") assert.equal(NO_FAILPOINTS.enabled(name as never), false, name);
    else for (let k = 0; k < 3; k++) NO_FAILPOINTS.hit(name as never);
  }
  assert.deepEqual(NO_FAILPOINTS.active, []);
});

test("every known failpoint has a one-line description", () => {
  for (const [name, p] of Object.entries(FAILPOINTS)) {
    assert.match(name, /^[a-z-]+\/[a-z-]+$/);
    assert.ok(p.description.length > 20 && !p.description.includes("\n"), name);
  }
});

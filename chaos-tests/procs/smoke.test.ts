/**
 * The chaos smoke test in `npm test`: one short run on a real 3-node cluster whose schedule uses
 * every fault kind once (faults.ts), under a light load, checked by the history checker. The
 * nodes run with power-loss emulation, so each kill -9 also drops the writes never fsynced. The
 * seed is printed; CHAOS_SEED=<seed> replays another. Longer searches: `npm run chaos`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { formatCheckResult } from "./checker.js";
import { everyKindSchedule, FAULT_KINDS, faultWindowMs } from "./faults.js";
import { runChaos } from "./run.js";

const SEED = Number(process.env["CHAOS_SEED"] ?? 20_261_128);

test("chaos smoke: every fault kind once on a 3-node cluster; no acknowledged record lost, duplicated or reordered", { timeout: 300_000 }, async () => {
  console.log(`chaos smoke seed: ${SEED} (CHAOS_SEED=<seed> replays another)`);
  const schedule = everyKindSchedule(SEED);
  const durationMs = schedule.reduce((a, c) => a + faultWindowMs(c.scheduled.fault) + c.scheduled.gapMs, 0) + 2_000;
  const dir = mkdtempSync(join(tmpdir(), "raftmq-chaos-smoke-"));
  let keep = true;
  try {
    const report = await runChaos({ seed: SEED, schedule, durationMs, dir, rate: 300, powerLoss: true, log: (l) => console.log(`[chaos smoke] ${l}`) });
    console.log(formatCheckResult(report.check));
    for (const kind of FAULT_KINDS) assert.ok((report.faults[kind] ?? 0) >= 1, `fault kind ${kind} was injected`);
    assert.ok(report.check.acknowledged > 1_000, `records were acknowledged under the faults (${report.check.acknowledged})`);
    assert.equal(report.corruptionUndetected, 0, "a node refused its corrupted store");
    assert.deepEqual(report.unexpectedExits, [], "no node exited on its own");
    assert.ok(report.failpointsFired >= 1, `a storage failpoint crashed its node (${report.failpointsFired} of ${report.failpointsArmed})`);
    assert.deepEqual(report.check.violations, [], `no violation; history in ${report.historyFile}`);
    assert.ok(report.valid);
    keep = false;
  } finally {
    if (keep) console.log(`[chaos smoke] kept ${dir} (node logs, history.jsonl) for diagnosis`);
    else rmSync(dir, { recursive: true, force: true });
  }
});

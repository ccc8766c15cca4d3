/**
 * Loaded into a node process by the `idle` benchmark (`node --import .../loop-delay-probe.js`):
 * when LOOP_DELAY_DIR_ENV names a folder, measures the event-loop delay with Node's
 * monitorEventLoopDelay and appends one line a second to `DIR/loop-delay-PID.jsonl` (see
 * loop-delay.ts). Without the variable it does nothing. Its timer is unref'd, so it never keeps
 * the node alive; writing errors are ignored (the benchmark then reports no delay).
 */
import { appendFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { LOOP_DELAY_DIR_ENV, LOOP_DELAY_REPORT_INTERVAL_MS, LOOP_DELAY_RESOLUTION_MS, loopDelayFile, type LoopDelayLine } from "./loop-delay.js";

const dir = process.env[LOOP_DELAY_DIR_ENV];
if (dir !== undefined && dir !== "") {
  const file = loopDelayFile(dir, process.pid);
  const histogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  histogram.enable();
  const NS_PER_MS = 1e6;
  setInterval(() => {
    const line: LoopDelayLine = {
      atMs: Date.now(),
      count: histogram.count,
      meanMs: histogram.mean / NS_PER_MS,
      p50Ms: histogram.percentile(50) / NS_PER_MS,
      p99Ms: histogram.percentile(99) / NS_PER_MS,
      maxMs: histogram.max / NS_PER_MS,
    };
    histogram.reset();
    try {
      appendFileSync(file, JSON.stringify(line) + "\n");
    } catch {
      // the data folder is being removed at the end of the run
    }
  }, LOOP_DELAY_REPORT_INTERVAL_MS).unref();
}

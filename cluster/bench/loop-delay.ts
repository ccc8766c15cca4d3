/**
 * Event-loop delay of the node processes, for the `idle` scenario. A node started with
 * `--import loop-delay-probe.js` and the environment variable LOOP_DELAY_DIR_ENV runs Node's
 * `monitorEventLoopDelay` (a timer every LOOP_DELAY_RESOLUTION_MS) and, once a second, appends
 * one line to `DIR/loop-delay-PID.jsonl` summarizing that second, then resets its histogram.
 * The benchmark reads the lines written during its measurement (readLoopDelay).
 *
 * What a value means: the histogram records the time between two firings of the probe's timer,
 * so a quiet loop reads the resolution itself (20 ms); the delay reported here is that minus the
 * resolution: how late the timer fired because the loop was busy (a tick of 10,000 groups, a GC
 * pause). The probe costs about 0.1-0.2% of a core (50 timer firings and one small file append a
 * second), counted in the node's CPU.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The environment variable that turns the probe on: the folder its files go to. */
export const LOOP_DELAY_DIR_ENV = "RAFTMQ_BENCH_LOOP_DELAY_DIR";
/** monitorEventLoopDelay's timer interval, in ms. */
export const LOOP_DELAY_RESOLUTION_MS = 20;
/** How often the probe writes a line (and resets its histogram), in ms. */
export const LOOP_DELAY_REPORT_INTERVAL_MS = 1_000;

/** One line of a probe file: the second before `atMs`. Times in ms, as the histogram read them (resolution included). */
export interface LoopDelayLine {
  /** Date.now() when the line was written. */
  readonly atMs: number;
  /** Timer firings recorded. */
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** The event-loop delay of one node over a measurement, in ms beyond the probe's timer interval. */
export interface LoopDelaySummary {
  /** Per-second lines the summary is made of. */
  readonly seconds: number;
  /** Mean delay over every firing. */
  readonly meanMs: number;
  /** The largest per-second p99 (the worst second's p99). */
  readonly p99MaxMs: number;
  /** The largest delay seen. */
  readonly maxMs: number;
}

/** The file the probe of process `pid` writes into `dir`. */
export function loopDelayFile(dir: string, pid: number): string {
  return join(dir, `loop-delay-${pid}.jsonl`);
}

/**
 * The delay over the lines written in (fromMs, toMs] (Date.now() times); undefined if there is
 * none. Each line covers the second before it was written, so the first may start up to a
 * second before fromMs.
 */
export function summarizeLoopDelay(lines: readonly LoopDelayLine[], fromMs: number, toMs: number): LoopDelaySummary | undefined {
  const inWindow = lines.filter((l) => l.atMs > fromMs && l.atMs <= toMs && l.count > 0);
  if (inWindow.length === 0) return undefined;
  const count = inWindow.reduce((n, l) => n + l.count, 0);
  const beyond = (ms: number): number => Math.max(0, ms - LOOP_DELAY_RESOLUTION_MS);
  return {
    seconds: inWindow.length,
    meanMs: beyond(inWindow.reduce((sum, l) => sum + l.meanMs * l.count, 0) / count),
    p99MaxMs: beyond(Math.max(...inWindow.map((l) => l.p99Ms))),
    maxMs: beyond(Math.max(...inWindow.map((l) => l.maxMs))),
  };
}

/** Reads process `pid`'s probe file in `dir` and summarizes (fromMs, toMs]; undefined if it has no line there. */
export function readLoopDelay(dir: string, pid: number, fromMs: number, toMs: number): LoopDelaySummary | undefined {
  let text: string;
  try {
    text = readFileSync(loopDelayFile(dir, pid), "utf8");
  } catch {
    return undefined;
  }
  const lines: LoopDelayLine[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      lines.push(JSON.parse(line) as LoopDelayLine);
    } catch {
      // a line cut short by the node's exit
    }
  }
  return summarizeLoopDelay(lines, fromMs, toMs);
}

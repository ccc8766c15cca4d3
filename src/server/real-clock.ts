/** The real clock: performance.now() for durations, Date.now() for timestamps, Node timers. */
import { performance } from "node:perf_hooks";
import type { Clock, TimerHandle } from "../lib/clock.js";

export class RealClock implements Clock {
  monotonicMs(): number {
    return performance.now();
  }

  wallMs(): number {
    return Date.now();
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (delayMs <= 0) {
      const handle = setImmediate(fn);
      return { cancel: () => clearImmediate(handle) };
    }
    const handle = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(handle) };
  }
}

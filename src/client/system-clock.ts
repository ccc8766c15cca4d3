/**
 * The real clock, the client's default when the application passes none: performance.now() for
 * durations, Date.now() for record timestamps, Node timers. Timers are unref'd so that a client
 * waiting out a backoff never keeps the process alive on its own.
 */
import { performance } from "node:perf_hooks";
import type { Clock, TimerHandle } from "../lib/clock.js";

export const systemClock: Clock = {
  monotonicMs(): number {
    return performance.now();
  },
  wallMs(): number {
    return Date.now();
  },
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  },
};

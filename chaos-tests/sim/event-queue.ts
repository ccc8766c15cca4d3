/**
 * The virtual clock and its agenda: a binary min-heap of timers ordered by (time, insertion
 * sequence), so that two events at the same virtual millisecond always run in the order they
 * were scheduled. Cancelling marks a timer; the heap skips it when it reaches the top.
 */
import { assert } from "../../src/lib/assert.js";

/** A scheduled action. `cancelled` timers are skipped. */
export interface Timer {
  readonly time: number;
  readonly seq: number;
  cancelled: boolean;
  readonly action: () => void;
}

/** The virtual clock of one run and everything scheduled on it. */
export class EventQueue {
  private heap: Timer[] = [];
  private seq = 0;
  private nowMs = 0;

  /** The current virtual time in milliseconds. Only grows. */
  get now(): number {
    return this.nowMs;
  }

  /** Number of timers in the heap, cancelled ones included. */
  get size(): number {
    return this.heap.length;
  }

  /** Schedules `action` at virtual time `time` (>= now). */
  at(time: number, action: () => void): Timer {
    assert(time >= this.nowMs, () => `cannot schedule in the past: ${time} < ${this.nowMs}`);
    const t: Timer = { time, seq: this.seq++, cancelled: false, action };
    this.push(t);
    return t;
  }

  /** Schedules `action` `delayMs` from now. */
  after(delayMs: number, action: () => void): Timer {
    return this.at(this.nowMs + delayMs, action);
  }

  /**
   * Runs every timer due at or before `time`, in order, then sets the clock to `time`. Actions may
   * schedule more timers; those due by `time` run too. Returns the number of actions run.
   */
  runUntil(time: number): number {
    let ran = 0;
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.time > time) break;
      this.pop();
      if (top.cancelled) continue;
      this.nowMs = top.time;
      top.action();
      ran++;
    }
    if (time > this.nowMs) this.nowMs = time;
    return ran;
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function before(x: Timer, y: Timer): boolean {
  return x.time < y.time || (x.time === y.time && x.seq < y.seq);
}

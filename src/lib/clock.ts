/**
 * Time as a dependency. Production code receives a `Clock` instead of calling `Date.now()` or
 * `setTimeout`, so that tests can drive time by hand. Only `server/` and `cli/` build the real one.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic clock, for timeouts and durations. Never goes backwards. */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch, for record timestamps only. */
  wallMs(): number;
  /** Calls `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

/** A clock moved by hand: timers fire, in order, when `advance()` passes their due time. */
export class ManualClock implements Clock {
  private now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  constructor(private readonly wallOffsetMs = 1_700_000_000_000) {}

  monotonicMs(): number {
    return this.now;
  }

  wallMs(): number {
    return this.wallOffsetMs + this.now;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { due: this.now + Math.max(0, delayMs), fn });
    return { cancel: () => this.timers.delete(id) };
  }

  /** Moves time forward by `ms`, firing due timers in due-time order (ties in creation order). */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let nextId = -1;
      let nextDue = Infinity;
      for (const [id, t] of this.timers) {
        if (t.due <= target && (t.due < nextDue || (t.due === nextDue && id < nextId))) {
          nextId = id;
          nextDue = t.due;
        }
      }
      if (nextId < 0) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.now = Math.max(this.now, timer.due);
      timer.fn();
    }
    this.now = target;
  }
}

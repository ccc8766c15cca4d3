/**
 * Runs async operations one at a time, in call order. Stores put every change to disk through
 * one, because the binding may execute two calls made back to back in either order, and because
 * each write is planned against the state the previous one left.
 */
export class SerialQueue {
  private last: Promise<void> = Promise.resolve();

  /** Runs `op` after every operation queued before it; a failure does not stop later ones. */
  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.last.then(op);
    this.last = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves once every operation queued so far has finished. */
  idle(): Promise<void> {
    return this.last;
  }
}

/** Promises that a store started and must see settle before it closes (loads, reads). */
export class PendingSet {
  private readonly pending = new Set<Promise<unknown>>();

  /** Tracks `p` until it settles, and returns it. */
  track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const forget = (): void => {
      this.pending.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  /** Resolves once everything tracked so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}

/**
 * The `storage/lose-unsynced` failpoint: an {@link Engine} decorator for fault testing that
 * behaves like a disk whose fsync does nothing, followed by a power loss. Every write is
 * acknowledged at once WITHOUT being written; writes queue in memory in order and a write-back
 * timer writes them to the inner engine (unsynced) about once a second, like an OS page cache. A
 * kill -9 therefore loses up to the last second of acknowledged writes — the chaos checker must
 * then report lost records.
 *
 * Reads (get, scan) see the queue over the inner engine (an overlay), without writing it out: a
 * busy store that reads all the time must lose what a power loss loses, not what a read happened
 * to push to the OS. The other changes (clear, compactRange) first write the queue out, so that
 * writes and clears reach the inner engine in the order they were made. close() writes it out. Bounded: one timer at a time (unref'd,
 * cancelled on close), and a queue over `queuedBytesMax` is written out before the next write is
 * acknowledged. A failed write-back fails every later call (what reached the disk is unknown).
 *
 * With `honourSync` (the `storage/power-loss` failpoint) it is a correct disk with power-loss
 * emulation instead: a synced write writes the queue and itself out with an fsync before it
 * resolves, and unsynced writes wait in memory (no timer) until the next synced write or read. A
 * kill -9 then loses exactly what a power loss may lose: writes that were never fsynced.
 */
import type { Engine, EngineOp, KeyRange, KeyValue, ScanOptions } from "./engine.js";

export interface LossyEngineOptions {
  /** How long a write waits in memory at most before the write-back timer writes it. Default 1000 ms. */
  readonly writeBackIntervalMs?: number;
  /** Queued bytes (keys and values) past which a write waits for a write-back. Default 64 MiB. */
  readonly queuedBytesMax?: number;
  /** Power-loss emulation: synced writes are durable before they resolve; see the file comment. */
  readonly honourSync?: boolean;
}

export const WRITE_BACK_INTERVAL_MS_DEFAULT = 1000;
export const QUEUED_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

export class LossyEngine implements Engine {
  private readonly writeBackIntervalMs: number;
  private readonly queuedBytesMax: number;
  private readonly honourSync: boolean;
  /** Acknowledged batches not yet written to the inner engine, oldest first. */
  private queue: (readonly EngineOp[])[] = [];
  private queuedBytes = 0;
  /** The tail of the chain of changes to the inner engine (write-backs, clears, compactions): one at a time, in call order. */
  private changes: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private closed = false;

  constructor(private readonly inner: Engine, options: LossyEngineOptions = {}) {
    this.writeBackIntervalMs = options.writeBackIntervalMs ?? WRITE_BACK_INTERVAL_MS_DEFAULT;
    this.queuedBytesMax = options.queuedBytesMax ?? QUEUED_BYTES_MAX_DEFAULT;
    this.honourSync = options.honourSync ?? false;
    for (const [name, value] of [["writeBackIntervalMs", this.writeBackIntervalMs], ["queuedBytesMax", this.queuedBytesMax]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`lossy engine: ${name} must be a positive integer, got ${value}`);
    }
  }

  get dir(): string {
    return this.inner.dir;
  }

  /** Batches acknowledged but not yet written to the inner engine (tests). */
  get queuedBatches(): number {
    return this.queue.length;
  }

  /** Acknowledges at once; `sync` is ignored (that is the fault) unless `honourSync`. */
  async write(ops: readonly EngineOp[], sync: boolean): Promise<void> {
    this.checkUsable();
    this.queue.push([...ops]);
    for (const op of ops) this.queuedBytes += op.key.length + (op.type === "put" ? op.value.length : 0);
    if (this.honourSync && sync) await this.change(() => Promise.resolve(), true);
    else if (this.queuedBytes > this.queuedBytesMax) await this.writeBack();
    else if (!this.honourSync) this.armTimer();
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.checkUsable();
    const pending = this.pendingIn({ gte: key, lt: Buffer.concat([key, Buffer.from([0])]) }).get(key.toString("latin1"));
    if (pending !== undefined) return pending.type === "put" ? pending.value : undefined;
    await this.changes;
    return this.inner.get(key);
  }

  /** The inner engine's pairs with the queued writes laid over them (as of the call), in key order. */
  async *scan(range: KeyRange, options: ScanOptions = {}): AsyncGenerator<KeyValue, void, undefined> {
    this.checkUsable();
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const pending = [...this.pendingIn(range).values()].sort((a, b) => Buffer.compare(a.key, b.key) * (reverse ? -1 : 1));
    await this.changes;
    const before = (a: Buffer, b: Buffer): boolean => (reverse ? Buffer.compare(a, b) > 0 : Buffer.compare(a, b) < 0);
    let k = 0;
    let yielded = 0;
    const emit = function* (op: EngineOp): Generator<KeyValue> {
      if (op.type === "put") {
        yielded++;
        yield { key: op.key, value: op.value };
      }
    };
    for await (const kv of this.inner.scan(range, { reverse })) {
      while (k < pending.length && yielded < limit && before(pending[k]!.key, kv.key)) yield* emit(pending[k++]!);
      if (yielded >= limit) return;
      if (k < pending.length && pending[k]!.key.equals(kv.key)) {
        yield* emit(pending[k++]!); // the queued write replaces (or deletes) the stored pair
      } else {
        yielded++;
        yield kv;
      }
      if (yielded >= limit) return;
    }
    while (k < pending.length && yielded < limit) yield* emit(pending[k++]!);
  }

  /** The last queued write of each key in `range` (latin1 key → op). */
  private pendingIn(range: KeyRange): Map<string, EngineOp> {
    const out = new Map<string, EngineOp>();
    for (const batch of this.queue) {
      for (const op of batch) {
        if (Buffer.compare(op.key, range.gte) >= 0 && Buffer.compare(op.key, range.lt) < 0) out.set(op.key.toString("latin1"), op);
      }
    }
    return out;
  }

  clear(range: KeyRange): Promise<void> {
    return this.change(() => this.inner.clear(range));
  }

  compactRange(range: KeyRange): Promise<void> {
    return this.change(() => this.inner.compactRange(range));
  }

  /** Writes every batch acknowledged so far to the inner engine (unsynced); resolves when they are there. */
  writeBack(): Promise<void> {
    return this.change(() => Promise.resolve());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.cancelTimer();
    try {
      if (this.failure === undefined) await this.writeBack();
    } finally {
      this.closed = true;
      this.cancelTimer();
      await this.inner.close();
    }
  }

  /** Runs `op` on the inner engine after the queue (as of now) is written out, in the chain of changes. */
  private change(op: () => Promise<void>, sync = false): Promise<void> {
    try {
      this.checkUsable();
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.changes.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      await this.drain(sync);
      await op();
    });
    this.changes = run.catch(() => undefined);
    return run;
  }

  private async drain(sync: boolean): Promise<void> {
    if (this.queue.length === 0) return;
    const batches = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    try {
      await this.inner.write(batches.flat(), sync);
    } catch (e) {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
      throw e;
    }
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed || this.failure !== undefined) return;
      // A failure is kept in `failure` and reported by the next call.
      this.writeBack().then(
        () => {
          if (this.queue.length > 0) this.armTimer();
        },
        () => undefined,
      );
    }, this.writeBackIntervalMs);
    this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private checkUsable(): void {
    if (this.closed) throw new Error("the lossy engine is closed");
    if (this.failure !== undefined) throw new Error("a write-back of the lossy engine failed; reopen the store", { cause: this.failure });
  }
}

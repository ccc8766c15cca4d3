/**
 * Consume-side loads: `consume` (pre-load N records as fast as the throughput scenario produces,
 * then drain them with one consumer group) and `e2e` (produce at a fixed rate while a group
 * consumes; end-to-end latency from send to delivery).
 *
 * The send time travels in a header (`bench-sent`, 8 bytes: performance.now() of this process as
 * a float64), so producer and consumer read the same monotonic clock. Each consumer member is its
 * own client, at-least-once, offsets auto-committed (and committed on close).
 */
import { connect, type Consumer, type ConsumedRecord, type Producer, type RaftmqClient } from "../../src/client/index.js";
import { LatencyHistogram } from "./latency-histogram.js";
import type { PayloadPool } from "./payloads.js";

export const SENT_HEADER = "bench-sent";

export function encodeSentMs(ms: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleLE(ms, 0);
  return b;
}

/** The send time carried by a record, or undefined when it has none. */
export function sentMsOf(record: Pick<ConsumedRecord, "headers">): number | undefined {
  for (const h of record.headers) if (h.key === SENT_HEADER && h.value.length === 8) return h.value.readDoubleLE(0);
  return undefined;
}

/** Produces `total` records with `producers` closed loops of `inFlight` records each; resolves when all are acknowledged. */
export async function preload(
  brokers: readonly string[],
  topic: string,
  total: number,
  s: { producers: number; inFlight: number; lingerMs: number; batchRecordsMax: number },
  payloads: PayloadPool,
  onProgress: (acked: number) => void,
): Promise<{ records: number; bytes: number; seconds: number }> {
  const t0 = performance.now();
  let sent = 0;
  let acked = 0;
  let bytes = 0;
  const clients: RaftmqClient[] = [];
  try {
    await Promise.all(
      Array.from({ length: s.producers }, () => {
        const client = connect({ brokers });
        clients.push(client);
        const producer = client.producer({ lingerMs: s.lingerMs, batchRecordsMax: s.batchRecordsMax, bufferedRecordsMax: Math.max(s.inFlight, s.batchRecordsMax) });
        return new Promise<void>((resolve, reject) => {
          let inflight = 0;
          let failed = false;
          const pump = (): void => {
            while (!failed && inflight < s.inFlight && sent < total) {
              sent++;
              inflight++;
              const body = payloads.take();
              producer.send(topic, { body }).then(
                () => {
                  inflight--;
                  acked++;
                  bytes += body.length;
                  onProgress(acked);
                  if (sent >= total && inflight === 0) resolve();
                  else pump();
                },
                (e: unknown) => {
                  failed = true;
                  reject(e as Error);
                },
              );
            }
            if (sent >= total && inflight === 0) resolve();
          };
          pump();
        });
      }),
    );
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
  return { records: acked, bytes, seconds: (performance.now() - t0) / 1000 };
}

export interface ConsumeSettings {
  readonly consumers: number;
  readonly prefetchRecords: number;
  readonly prefetchBytes: number;
}

/** The members of one consumer group, reading with for-await; counts and times deliveries. */
export class GroupConsume {
  delivered = 0;
  bytes = 0;
  firstMs = NaN;
  lastMs = NaN;
  /** Deliveries of records sent inside [measureFromMs, measureToMs) (e2e). */
  measuredDelivered = 0;
  measureFromMs = Infinity;
  measureToMs = Infinity;
  readonly latency = new LatencyHistogram();
  private readonly clients: RaftmqClient[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly loops: Promise<void>[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(brokers: readonly string[], topic: string, group: string, readonly settings: ConsumeSettings, private readonly onFatal: (e: Error) => void) {
    for (let i = 0; i < settings.consumers; i++) {
      const client = connect({ brokers });
      this.clients.push(client);
      this.consumers.push(
        client.consumer({ group, topics: [topic], guarantee: "at-least-once", prefetchRecords: settings.prefetchRecords, prefetchBytes: settings.prefetchBytes, clientId: `bench-${i}` }),
      );
    }
  }

  start(): void {
    for (const c of this.consumers) {
      this.loops.push(
        (async () => {
          for await (const record of c) this.onRecord(record);
        })().catch((e: unknown) => this.onFatal(e instanceof Error ? e : new Error(String(e)))),
      );
    }
  }

  private onRecord(record: ConsumedRecord): void {
    const now = performance.now();
    if (this.delivered === 0) this.firstMs = now;
    this.lastMs = now;
    this.delivered++;
    this.bytes += record.body.length;
    const sent = sentMsOf(record);
    if (sent !== undefined && sent >= this.measureFromMs && sent < this.measureToMs) {
      this.measuredDelivered++;
      this.latency.recordMs(now - sent);
    }
    if (this.waiters.length > 0) {
      const ready = this.waiters.filter((w) => this.progress(w.count));
      this.waiters = this.waiters.filter((w) => !this.progress(w.count));
      for (const w of ready) w.resolve();
    }
  }

  private progress(count: number): boolean {
    return this.measureFromMs === Infinity ? this.delivered >= count : this.measuredDelivered >= count;
  }

  /** Resolves once `count` records were delivered (or, with a measure window set, `count` measured ones); false on timeout. */
  waitFor(count: number, timeoutMs: number): Promise<boolean> {
    if (this.progress(count)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = { count, resolve: () => (clearTimeout(timer), resolve(true)) };
      this.waiters.push(waiter);
    });
  }

  /** Commits, leaves the group, closes the clients. */
  async close(): Promise<void> {
    await Promise.allSettled(this.consumers.map((c) => c.close()));
    await Promise.allSettled(this.loops);
    await Promise.allSettled(this.clients.map((c) => c.close()));
  }
}

/** A producer sending `rate` records/s in bursts every `tickMs`, each record carrying its send time. */
export class PacedProducer {
  sent = 0;
  acked = 0;
  errors = 0;
  firstError: unknown;
  /** Records sent in the measure window, and acknowledged of those. */
  sentMeasured = 0;
  private readonly client: RaftmqClient;
  private readonly producer: Producer;
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;
  measureFromMs = Infinity;
  measureToMs = Infinity;
  /** Produce acknowledgement latency (send() to its settling) of the records sent in the measure window. */
  readonly ackLatency = new LatencyHistogram();

  constructor(brokers: readonly string[], private readonly topic: string, private readonly rate: number, private readonly tickMs: number, private readonly payloads: PayloadPool, private readonly onFatal: (e: Error) => void) {
    this.client = connect({ brokers });
    this.producer = this.client.producer({ lingerMs: 0, batchRecordsMax: 1000, bufferedRecordsMax: Math.max(10_000, rate) });
  }

  start(): void {
    this.t0 = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.t0) * this.rate) / 1000) - this.sent;
    for (let i = 0; i < due; i++) {
      const now = performance.now();
      this.sent++;
      const measured = now >= this.measureFromMs && now < this.measureToMs;
      if (measured) this.sentMeasured++;
      this.producer.send(this.topic, { body: this.payloads.take(), headers: { [SENT_HEADER]: encodeSentMs(now) } }).then(
        () => {
          this.acked++;
          if (measured) this.ackLatency.recordMs(performance.now() - now);
        },
        (e: unknown) => {
          this.errors++;
          this.firstError ??= e;
          if (this.errors >= 100) this.onFatal(new Error(`${this.errors} sends failed; the first: ${String(this.firstError)}`));
        },
      );
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.producer.flush();
    await this.client.close();
  }
}

/**
 * A streaming subscription to one partition, served by its leader with credit-based flow control.
 * The consumer grants credits — a number of records and a number of bytes — and the leader sends
 * committed records from the subscription's offset while both credits are positive, subtracting
 * what it sent. So the consumer decides how much may be in flight or buffered (its prefetch), and
 * a slow consumer holds the leader to that much.
 *
 * The byte rule: a record is sent only while the byte credit is positive, and it must fit in what
 * is left unless it is the first of its message. One record may so overshoot the byte credit by
 * less than its own size (the credit goes negative and the consumer's next grants pay it back);
 * without that, a record larger than the whole prefetch window would never be delivered. A
 * record's size is its key, body and header names and values, in bytes ({@link recordCreditBytes});
 * every message says how many bytes it charged, so the consumer need not recompute it.
 *
 * The pump long-polls the partition (Broker.fetch), so it notices within `pollWaitMs` that the
 * partition was deleted or that leadership moved, and then fails (NOT_LEADER with the new leader):
 * the consumer resubscribes there from the offset after the last record it received.
 */
import { BrokerError } from "../lib/errors.js";

/** Credits a subscription holds at most (grants beyond are clamped). */
export const CREDIT_RECORDS_MAX = 1_000_000;
export const CREDIT_BYTES_MAX = 1024 * 1024 * 1024;
/** Bytes read from the log per fetch at most, whatever the credit (one message stays small). */
export const READ_BYTES_MAX = 4 * 1024 * 1024;

/** The fields flow control counts. */
export interface SizedRecord {
  readonly offset: number;
  readonly key: Uint8Array;
  readonly body: Uint8Array;
  readonly headers: readonly { readonly key: string; readonly value: Uint8Array }[];
}

/** A record's size for byte credits: key, body, header names (UTF-8) and values. */
export function recordCreditBytes(r: SizedRecord): number {
  let n = r.key.byteLength + r.body.byteLength;
  for (const h of r.headers) n += Buffer.byteLength(h.key, "utf8") + h.value.byteLength;
  return n;
}

/** What the pump reads from: the broker's fetch with long poll. */
export interface RecordSource<R extends SizedRecord> {
  fetch(topic: string, partition: number, offset: number, maxBytes: number, maxWaitMs: number): Promise<{
    readonly records: readonly R[];
    readonly highWatermark: number;
    readonly nextOffset: number;
  }>;
}

/** One message of the subscription. */
export interface SubscriptionBatch<R> {
  readonly records: readonly R[];
  readonly highWatermark: number;
  /** The offset the subscription reads next. */
  readonly nextOffset: number;
  /** Byte credit this message used. */
  readonly chargedBytes: number;
}

export interface SubscriptionOptions<R extends SizedRecord> {
  readonly source: RecordSource<R>;
  readonly topic: string;
  readonly partition: number;
  /** The first offset to send. */
  readonly offset: number;
  /** Long-poll wait per fetch; bounds how late a leader change or a close is noticed. */
  readonly pollWaitMs: number;
  /** Sends one message; resolves when the transport can take another (backpressure). */
  readonly send: (batch: SubscriptionBatch<R>) => Promise<void>;
}

export class Subscription<R extends SizedRecord> {
  private creditRecords = 0;
  private creditBytes = 0;
  private next: number;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(private readonly options: SubscriptionOptions<R>) {
    this.next = options.offset;
  }

  /** Adds credits (non-negative integers). */
  grant(records: number, bytes: number): void {
    if (!Number.isSafeInteger(records) || !Number.isSafeInteger(bytes) || records < 0 || bytes < 0) {
      throw new BrokerError("INVALID_ARGUMENT", `credits must be non-negative integers, got ${records} records and ${bytes} bytes`);
    }
    this.creditRecords = Math.min(CREDIT_RECORDS_MAX, this.creditRecords + records);
    this.creditBytes = Math.min(CREDIT_BYTES_MAX, this.creditBytes + bytes);
    this.wakeUp();
  }

  /** Stops the pump; run() resolves after its current fetch. */
  close(): void {
    this.closed = true;
    this.wakeUp();
  }

  /** The current credits and read position (for tests and diagnostics). */
  get credits(): { records: number; bytes: number; nextOffset: number } {
    return { records: this.creditRecords, bytes: this.creditBytes, nextOffset: this.next };
  }

  /** Sends records while credits last, until close(); rejects with the fetch's error (NOT_LEADER, OFFSET_OUT_OF_RANGE, ...). */
  async run(): Promise<void> {
    const { source, topic, partition, pollWaitMs } = this.options;
    while (!this.closed) {
      if (this.creditRecords <= 0 || this.creditBytes <= 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const result = await source.fetch(topic, partition, this.next, Math.max(1, Math.min(this.creditBytes, READ_BYTES_MAX)), pollWaitMs);
      if (this.closed) return;
      const batch = this.take(result.records);
      if (batch.records.length === 0) {
        // Nothing new, or only expired records the fetch skipped.
        this.next = Math.max(this.next, result.nextOffset);
        continue;
      }
      const all = batch.records.length === result.records.length;
      this.next = all ? Math.max(result.nextOffset, batch.records[batch.records.length - 1]!.offset + 1) : batch.records[batch.records.length - 1]!.offset + 1;
      this.creditRecords -= batch.records.length;
      this.creditBytes -= batch.chargedBytes;
      await this.options.send({ records: batch.records, highWatermark: result.highWatermark, nextOffset: this.next, chargedBytes: batch.chargedBytes });
    }
  }

  /** The prefix of `records` the credits allow (see the byte rule in the module comment). */
  private take(records: readonly R[]): { records: R[]; chargedBytes: number } {
    const out: R[] = [];
    let charged = 0;
    for (const r of records) {
      if (r.offset < this.next) continue;
      if (out.length >= this.creditRecords) break;
      const size = recordCreditBytes(r);
      if (out.length > 0 && charged + size > this.creditBytes) break;
      out.push(r);
      charged += size;
    }
    return { records: out, chargedBytes: charged };
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

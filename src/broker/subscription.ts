/**
 * A streaming subscription to one partition, served by its leader with credit-based flow control.
 * The consumer grants credits — a number of records and a number of bytes — and the leader sends
 * committed records from the subscription's offset while both credits are positive, subtracting
 * what it sent. So the consumer decides how much may be in flight or buffered (its prefetch), and
 * a slow consumer holds the leader to that much.
 *
 * What travels is a sequence of units, each holding consecutive offsets: decoded records (one
 * offset each; the stream's default) or, when the consumer asks for them, stored record batches
 * exactly as the partition keeps them (the pump reads them with Broker.fetch's rawBatches and
 * never decodes, re-encodes or decompresses a record). A source ({@link recordsOf},
 * {@link batchesOf}) reads units and measures them; the pump below is the same for both.
 *
 * The credit rule, per unit:
 *   - records: the unit's records at or above the subscription offset. A record counts 1; a
 *     batch counts its records from max(baseOffset, offset) to baseOffset + count - 1 (header
 *     fields, so only the first batch of a subscription, which may start below its offset, counts
 *     less than its record count; the consumer skips the records below the offset).
 *   - bytes: a record's key, body and header names and values ({@link recordCreditBytes}); a
 *     batch's records section before compression (the header's uncompressedBytes, whole batch),
 *     which is at least the credit bytes of its records, so a consumer counting decoded records'
 *     bytes against its prefetch stays within it even when batches are compressed.
 * A unit is sent only while both credits are positive, and it must fit in what is left of both
 * unless it is the first of its message. One unit may so overshoot a credit by less than its own
 * size (the credit goes negative and the consumer's next grants pay it back); without that, a
 * record or batch larger than the whole prefetch window would never be delivered. Every message
 * says how many records and bytes it charged, so the consumer need not recompute them.
 *
 * Worked example (batches, subscription offset 7, credits 10 records and 1000 bytes):
 *
 *   batch   offsets  uncompressed  records charged  credits after       sent?
 *   A       5..9     400 B         3 (7, 8, 9)      7 rec, 600 B        yes, first of the message
 *   B       10..14   500 B         5                2 rec, 100 B        yes, fits both
 *   C       15..19   300 B         5                —                   no: 5 > 2 records left
 *   The next message starts with C, since both credits are still positive, overshooting them to
 *   -3 records and -200 B; then nothing is sent until the consumer's grants make both positive.
 *
 * Every message is also bounded by what one read returns: about READ_BYTES_MAX bytes of records
 * (decoded) or of stored batches, and at least one unit.
 *
 * The pump long-polls the partition (Broker.fetch), so it notices within `pollWaitMs` that the
 * partition was deleted or that leadership moved, and then fails (NOT_LEADER with the new leader):
 * the consumer resubscribes there from the offset after the last record it received.
 */
import { assert } from "../lib/assert.js";
import { BrokerError } from "../lib/errors.js";
import { readBatchHeader } from "./record-batch.js";
import type { StoredBatch } from "./partition.js";

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

/** What one read of the log returned. */
export interface SourceRead<U> {
  /** Units in offset order; the first may start below the offset asked for. */
  readonly units: readonly U[];
  readonly highWatermark: number;
  /** Where the next read starts: after the last unit, or after records the read skipped (expired). */
  readonly nextOffset: number;
  /** The leader's wall clock when it read (Unix ms): the "now" of TTL expiry. */
  readonly brokerTimeMs: number;
}

/** Offsets baseOffset .. baseOffset + count - 1, and the byte credit the whole unit uses. */
export interface UnitSize {
  readonly baseOffset: number;
  readonly count: number;
  readonly bytes: number;
}

/** What the pump reads from, and how it measures what it read (see the credit rule above). */
export interface SubscriptionSource<U> {
  /** Reads from `offset`, about `maxBytes` at most (at least one unit if any), waiting up to `maxWaitMs` for one. */
  read(offset: number, maxBytes: number, maxWaitMs: number): Promise<SourceRead<U>>;
  measure(unit: U): UnitSize;
}

/** The broker's fetch of decoded records (Broker implements it). */
export interface RecordSource<R extends SizedRecord> {
  fetch(topic: string, partition: number, offset: number, maxBytes: number, maxWaitMs: number): Promise<{
    readonly records: readonly R[];
    readonly highWatermark: number;
    readonly nextOffset: number;
    readonly brokerTimeMs: number;
  }>;
}

/** The broker's fetch of stored batches (Broker implements it). */
export interface BatchSource {
  fetch(topic: string, partition: number, offset: number, maxBytes: number, maxWaitMs: number, options: { readonly rawBatches: true }): Promise<{
    readonly batches: readonly StoredBatch[];
    readonly highWatermark: number;
    readonly nextOffset: number;
    readonly brokerTimeMs: number;
  }>;
}

/** A subscription source of decoded records: the fetch skips expired records, each record counts one offset. */
export function recordsOf<R extends SizedRecord>(source: RecordSource<R>, topic: string, partition: number): SubscriptionSource<R> {
  return {
    read: async (offset, maxBytes, maxWaitMs) => {
      const r = await source.fetch(topic, partition, offset, maxBytes, maxWaitMs);
      return { units: r.records, highWatermark: r.highWatermark, nextOffset: r.nextOffset, brokerTimeMs: r.brokerTimeMs };
    },
    measure: (r) => ({ baseOffset: r.offset, count: 1, bytes: recordCreditBytes(r) }),
  };
}

/**
 * A subscription source of stored batches, as the partition keeps them: only headers are read
 * (count from the partition's batch table, size from the header), expired records stay in for
 * the consumer to skip.
 */
export function batchesOf(source: BatchSource, topic: string, partition: number): SubscriptionSource<StoredBatch> {
  return {
    read: async (offset, maxBytes, maxWaitMs) => {
      const r = await source.fetch(topic, partition, offset, maxBytes, maxWaitMs, { rawBatches: true });
      return { units: r.batches, highWatermark: r.highWatermark, nextOffset: r.nextOffset, brokerTimeMs: r.brokerTimeMs };
    },
    measure: (b) => {
      const header = readBatchHeader(b.data);
      assert(header !== undefined, () => `the stored batch at offset ${b.baseOffset} of ${topic}/${partition} is empty`);
      return { baseOffset: b.baseOffset, count: b.count, bytes: header.uncompressedBytes };
    },
  };
}

/** One message of the subscription. */
export interface SubscriptionMessage<U> {
  /** At least one unit, in offset order. */
  readonly units: readonly U[];
  readonly highWatermark: number;
  /** The offset the subscription reads next. */
  readonly nextOffset: number;
  /** Record credit this message used. */
  readonly chargedRecords: number;
  /** Byte credit this message used. */
  readonly chargedBytes: number;
  /** The leader's wall clock when it read these units (Unix ms), for TTL expiry. */
  readonly brokerTimeMs: number;
}

export interface SubscriptionOptions<U> {
  readonly source: SubscriptionSource<U>;
  /** The first offset to send. */
  readonly offset: number;
  /** Long-poll wait per fetch; bounds how late a leader change or a close is noticed. */
  readonly pollWaitMs: number;
  /** Sends one message; resolves when the transport can take another (backpressure). */
  readonly send: (message: SubscriptionMessage<U>) => Promise<void>;
}

/** The units of one read that the credits allow. */
interface Taken<U> {
  readonly units: U[];
  readonly records: number;
  readonly bytes: number;
  /** The offset after the last unit taken. */
  readonly end: number;
  /** Every unit of the read at or above the offset was taken. */
  readonly all: boolean;
}

export class Subscription<U> {
  private creditRecords = 0;
  private creditBytes = 0;
  private next: number;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(private readonly options: SubscriptionOptions<U>) {
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

  /** Sends units while credits last, until close(); rejects with the source's error (NOT_LEADER, OFFSET_OUT_OF_RANGE, ...). */
  async run(): Promise<void> {
    const { source, pollWaitMs } = this.options;
    while (!this.closed) {
      if (this.creditRecords <= 0 || this.creditBytes <= 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const read = await source.read(this.next, Math.max(1, Math.min(this.creditBytes, READ_BYTES_MAX)), pollWaitMs);
      if (this.closed) return;
      const taken = this.take(read.units);
      if (taken.units.length === 0) {
        // Nothing new, or only expired records the fetch skipped.
        this.next = Math.max(this.next, read.nextOffset);
        continue;
      }
      this.next = taken.all ? Math.max(read.nextOffset, taken.end) : taken.end;
      this.creditRecords -= taken.records;
      this.creditBytes -= taken.bytes;
      await this.options.send({
        units: taken.units,
        highWatermark: read.highWatermark,
        nextOffset: this.next,
        chargedRecords: taken.records,
        chargedBytes: taken.bytes,
        brokerTimeMs: read.brokerTimeMs,
      });
    }
  }

  /** The prefix of `units` the credits allow (see the credit rule in the module comment). */
  private take(units: readonly U[]): Taken<U> {
    const out: U[] = [];
    let records = 0;
    let bytes = 0;
    let end = this.next;
    for (const unit of units) {
      const size = this.options.source.measure(unit);
      const fresh = size.baseOffset + size.count - Math.max(size.baseOffset, this.next);
      if (fresh <= 0) continue;
      if (out.length > 0 && (records + fresh > this.creditRecords || bytes + size.bytes > this.creditBytes)) {
        return { units: out, records, bytes, end, all: false };
      }
      out.push(unit);
      records += fresh;
      bytes += size.bytes;
      end = size.baseOffset + size.count;
    }
    return { units: out, records, bytes, end, all: true };
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

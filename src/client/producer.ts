/**
 * The batching producer. send() puts a record into the open batch of its partition and returns a
 * promise of its partition and offset. A batch is sent when it reaches `batchRecordsMax` records,
 * when the next record would take it past `batchBytesMax`, or `lingerMs` after its first record,
 * whichever comes first; flush() sends every open batch at once. With `lingerMs` 0 there is no
 * timer: the open batch goes out whenever its partition has no batch in flight, so records sent
 * while a batch is on the wire gather into the next one.
 *
 * Order: records of one partition are sent in send() order, one batch in flight per partition,
 * so a retried batch can never be overtaken by a later one. Records of a topic whose metadata is
 * not known yet wait, in order, in a per-topic queue until it is.
 *
 * Bounds: at most `bufferedRecordsMax` records may be accepted and not yet settled; beyond that
 * send() rejects with OverloadedError (await earlier sends, or raise the bound). A failed batch
 * rejects the promise of each of its records with the client's error.
 *
 * Idempotence (on by default). Before its first batch the producer starts a session with
 * InitProducer (anonymous: a fresh producer id; with `producerName`: that name's id and a new
 * epoch, which fences older producers of the same name). It numbers the records of each
 * partition from 0 and encodes each batch once, with its producer id, epoch and base sequence;
 * the client retries that same batch — after lost connections, leader changes and timeouts —
 * and the partition writes it once, answering a retry with the original offsets. When a batch
 * fails for good, whether it was written is unknown, so the producer must not reuse its sequence
 * numbers: it stops sending, waits until no batch is in flight, starts a new session (sequences
 * from 0 again) and goes on. PRODUCER_FENCED is final: this producer was replaced by a newer one
 * of the same name, and every pending and later send() rejects with ProducerFencedError.
 * What this does not give: a record whose send() rejected may or may not have been written, and
 * re-sending it starts a new record; see protos/broker.proto for the end-to-end guarantees.
 */
import type { Clock, TimerHandle } from "../lib/clock.js";
import { BrokerError } from "../lib/errors.js";
import { CODEC_OF, type BatchProducer, type CompressionName } from "../format/index.js";
import { InvalidArgumentError, OverloadedError, ShuttingDownError, UnknownPartitionError } from "./errors.js";
import type { Partitioner } from "./partitioner.js";
import { wireRecordBytes, type ProduceRecord, type ProduceResult } from "./records.js";
import type { WireRecord } from "./wire.js";

export interface ProducerOptions {
  /** How long a batch waits for more records after its first one; 0 sends whenever the partition is idle. Default 5. */
  readonly lingerMs?: number;
  /** A batch is sent once it holds this many records. Default 1000. */
  readonly batchRecordsMax?: number;
  /** A batch is sent before a record would take it past this size (a larger record goes alone), in bytes. Default 1 MiB. */
  readonly batchBytesMax?: number;
  /** Records accepted and not yet settled, at most. Default 100000. */
  readonly bufferedRecordsMax?: number;
  /** Exactly-once produce per partition within the producer's session (see above). Default true. */
  readonly idempotence?: boolean;
  /** A stable name: starting a producer with the same name fences this one. Default: anonymous. */
  readonly producerName?: string;
  /** "none", "gzip" or "lz4". Default: the client's `compression`. */
  readonly compression?: CompressionName;
}

/** What the producer needs from the client. */
export interface ProducerTarget {
  readonly clock: Clock;
  readonly partitioner: Partitioner;
  /** The client's default compression. */
  readonly compression: CompressionName;
  /** The topic's partition count; rejects (UnknownTopicError) if it does not exist. */
  partitionCount(topic: string): Promise<number>;
  /** The wire form of a record (id and timestamp filled in). */
  toWire(record: ProduceRecord): WireRecord;
  /** Encodes records into one batch; throws InvalidArgumentError for a field the format cannot carry. */
  encode(records: readonly WireRecord[], compression: CompressionName, producer: BatchProducer | undefined): Uint8Array;
  /** Appends an encoded batch to one partition with the client's retries; resolves with its base offset and whether a retry found it already written. */
  sendBatch(topic: string, partition: number, batch: Uint8Array, idempotent: boolean): Promise<{ baseOffset: number; duplicate: boolean }>;
  /** Starts a producer session (InitProducer). */
  initProducer(name: string): Promise<{ producerId: number; producerEpoch: number }>;
}

interface Pending {
  readonly record: WireRecord;
  readonly bytes: number;
  readonly explicit: number | undefined;
  /** The flush epoch it was sent in (see Producer.unsettled). */
  readonly epoch: number;
  readonly resolve: (result: ProduceResult) => void;
  readonly reject: (error: unknown) => void;
}

interface Batch {
  readonly waiters: Pending[];
  bytes: number;
  timer: TimerHandle | undefined;
  /** Its linger passed while the partition was busy: it goes out as soon as the partition is free. */
  due: boolean;
}

/** Batches of one partition. Invariant: at most one batch is being sent (`sending`). */
interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  open: Batch | undefined;
  readonly sealed: Batch[];
  sending: boolean;
}

/** Sequence numbers are u32 in the batch header. */
const SEQUENCE_MAX = 0xffff_ffff;

const LINGER_MS_DEFAULT = 5;
const BATCH_RECORDS_MAX_DEFAULT = 1000;
const BATCH_BYTES_MAX_DEFAULT = 1024 * 1024;
const BUFFERED_RECORDS_MAX_DEFAULT = 100_000;

export class Producer {
  private readonly lingerMs: number;
  private readonly batchRecordsMax: number;
  private readonly batchBytesMax: number;
  private readonly bufferedRecordsMax: number;
  /** Records waiting for their topic's partition count, per topic, in send() order. */
  private readonly unrouted = new Map<string, Pending[]>();
  private readonly queues = new Map<string, PartitionQueue>();
  /**
   * For flush(): records accepted and not yet settled, counted per flush epoch. Every flush() starts
   * a new epoch and waits until no record of an earlier one is left. Epochs only grow, so the
   * map's first key (insertion order) is the oldest epoch with unsettled records. A count per
   * epoch keeps flush() off the hot path: no promise or set entry per record.
   */
  private readonly unsettled = new Map<number, number>();
  private epoch = 0;
  private readonly flushWaiters: { readonly epoch: number; readonly resolve: () => void }[] = [];
  /** Records accepted and not yet settled. Invariant: buffered <= bufferedRecordsMax. */
  private buffered = 0;
  private duplicates = 0;
  /** Flushes in progress; while positive, records are sent as soon as they are routed. */
  private flushes = 0;
  private closed = false;
  private readonly idempotence: boolean;
  private readonly producerName: string;
  private readonly compression: CompressionName;
  /** The producer session (idempotence); undefined until the first InitProducer answers. */
  private session: { producerId: number; producerEpoch: number } | undefined;
  private sessionStarting = false;
  /** A batch failed for good: start a new session once no batch is in flight. */
  private sessionSpoiled = false;
  /** Batches being sent, over all partitions. */
  private inflight = 0;
  /** Sequence number of the next record per partition ("topic\0partition") in the current session. */
  private readonly sequences = new Map<string, number>();
  /** Set once the producer is fenced by a newer one of the same name: everything fails with it. */
  private fenced: BrokerError | undefined;

  /** Use RaftmqClient.producer(). */
  constructor(private readonly target: ProducerTarget, options: ProducerOptions = {}) {
    this.lingerMs = options.lingerMs ?? LINGER_MS_DEFAULT;
    this.batchRecordsMax = options.batchRecordsMax ?? BATCH_RECORDS_MAX_DEFAULT;
    this.batchBytesMax = options.batchBytesMax ?? BATCH_BYTES_MAX_DEFAULT;
    this.bufferedRecordsMax = options.bufferedRecordsMax ?? BUFFERED_RECORDS_MAX_DEFAULT;
    this.idempotence = options.idempotence ?? true;
    this.producerName = options.producerName ?? "";
    this.compression = options.compression ?? target.compression;
    this.validate();
  }

  /** Records accepted and not yet settled. */
  get bufferedRecords(): number {
    return this.buffered;
  }

  /** Batches whose retry the partition recognised as already written (answered with the original offsets, written once). */
  get duplicateBatches(): number {
    return this.duplicates;
  }

  /**
   * Queues `record` for `topic` (to `options.partition`, or by key, or round-robin) and resolves
   * with its partition and offset once its batch is committed.
   */
  send(topic: string, record: ProduceRecord, options: { partition?: number } = {}): Promise<ProduceResult> {
    if (this.closed) return Promise.reject(new ShuttingDownError("the producer is closed"));
    if (this.fenced !== undefined) return Promise.reject(this.fenced);
    if (this.buffered >= this.bufferedRecordsMax) {
      return Promise.reject(new OverloadedError(`the producer holds ${this.buffered} unacknowledged records (bufferedRecordsMax); await earlier sends before sending more`));
    }
    let wire: WireRecord;
    try {
      wire = this.target.toWire(record);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<ProduceResult>((resolve, reject) => {
      this.enqueue(topic, { record: wire, bytes: wireRecordBytes(wire), explicit: options.partition, epoch: this.epoch, resolve, reject });
    });
  }

  /** Sends every open batch now and resolves once every record sent before this call has settled. */
  async flush(): Promise<void> {
    this.flushes++;
    try {
      const epoch = this.epoch++;
      const settled = new Promise<void>((resolve) => this.flushWaiters.push({ epoch, resolve }));
      this.resolveFlushes();
      for (const q of this.queues.values()) {
        this.seal(q);
        this.pump(q);
      }
      await settled;
    } finally {
      this.flushes--;
    }
  }

  /** Flushes, then rejects any later send(). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private enqueue(topic: string, pending: Pending): void {
    this.buffered++;
    this.unsettled.set(pending.epoch, (this.unsettled.get(pending.epoch) ?? 0) + 1);
    const waiting = this.unrouted.get(topic);
    if (waiting !== undefined) {
      waiting.push(pending);
      return;
    }
    this.unrouted.set(topic, [pending]);
    void this.route(topic);
  }

  /** Learns the topic's partition count, then moves its waiting records into batches, in order. */
  private async route(topic: string): Promise<void> {
    let count: number | undefined;
    let failure: unknown;
    try {
      count = await this.target.partitionCount(topic);
    } catch (error) {
      failure = error;
    }
    const waiting = this.unrouted.get(topic) ?? [];
    this.unrouted.delete(topic);
    const touched = new Set<PartitionQueue>();
    for (const p of waiting) {
      if (count === undefined) this.settle([p], (w) => w.reject(failure));
      else this.place(topic, count, p, touched);
    }
    for (const q of touched) {
      if (this.flushes > 0) this.seal(q);
      this.pump(q);
    }
  }

  private place(topic: string, count: number, p: Pending, touched: Set<PartitionQueue>): void {
    const partition = p.explicit ?? this.target.partitioner.partition(topic, p.record.key, count);
    if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      const error = Number.isInteger(partition) && partition >= 0
        ? new UnknownPartitionError(`topic "${topic}" has partitions 0 to ${count - 1}; there is no partition ${partition}`)
        : new InvalidArgumentError(`partition must be a non-negative integer, got ${partition}`);
      this.settle([p], (w) => w.reject(error));
      return;
    }
    const q = this.queueOf(topic, partition);
    this.append(q, p);
    touched.add(q);
  }

  /** Adds a record to the partition's open batch, sealing batches that reach a bound. */
  private append(q: PartitionQueue, p: Pending): void {
    if (q.open !== undefined && q.open.bytes + p.bytes > this.batchBytesMax) this.seal(q);
    if (q.open === undefined) q.open = this.openBatch(q);
    q.open.waiters.push(p);
    q.open.bytes += p.bytes;
    if (q.open.waiters.length >= this.batchRecordsMax) this.seal(q);
  }

  private openBatch(q: PartitionQueue): Batch {
    const batch: Batch = { waiters: [], bytes: 0, timer: undefined, due: false };
    if (this.lingerMs > 0) {
      batch.timer = this.target.clock.setTimer(this.lingerMs, () => {
        if (q.open !== batch) return;
        // While a batch is in flight, keep this one open so that it keeps filling (up to its
        // bounds) until the partition is free; sealing it now would send tiny batches under load.
        if (q.sending) {
          batch.due = true;
          return;
        }
        this.seal(q);
        this.pump(q);
      });
    }
    return batch;
  }

  /** Moves the open batch, if any, to the queue of batches to send. */
  private seal(q: PartitionQueue): void {
    if (q.open === undefined) return;
    q.open.timer?.cancel();
    q.sealed.push(q.open);
    q.open = undefined;
  }

  /** Sends the next sealed batch unless one is in flight (with lingerMs 0, the open batch too). */
  private pump(q: PartitionQueue): void {
    if (q.sending) return;
    if (this.fenced !== undefined) {
      this.failQueued(q, this.fenced);
      return;
    }
    if ((this.lingerMs === 0 || q.open?.due === true) && q.sealed.length === 0) this.seal(q);
    if (q.sealed.length === 0) {
      if (q.open === undefined) this.queues.delete(`${q.topic}\u0000${q.partition}`);
      return;
    }
    if (this.idempotence && (this.session === undefined || this.sessionSpoiled)) {
      this.startSession();
      return;
    }
    const batch = q.sealed.shift()!;
    const records = batch.waiters.map((w) => w.record);
    let producer: BatchProducer | undefined;
    const key = `${q.topic}\u0000${q.partition}`;
    const sequence = this.sequences.get(key) ?? 0;
    if (this.idempotence) {
      if (sequence + records.length - 1 > SEQUENCE_MAX) {
        // Sequence numbers run out: a new session starts them from 0 again.
        q.sealed.unshift(batch);
        this.sessionSpoiled = true;
        this.startSession();
        return;
      }
      producer = { producerId: this.session!.producerId, producerEpoch: this.session!.producerEpoch, baseSequence: sequence };
    }
    let encoded: Uint8Array;
    try {
      encoded = this.target.encode(records, this.compression, producer);
    } catch (error) {
      this.settle(batch.waiters, (w) => w.reject(error));
      this.pump(q);
      return;
    }
    if (producer !== undefined) this.sequences.set(key, sequence + records.length);
    this.sendSealed(q, batch, encoded, producer !== undefined);
  }

  private sendSealed(q: PartitionQueue, batch: Batch, encoded: Uint8Array, idempotent: boolean): void {
    q.sending = true;
    this.inflight++;
    this.target.sendBatch(q.topic, q.partition, encoded, idempotent).then(
      ({ baseOffset, duplicate }) => {
        if (duplicate) this.duplicates++;
        this.settle(batch.waiters, (w, i) => w.resolve({ partition: q.partition, offset: baseOffset + i }));
      },
      (error: unknown) => {
        if (idempotent) {
          // Written or not is unknown: its sequence numbers must never carry other records.
          if (error instanceof BrokerError && error.code === "PRODUCER_FENCED") this.fenced ??= error;
          else this.sessionSpoiled = true;
        }
        this.settle(batch.waiters, (w) => w.reject(error));
      },
    ).finally(() => {
      q.sending = false;
      this.inflight--;
      if (this.sessionSpoiled && this.inflight === 0) this.startSession();
      this.pump(q);
    });
  }

  /**
   * Starts a new producer session once no batch is in flight, then sends what waits. If it fails,
   * every queued record fails with its error (a later send() tries again).
   */
  private startSession(): void {
    if (this.sessionStarting || this.inflight > 0 || this.fenced !== undefined) return;
    this.sessionStarting = true;
    this.target.initProducer(this.producerName).then(
      (session) => {
        this.session = session;
        this.sessionSpoiled = false;
        this.sequences.clear();
      },
      (error: unknown) => {
        if (error instanceof BrokerError && error.code === "PRODUCER_FENCED") this.fenced ??= error;
        for (const q of this.queues.values()) this.failQueued(q, error);
      },
    ).finally(() => {
      this.sessionStarting = false;
      for (const q of [...this.queues.values()]) this.pump(q);
    });
  }

  /** Rejects every record waiting in `q` (sealed and open batches) with `error`. */
  private failQueued(q: PartitionQueue, error: unknown): void {
    this.seal(q);
    for (const batch of q.sealed.splice(0)) this.settle(batch.waiters, (w) => w.reject(error));
    if (!q.sending) this.queues.delete(`${q.topic}\u0000${q.partition}`);
  }

  /** Settles `records` in order with `each`, and lets flush() know. */
  private settle(records: readonly Pending[], each: (p: Pending, i: number) => void): void {
    this.buffered -= records.length;
    let drained = false;
    for (let i = 0; i < records.length; i++) {
      const p = records[i]!;
      each(p, i);
      const left = this.unsettled.get(p.epoch)! - 1;
      if (left > 0) this.unsettled.set(p.epoch, left);
      else drained = this.unsettled.delete(p.epoch);
    }
    if (drained) this.resolveFlushes();
  }

  /** Resolves the flushes whose records (those of earlier epochs) have all settled. */
  private resolveFlushes(): void {
    if (this.flushWaiters.length === 0) return;
    const oldest = this.unsettled.keys().next();
    const oldestUnsettled = oldest.done === true ? Infinity : oldest.value;
    for (let i = this.flushWaiters.length - 1; i >= 0; i--) {
      const w = this.flushWaiters[i]!;
      if (w.epoch >= oldestUnsettled) continue;
      this.flushWaiters.splice(i, 1);
      w.resolve();
    }
  }

  private queueOf(topic: string, partition: number): PartitionQueue {
    const key = `${topic}\u0000${partition}`;
    let q = this.queues.get(key);
    if (q === undefined) {
      q = { topic, partition, open: undefined, sealed: [], sending: false };
      this.queues.set(key, q);
    }
    return q;
  }

  private validate(): void {
    if (!Object.hasOwn(CODEC_OF, this.compression)) throw new InvalidArgumentError(`compression must be "none", "gzip" or "lz4", got ${JSON.stringify(this.compression)}`);
    if (!(Number.isFinite(this.lingerMs) && this.lingerMs >= 0)) throw new InvalidArgumentError(`lingerMs must be 0 or more, got ${this.lingerMs}`);
    if (!(Number.isInteger(this.batchRecordsMax) && this.batchRecordsMax >= 1)) {
      throw new InvalidArgumentError(`batchRecordsMax must be a positive integer, got ${this.batchRecordsMax}`);
    }
    if (!(this.batchBytesMax >= 1)) throw new InvalidArgumentError(`batchBytesMax must be positive, got ${this.batchBytesMax}`);
    if (!(Number.isInteger(this.bufferedRecordsMax) && this.bufferedRecordsMax >= this.batchRecordsMax)) {
      throw new InvalidArgumentError(`bufferedRecordsMax (${this.bufferedRecordsMax}) must be an integer of at least batchRecordsMax (${this.batchRecordsMax})`);
    }
  }
}

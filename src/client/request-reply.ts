/**
 * Request-reply on top of topics, consumer groups and partition streams.
 *
 *   requester                                    responders (a consumer group on TOPIC)
 *   request(TOPIC, record) ──produce──► TOPIC ──► consumer.run(r => client.reply(r, answer))
 *        ▲  correlation id = a UUID                     │ produce to r.replyTo, same correlation id
 *        │  reply-to = "raftmq.replies/P"               ▼
 *        └── inbox: a Consume stream of raftmq.replies/P ◄──────────────────────────────┘
 *
 * The inbox. A client has one: a partition P of the reply topic (created on first use: 8
 * partitions, 1 hour retention), picked at random, read by one flow-controlled stream from the
 * high watermark it had just before the first pending request was produced — so no reply to a
 * pending request can be missed. Replies are matched to pending requests by correlation id;
 * anything else on P (replies to other clients sharing the partition, late replies to requests
 * that timed out) is ignored. The stream closes once no request has been pending for a second, so
 * a client that stops requesting holds no stream: no inbox leaks, after a timeout either.
 *
 * Guarantees. A request is produced once (a retry after a lost connection may duplicate it, so
 * responders should be idempotent, as at-least-once consumers are anyway); a request carries a
 * TTL equal to its timeout, so responders never see it after the requester gave up (fetches skip
 * expired records). The first reply wins; a timeout rejects with TimeoutError ("its outcome is
 * unknown": a responder may still have acted).
 */
import type { TimerHandle } from "../lib/clock.js";
import { TimeoutError } from "../lib/errors.js";
import { InvalidArgumentError, ShuttingDownError, TopicExistsError, UnknownTopicError } from "./errors.js";
import { PartitionStream, type ConsumedRecord, type PartitionStreamDeps } from "./partition-stream.js";
import { sleep } from "./retry.js";
import type { ProduceRecord, ProduceResult } from "./records.js";

export const REPLY_TOPIC_DEFAULT = "raftmq.replies";
export const REPLY_TOPIC_PARTITIONS = 8;
export const REPLY_TOPIC_RETENTION_MS = 3_600_000;
export const REQUEST_TIMEOUT_MS_DEFAULT = 10_000;
export const REQUEST_TIMEOUT_MS_MAX = 300_000;
/** Requests pending at once per client. */
export const PENDING_REQUESTS_MAX = 100_000;
/** How long the inbox stream stays open after the last pending request settled. */
const INBOX_LINGER_MS = 1_000;
const INBOX_WINDOW_RECORDS = 1_000;
const INBOX_WINDOW_BYTES = 8 * 1024 * 1024;
/** Metadata lookups of a just-created reply topic (100 ms, 200 ms, ... apart). */
const REPLY_TOPIC_LOOKUPS_MAX = 6;

export interface RequestOptions {
  /** How long to wait for the reply. Default 10000, at most 300000. */
  readonly timeoutMs?: number;
  /** The topic replies travel through. Default "raftmq.replies" (created on first use). */
  readonly replyTopic?: string;
  /** Send the request to this partition instead of routing by key. */
  readonly partition?: number;
}

export interface RequestReplyDeps extends PartitionStreamDeps {
  readonly produce: (topic: string, records: readonly ProduceRecord[], options: { partition?: number }) => Promise<ProduceResult[]>;
  readonly createTopic: (name: string, options: { partitions: number; retentionMs: number }) => Promise<unknown>;
  readonly partitionCount: (topic: string) => Promise<number>;
  /** A random integer in [0, bound). */
  readonly randomInt: (bound: number) => number;
  readonly newId: () => string;
}

interface Pending {
  resolve(reply: ConsumedRecord): void;
  reject(error: unknown): void;
  readonly timer: TimerHandle;
}

/** The client's reply inbox and its pending requests. */
export class ReplyInbox {
  private readonly pending = new Map<string, Pending>();
  private stream: PartitionStream | undefined;
  private opening: Promise<void> | undefined;
  private linger: TimerHandle | undefined;
  private partition: number | undefined;
  private closed = false;

  constructor(private readonly deps: RequestReplyDeps, readonly replyTopic: string) {}

  /** Requests pending and whether the inbox stream is open (for monitoring and tests). */
  state(): { pending: number; streaming: boolean } {
    return { pending: this.pending.size, streaming: this.stream !== undefined };
  }

  /** Produces `record` to `topic` as a request and resolves with the first reply. */
  request(topic: string, record: ProduceRecord, options: RequestOptions): Promise<ConsumedRecord> {
    if (this.closed) return Promise.reject(new ShuttingDownError("the client is closed"));
    const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > REQUEST_TIMEOUT_MS_MAX) {
      return Promise.reject(new InvalidArgumentError(`timeoutMs must be from 1 to ${REQUEST_TIMEOUT_MS_MAX}, got ${timeoutMs}`));
    }
    if (this.pending.size >= PENDING_REQUESTS_MAX) return Promise.reject(new InvalidArgumentError(`at most ${PENDING_REQUESTS_MAX} requests may be pending at once`));
    const correlationId = record.correlationId ?? this.deps.newId();
    if (this.pending.has(correlationId)) return Promise.reject(new InvalidArgumentError(`a request with correlation id ${correlationId} is already pending`));
    return new Promise<ConsumedRecord>((resolve, reject) => {
      const timer = this.deps.clock.setTimer(timeoutMs, () => {
        const error = new TimeoutError(`the request to topic "${topic}"`, timeoutMs);
        error.message = `the request to topic "${topic}" (correlation id ${correlationId}) got no reply within ${timeoutMs} ms; a responder may still have acted on it`;
        this.settle(correlationId, undefined, error);
      });
      this.pending.set(correlationId, { resolve, reject, timer });
      this.linger?.cancel();
      this.send(topic, record, correlationId, timeoutMs, options).catch((e: unknown) => this.settle(correlationId, undefined, e));
    });
  }

  /** Rejects every pending request and closes the stream. */
  close(): void {
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, new ShuttingDownError("the client was closed before the reply arrived"));
    this.stopStream();
  }

  private async send(topic: string, record: ProduceRecord, correlationId: string, timeoutMs: number, options: RequestOptions): Promise<void> {
    const partition = await this.open();
    if (!this.pending.has(correlationId)) return; // timed out while the inbox opened
    const request: ProduceRecord = { ...record, correlationId, replyTo: `${this.replyTopic}/${partition}`, ttlMs: record.ttlMs ?? timeoutMs };
    await this.deps.produce(topic, [request], options.partition === undefined ? {} : { partition: options.partition });
  }

  /** Opens the inbox stream if needed (at the partition's high watermark); returns the inbox partition. */
  private async open(): Promise<number> {
    while (this.stream === undefined) {
      this.opening ??= this.openStream().finally(() => (this.opening = undefined));
      await this.opening;
    }
    return this.partition!;
  }

  private async openStream(): Promise<void> {
    this.partition ??= this.deps.randomInt(await this.replyPartitions());
    const partition = this.partition;
    const at = await this.deps.groups.partitionOffsetsAt(this.replyTopic, partition);
    if (this.closed) throw new ShuttingDownError("the client is closed");
    const stream = new PartitionStream(this.deps, this.replyTopic, partition, at.highWatermark, {
      initialCredit: () => ({ records: INBOX_WINDOW_RECORDS, bytes: INBOX_WINDOW_BYTES }),
      onRecords: (records) => {
        for (const r of records) if (r.correlationId !== "") this.settle(r.correlationId, r, undefined);
        // Replies are handled as they arrive: keep the whole window granted.
        stream.credit(INBOX_WINDOW_RECORDS - stream.inflightRecords, INBOX_WINDOW_BYTES - stream.inflightBytes);
      },
    });
    this.stream = stream;
    stream.start();
  }

  /** The reply topic's partition count, creating the topic when it does not exist. */
  private async replyPartitions(): Promise<number> {
    try {
      return await this.deps.partitionCount(this.replyTopic);
    } catch (e) {
      if (!(e instanceof UnknownTopicError)) throw e;
    }
    await this.deps.createTopic(this.replyTopic, { partitions: REPLY_TOPIC_PARTITIONS, retentionMs: REPLY_TOPIC_RETENTION_MS }).catch((e: unknown) => {
      if (!(e instanceof TopicExistsError)) throw e;
    });
    // The topic exists now, but the broker answering metadata may not have applied it yet.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.partitionCount(this.replyTopic);
      } catch (e) {
        if (!(e instanceof UnknownTopicError) || attempt >= REPLY_TOPIC_LOOKUPS_MAX) throw e;
        await sleep(this.deps.clock, 100 * attempt);
      }
    }
  }

  private settle(correlationId: string, reply: ConsumedRecord | undefined, error: unknown): void {
    const p = this.pending.get(correlationId);
    if (p === undefined) return; // not ours, or already settled (a late or second reply)
    this.pending.delete(correlationId);
    p.timer.cancel();
    if (reply !== undefined) p.resolve(reply);
    else p.reject(error);
    if (this.pending.size === 0) {
      this.linger?.cancel();
      this.linger = this.deps.clock.setTimer(INBOX_LINGER_MS, () => {
        if (this.pending.size === 0) this.stopStream();
      });
    }
  }

  private stopStream(): void {
    this.linger?.cancel();
    this.stream?.stop();
    this.stream = undefined;
  }
}

/** Where a reply to `request` goes: its reply-to, "topic/partition" (an inbox) or a plain topic. */
export function replyDestination(request: ConsumedRecord): { topic: string; partition?: number } {
  const to = request.replyTo;
  if (to === "") throw new InvalidArgumentError(`record ${request.topic}/${request.partition}:${request.offset} has no reply-to: it was not sent with request()`);
  const m = /^(.+)\/(\d+)$/.exec(to);
  return m === null ? { topic: to } : { topic: m[1]!, partition: Number(m[2]) };
}

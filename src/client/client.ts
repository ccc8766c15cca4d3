/**
 * RaftmqClient: topics administration, produce and fetch against a raftmq cluster.
 *
 * Routing. Produce and Fetch go to the partition's leader, found in the metadata cache. A broker
 * that is not the leader answers NOT_LEADER with the leader's id and address in trailers; the
 * client notes the new leader and retries there at once. Without a hint, or when a broker is
 * unreachable, shutting down, or the partition has no known leader, the client invalidates its
 * metadata and retries after a backoff. Topic administration goes to the controller leader when
 * known, else to the brokers in turn, and follows NOT_LEADER redirects the same way.
 *
 * Retries are bounded in count and time (retry.ts). Plain writes (`produce()`) are not retried
 * after a timeout (the outcome is unknown, the error says so); they are retried after a lost
 * connection, which makes them at-least-once: a record keeps its id across retries, so duplicates
 * are recognisable. Batches of an idempotent producer (`producer()`, the default) carry a producer
 * id and sequence numbers, so they are retried after timeouts too and written exactly once.
 *
 * Batches are encoded and compressed here (src/format; `compression`, default lz4) and sent as
 * bytes; fetches ask for the stored batches and decode them here (records.ts decodeBatches, which
 * consumer streams use too).
 */
import { randomInt, randomUUID } from "node:crypto";
import type { Clock } from "../lib/clock.js";
import { BrokerError } from "../lib/errors.js";
import { silentLogger, type Logger } from "../lib/logger.js";
import { SeededRandom, type Random } from "../lib/random.js";
import { ChannelPool } from "./channels.js";
import { Consumer, type ConsumerOptions } from "./consumer.js";
import { GroupChannels, type GroupDescription, type WirePartitionOffset } from "./group-channels.js";
import { GroupClient, type GroupSummary, type ResetTarget } from "./groups.js";
import type { ConsumedRecord } from "./partition-stream.js";
import { REPLY_TOPIC_DEFAULT, ReplyInbox, replyDestination, type RequestOptions } from "./request-reply.js";
import { InvalidArgumentError, ShuttingDownError, UnavailableError, UnknownPartitionError, UnknownTopicError } from "./errors.js";
import { MetadataCache, type MetadataView } from "./metadata-cache.js";
import { Partitioner } from "./partitioner.js";
import { Producer, type ProducerOptions, type ProducerTarget } from "./producer.js";
import { decodeBatches, toProducedRecord, toWireRecord, type FetchedRecord, type FetchResult, type ProduceRecord, type ProduceResult } from "./records.js";
import { CODEC_OF, encodeBatch, type BatchProducer, type CompressionName } from "../format/index.js";
import { RETRY_POLICY_DEFAULT, withRetries, type RetryDecision, type RetryDeps, type RetryPolicy } from "./retry.js";
import { systemClock } from "./system-clock.js";
import type { BrokerMethod, BrokerMethods, ClusterMetadata, TopicInfo, WireRecord } from "./wire.js";

export interface ClientOptions {
  /** Bootstrap brokers, "host:port"; any one that answers is enough to learn the others. */
  readonly brokers: readonly string[];
  /** Default: the system clock. Drives backoffs, per-attempt timeouts, linger and record timestamps. */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Jitter of the backoffs. Default: seeded from the process's crypto randomness. */
  readonly random?: Random;
  /** Timeout of one attempt of a call (a fetch adds its maxWaitMs). Default 15000. */
  readonly requestTimeoutMs?: number;
  /** How long a broker may wait for a produce to commit (sent as timeout_ms). Default 10000; must be below requestTimeoutMs. */
  readonly produceTimeoutMs?: number;
  /** Timeout of one Metadata call to one broker. Default 5000. */
  readonly metadataTimeoutMs?: number;
  /** Metadata older than this is refreshed before use. Default 60000. */
  readonly metadataMaxAgeMs?: number;
  /** Retry bounds; unset fields take RETRY_POLICY_DEFAULT's. */
  readonly retry?: Partial<RetryPolicy>;
  /** Largest gRPC message sent or received, in bytes. Default 64 MiB. */
  readonly messageBytesMax?: number;
  /** Generates ids for records produced without one. Default: crypto.randomUUID. */
  readonly newRecordId?: () => string;
  /** How batches are compressed: "none", "gzip" or "lz4" (kept only when it makes a batch smaller). Default "lz4". */
  readonly compression?: CompressionName;
}

export interface CreateTopicOptions {
  /** Default 1. */
  readonly partitions?: number;
  /** Default (chosen by the broker): min(3, number of nodes). */
  readonly replicationFactor?: number;
  /** Default (chosen by the broker): 1 MiB. */
  readonly maxRecordBytes?: number;
  /** How long records are kept, in ms from when the leader accepted them. Default (chosen by the broker): 7 days. */
  readonly retentionMs?: number;
}

export interface ProduceOptions {
  /** Send every record to this partition instead of routing by key. */
  readonly partition?: number;
  /** Default: the client's `compression`. */
  readonly compression?: CompressionName;
}

export interface FetchOptions {
  /** Upper bound on the bytes of records returned (at least one record comes back). Default 1 MiB. */
  readonly maxBytes?: number;
  /** When nothing is committed at `offset` yet, wait up to this long for records. Default 0. */
  readonly maxWaitMs?: number;
  /** Return records whose TTL has passed (marked `expired`) instead of skipping them. Default false. */
  readonly includeExpired?: boolean;
}

/** A producer session from InitProducer. */
export interface ProducerSession {
  readonly producerId: number;
  readonly producerEpoch: number;
}

/** A partition's offsets as its leader knows them. */
export interface PartitionOffsets {
  readonly logStartOffset: number;
  readonly highWatermark: number;
}

const REQUEST_TIMEOUT_MS_DEFAULT = 15_000;
const PRODUCE_TIMEOUT_MS_DEFAULT = 10_000;
const METADATA_TIMEOUT_MS_DEFAULT = 5_000;
const METADATA_MAX_AGE_MS_DEFAULT = 60_000;
const MESSAGE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
const FETCH_BYTES_MAX_DEFAULT = 1024 * 1024;
const RECONNECT_BACKOFF_INITIAL_MS = 100;
const RECONNECT_BACKOFF_MAX_MS = 2_000;

/** What an operation may be retried after (see decide()). An idempotent write may be retried after a timeout. */
type OperationKind = "read" | "admin-write" | "data-read" | "data-write" | "idempotent-write";

/**
 * Creates a client for the cluster reachable through `options.brokers`. No I/O happens until the
 * first call; connections are opened lazily, one channel per broker address.
 */
export function connect(options: ClientOptions): RaftmqClient {
  return new RaftmqClient(options);
}

export class RaftmqClient {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly pool: ChannelPool;
  private readonly cache: MetadataCache;
  private readonly partitioner = new Partitioner();
  private readonly policy: RetryPolicy;
  private readonly retryDeps: RetryDeps;
  private readonly abort = new AbortController();
  private readonly producers = new Set<Producer>();
  private readonly consumers = new Set<Consumer>();
  private readonly groupChannels: GroupChannels;
  private readonly groups: GroupClient;
  /** Reply inboxes by reply topic, created on the first request(). */
  private readonly inboxes = new Map<string, ReplyInbox>();
  private readonly brokers: readonly string[];
  private readonly requestTimeoutMs: number;
  private readonly produceTimeoutMs: number;
  private readonly newRecordId: () => string;
  private readonly compression: CompressionName;
  /** Errors that no retry can fix (raised by routing after a fresh metadata view). */
  private readonly finalErrors = new WeakSet<object>();
  private closing: Promise<void> | undefined;

  /** Use {@link connect}. */
  constructor(options: ClientOptions) {
    validateOptions(options);
    this.brokers = [...options.brokers];
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ component: "client" });
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
    this.produceTimeoutMs = options.produceTimeoutMs ?? PRODUCE_TIMEOUT_MS_DEFAULT;
    this.newRecordId = options.newRecordId ?? randomUUID;
    this.compression = options.compression ?? "lz4";
    this.policy = { ...RETRY_POLICY_DEFAULT, ...options.retry };
    const random = options.random ?? new SeededRandom(randomInt(0, 2 ** 32));
    this.retryDeps = { clock: this.clock, random, signal: this.abort.signal };
    this.pool = new ChannelPool({
      clock: this.clock,
      messageBytesMax: options.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT,
      reconnectBackoffInitialMs: RECONNECT_BACKOFF_INITIAL_MS,
      reconnectBackoffMaxMs: RECONNECT_BACKOFF_MAX_MS,
    });
    this.cache = new MetadataCache({
      pool: this.pool,
      bootstrap: this.brokers,
      clock: this.clock,
      logger: this.logger,
      timeoutMs: options.metadataTimeoutMs ?? METADATA_TIMEOUT_MS_DEFAULT,
      maxAgeMs: options.metadataMaxAgeMs ?? METADATA_MAX_AGE_MS_DEFAULT,
    });
    this.groupChannels = new GroupChannels({ clock: this.clock, messageBytesMax: options.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT });
    this.groups = new GroupClient({
      channels: this.groupChannels,
      logger: this.logger,
      policy: this.policy,
      retryDeps: this.retryDeps,
      requestTimeoutMs: this.requestTimeoutMs,
      addresses: () => [...new Set([...this.brokers, ...(this.cache.peek()?.nodeAddresses() ?? [])])],
      leaderOf: (topic, partition) => this.leaderOf(topic, partition),
      noteLeader: (topic, partition, id, address) => this.cache.peek()?.noteLeader(topic, partition, id, address),
      invalidateMetadata: () => this.cache.invalidate(),
      partitionCount: (topic) => this.partitionCount(topic),
      assertOpen: () => this.assertOpen(),
    });
  }

  /** Creates a topic. TopicExistsError if the name is taken, InvalidArgumentError for bad settings. */
  async createTopic(name: string, options: CreateTopicOptions = {}): Promise<TopicInfo> {
    const request = {
      name,
      partitions: options.partitions ?? 1,
      replicationFactor: options.replicationFactor ?? 0,
      maxRecordBytes: options.maxRecordBytes ?? 0,
      retentionMs: options.retentionMs ?? 0,
    };
    const response = await this.adminCall("admin-write", "CreateTopic", request);
    this.cache.invalidate();
    return response.topic;
  }

  /** Deletes a topic and its records. UnknownTopicError if it does not exist. */
  async deleteTopic(name: string): Promise<void> {
    await this.adminCall("admin-write", "DeleteTopic", { name });
    this.cache.invalidate();
  }

  /** Every topic, as the answering broker knows it. */
  async listTopics(): Promise<TopicInfo[]> {
    return (await this.adminCall("read", "ListTopics", {})).topics;
  }

  /** One topic: partitions, replicas, leaders. UnknownTopicError if it does not exist. */
  async describeTopic(name: string): Promise<TopicInfo> {
    return (await this.adminCall("read", "DescribeTopic", { name })).topic;
  }

  /** Fresh cluster metadata (nodes, controller leader, topics), from any broker; also refreshes the cache. */
  async metadata(): Promise<ClusterMetadata> {
    this.assertOpen();
    const view = await withRetries(this.policy, this.retryDeps, () => this.cache.refresh(), (e) => this.decide("read", e));
    return view.metadata;
  }

  /** Metadata from the broker at `address` only: one attempt, no retries, no cache update. */
  metadataFrom(address: string, options: { timeoutMs?: number; topics?: string[] } = {}): Promise<ClusterMetadata> {
    this.assertOpen();
    return this.pool.call(address, "Metadata", { topics: options.topics ?? [] }, options.timeoutMs ?? this.requestTimeoutMs);
  }

  /** The log start offset and high watermark of a partition, asked of its leader. */
  async partitionOffsets(topic: string, partition: number): Promise<PartitionOffsets> {
    this.assertOpen();
    return withRetries(this.policy, this.retryDeps, async () => {
      const leader = await this.leaderOf(topic, partition);
      const info = (await this.pool.call(leader.address, "DescribeTopic", { name: topic }, this.requestTimeoutMs)).topic;
      const p = info.partitions.find((x) => x.partition === partition);
      if (p === undefined || p.leader !== leader.id) {
        throw new UnavailableError(`node ${leader.id} no longer leads ${topic}/${partition}; asking again`);
      }
      return { logStartOffset: p.logStartOffset, highWatermark: p.highWatermark };
    }, (e) => this.decide("data-read", e));
  }

  /**
   * Appends records to `topic`, each to the partition of its key (or round-robin without a key),
   * or all to `options.partition`. Resolves with each record's partition and offset, in input
   * order, once every partition's batch is committed. Atomic per partition, not across them: on
   * failure, batches to other partitions may have been committed.
   */
  async produce(topic: string, records: readonly ProduceRecord[], options: ProduceOptions = {}): Promise<ProduceResult[]> {
    this.assertOpen();
    if (records.length === 0) throw new InvalidArgumentError("produce needs at least one record");
    const wire = records.map((r) => this.toWire(r));
    const partitions = await this.assignPartitions(topic, wire, options.partition);
    const groups = new Map<number, number[]>();
    partitions.forEach((p, i) => {
      const indexes = groups.get(p);
      if (indexes === undefined) groups.set(p, [i]);
      else indexes.push(i);
    });
    const results = new Array<ProduceResult>(records.length);
    const outcomes = await Promise.allSettled([...groups].map(async ([partition, indexes]) => {
      const batch = this.encode(indexes.map((i) => wire[i]!), options.compression ?? this.compression, undefined);
      const base = (await this.sendBatch(topic, partition, batch, false)).baseOffset;
      indexes.forEach((i, k) => (results[i] = { partition, offset: base + k }));
    }));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return results;
  }

  /** Reads committed records of one partition from `offset` (see FetchOptions for the bounds). */
  async fetch(topic: string, partition: number, offset: number, options: FetchOptions = {}): Promise<FetchResult> {
    this.assertOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError(`offset must be a non-negative integer, got ${offset}`);
    const maxWaitMs = options.maxWaitMs ?? 0;
    const request = { topic, partition, offset, maxBytes: options.maxBytes ?? FETCH_BYTES_MAX_DEFAULT, maxWaitMs, rawBatches: true, includeExpired: options.includeExpired ?? false };
    const response = await this.dataCall("data-read", topic, partition, "Fetch", request, this.requestTimeoutMs + maxWaitMs);
    const read = { topic, partition, offset, brokerTimeMs: Number(response.brokerTimeMs ?? 0), includeExpired: options.includeExpired === true };
    const records = decodeBatches(response.batches ?? [], read);
    return { records, highWatermark: response.highWatermark, logStartOffset: response.logStartOffset, nextOffset: response.nextOffset };
  }

  /**
   * Starts an idempotent producer session (see protos/broker.proto InitProducer): a fresh producer
   * id for an empty name; for a name, its id with the next epoch, fencing older sessions of it.
   */
  async initProducer(name = ""): Promise<ProducerSession> {
    const response = await this.adminCall("admin-write", "InitProducer", { producerName: name });
    return { producerId: Number(response.producerId), producerEpoch: response.producerEpoch };
  }

  /** A batching producer (see producer.ts). close() of the client flushes and closes it. */
  producer(options: ProducerOptions = {}): Producer {
    this.assertOpen();
    const target: ProducerTarget = {
      clock: this.clock,
      partitioner: this.partitioner,
      compression: this.compression,
      partitionCount: (topic) => this.partitionCount(topic),
      toWire: (record) => this.toWire(record),
      encode: (records, compression, producer) => this.encode(records, compression, producer),
      sendBatch: (topic, partition, batch, idempotent) => this.sendBatch(topic, partition, batch, idempotent),
      initProducer: (name) => this.initProducer(name),
    };
    const producer = new Producer(target, options);
    this.producers.add(producer);
    return producer;
  }

  /**
   * A member of consumer group `options.group` consuming `options.topics` (consumer.ts): iterate it
   * with for-await or call run(handler). close() of the client closes it (commit, leave).
   */
  consumer(options: ConsumerOptions): Consumer {
    this.assertOpen();
    const consumer = new Consumer({
      groups: this.groups,
      channels: this.groupChannels,
      clock: this.clock,
      logger: this.logger,
      leaderOf: (topic, partition) => this.leaderOf(topic, partition),
      noteLeader: (topic, partition, id, address) => this.cache.peek()?.noteLeader(topic, partition, id, address),
      invalidateMetadata: () => this.cache.invalidate(),
    }, options);
    this.consumers.add(consumer);
    return consumer;
  }

  /** Every consumer group of the cluster, with its coordinator and member count. */
  listGroups(): Promise<GroupSummary[]> {
    return this.groups.listGroups();
  }

  /** A group's members, their partitions, committed offsets and lag, from its coordinator. */
  describeGroup(group: string): Promise<GroupDescription> {
    return this.groups.describeGroup(group);
  }

  /** The group's committed offsets for the partitions of `topics` (offset -1: none). */
  async groupOffsets(group: string, topics: readonly string[]): Promise<WirePartitionOffset[]> {
    return (await this.groups.coordinatorCall(group, "FetchOffsets", { group, topics: [...topics] })).offsets;
  }

  /**
   * Moves a group's committed offsets of `topic` to "earliest", "latest", `{ offset }` or
   * `{ timestampMs }` (all partitions, or `partitions`). The group must have no live members.
   */
  resetOffsets(group: string, topic: string, to: ResetTarget, partitions?: readonly number[]): Promise<WirePartitionOffset[]> {
    return this.groups.resetOffsets(group, topic, to, partitions);
  }

  /**
   * Sends `record` to `topic` as a request and resolves with the first reply (request-reply.ts):
   * the record gets a correlation id (unless it has one), a reply-to naming this client's inbox
   * and a TTL of the timeout. Rejects with TimeoutError after `timeoutMs` (default 10000).
   */
  request(topic: string, record: ProduceRecord, options: RequestOptions = {}): Promise<ConsumedRecord> {
    this.assertOpen();
    const replyTopic = options.replyTopic ?? REPLY_TOPIC_DEFAULT;
    let inbox = this.inboxes.get(replyTopic);
    if (inbox === undefined) {
      inbox = new ReplyInbox({
        groups: this.groups,
        channels: this.groupChannels,
        clock: this.clock,
        logger: this.logger,
        leaderOf: (t, p) => this.leaderOf(t, p),
        noteLeader: (t, p, id, address) => this.cache.peek()?.noteLeader(t, p, id, address),
        invalidateMetadata: () => this.cache.invalidate(),
        produce: (t, records, o) => this.produce(t, records, o),
        createTopic: (name, o) => this.createTopic(name, o),
        partitionCount: (t) => this.partitionCount(t),
        randomInt: (bound) => randomInt(0, bound),
        newId: this.newRecordId,
      }, replyTopic);
      this.inboxes.set(replyTopic, inbox);
    }
    return inbox.request(topic, record, options);
  }

  /** Answers a request received by a consumer: produces `reply` to its reply-to with its correlation id. */
  async reply(request: ConsumedRecord, reply: ProduceRecord): Promise<ProduceResult> {
    const to = replyDestination(request);
    const [result] = await this.produce(to.topic, [{ ...reply, correlationId: request.correlationId }], to.partition === undefined ? {} : { partition: to.partition });
    return result!;
  }

  /** Pending requests and whether an inbox stream is open (for monitoring and tests). */
  inboxState(): { pending: number; streaming: boolean } {
    let pending = 0;
    let streaming = false;
    for (const inbox of this.inboxes.values()) {
      const s = inbox.state();
      pending += s.pending;
      streaming ||= s.streaming;
    }
    return { pending, streaming };
  }

  /** Flushes and closes every producer and consumer, stops retries, cancels calls and closes every channel. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.producers].map((p) => p.close()));
      await Promise.allSettled([...this.consumers].map((c) => c.close()));
      for (const inbox of this.inboxes.values()) inbox.close();
      this.abort.abort(new ShuttingDownError("the client is closed"));
      this.pool.close();
      this.groupChannels.close();
    })();
    return this.closing;
  }

  /**
   * Appends one encoded batch to one partition; resolves with the offset of its first record. An
   * idempotent batch (one with a producer id) is also retried after timeouts: the partition
   * recognises a batch it already wrote and answers with the original offsets.
   */
  private async sendBatch(topic: string, partition: number, batch: Uint8Array, idempotent: boolean): Promise<{ baseOffset: number; duplicate: boolean }> {
    const request = { topic, partition, records: [], batch, timeoutMs: this.produceTimeoutMs };
    const response = await this.dataCall(idempotent ? "idempotent-write" : "data-write", topic, partition, "Produce", request, this.requestTimeoutMs);
    return { baseOffset: response.baseOffset, duplicate: response.duplicate === true };
  }

  /** A record batch v2 of `records`; InvalidArgumentError for a field the format cannot carry. */
  private encode(records: readonly WireRecord[], compression: CompressionName, producer: BatchProducer | undefined): Uint8Array {
    try {
      return encodeBatch(records.map(toProducedRecord), 0, { codec: CODEC_OF[compression], ...(producer === undefined ? {} : { producer }) });
    } catch (e) {
      if (e instanceof RangeError) throw new InvalidArgumentError(e.message, { cause: e });
      throw e;
    }
  }

  private toWire(record: ProduceRecord): WireRecord {
    return toWireRecord(record, this.newRecordId, this.clock.wallMs());
  }

  private async assignPartitions(topic: string, wire: readonly WireRecord[], explicit: number | undefined): Promise<number[]> {
    const count = await this.partitionCount(topic);
    if (explicit === undefined) return wire.map((r) => this.partitioner.partition(topic, r.key, count));
    if (!Number.isInteger(explicit) || explicit < 0) throw new InvalidArgumentError(`partition must be a non-negative integer, got ${explicit}`);
    if (explicit >= count) throw new UnknownPartitionError(`topic "${topic}" has partitions 0 to ${count - 1}; there is no partition ${explicit}`);
    return wire.map(() => explicit);
  }

  /** The number of partitions of `topic`; UnknownTopicError if fresh metadata does not have it. */
  private async partitionCount(topic: string): Promise<number> {
    this.assertOpen();
    const view = await withRetries(this.policy, this.retryDeps, () => this.viewWithTopic(topic), (e) => this.decide("read", e));
    return view.topic(topic)!.partitions.length;
  }

  /** A metadata view that has `topic`, refreshing once if the cached one does not. */
  private async viewWithTopic(topic: string): Promise<MetadataView> {
    const cached = await this.cache.get();
    if (cached.topic(topic) !== undefined) return cached;
    const fresh = await this.cache.refresh();
    if (fresh.topic(topic) !== undefined) return fresh;
    throw this.final(new UnknownTopicError(`topic "${topic}" does not exist; create it first (raftmq topic create ${topic})`));
  }

  /** The leader of a partition and its address; a retryable error when none is known. */
  private async leaderOf(topic: string, partition: number): Promise<{ id: number; address: string }> {
    let view = await this.viewWithTopic(topic);
    if (!view.topic(topic)!.partitions.some((p) => p.partition === partition)) {
      view = await this.cache.refresh();
      const count = view.topic(topic)?.partitions.length ?? 0;
      if (!view.topic(topic)?.partitions.some((p) => p.partition === partition)) {
        throw this.final(new UnknownPartitionError(`topic "${topic}" has partitions 0 to ${count - 1}; there is no partition ${partition}`));
      }
    }
    const id = view.topic(topic)!.partitions.find((p) => p.partition === partition)!.leader;
    const address = view.addressOf(id);
    if (address === undefined) throw new UnavailableError(`partition ${topic}/${partition} has no known leader yet (an election may be in progress)`);
    return { id, address };
  }

  /** One Produce or Fetch, routed to the partition leader, with redirects and bounded retries. */
  private dataCall<M extends "Produce" | "Fetch">(
    kind: OperationKind, topic: string, partition: number, method: M, request: BrokerMethods[M]["request"], timeoutMs: number,
  ): Promise<BrokerMethods[M]["response"]> {
    this.assertOpen();
    let redirect: string | undefined;
    return withRetries(this.policy, this.retryDeps, async () => {
      const address = redirect ?? (await this.leaderOf(topic, partition)).address;
      redirect = undefined;
      return this.pool.call(address, method, request, timeoutMs);
    }, (error) => {
      const decision = this.decide(kind, error);
      if (decision === "retry-now" && error instanceof BrokerError) {
        redirect = error.leaderAddress;
        if (error.leaderId !== undefined) this.cache.peek()?.noteLeader(topic, partition, error.leaderId, error.leaderAddress);
      }
      return decision;
    });
  }

  /** One administrative call: to the controller leader if known, else to the brokers in turn. */
  private adminCall<M extends BrokerMethod>(kind: OperationKind, method: M, request: BrokerMethods[M]["request"]): Promise<BrokerMethods[M]["response"]> {
    this.assertOpen();
    let redirect: string | undefined;
    return withRetries(this.policy, this.retryDeps, (n) => {
      const address = redirect ?? this.adminAddress(n);
      redirect = undefined;
      return this.pool.call(address, method, request, this.requestTimeoutMs);
    }, (error) => {
      const decision = this.decide(kind, error);
      if (decision === "retry-now" && error instanceof BrokerError) redirect = error.leaderAddress;
      return decision;
    });
  }

  /** Attempt n's target: the controller leader's address first, then the others in turn. */
  private adminAddress(attempt: number): string {
    const view = this.cache.peek();
    const controller = view?.addressOf(view.metadata.controllerLeader);
    const candidates = [...new Set([...(controller === undefined ? [] : [controller]), ...this.brokers, ...(view?.nodeAddresses() ?? [])])];
    return candidates[(attempt - 1) % candidates.length]!;
  }

  /**
   * Whether a failure is worth another attempt, and when. Any retry except a redirect to a named
   * leader also invalidates the metadata, so that the next attempt routes on fresh data.
   */
  private decide(kind: OperationKind, error: unknown): RetryDecision {
    const decision = this.classify(kind, error);
    if (decision === "retry-after-backoff") this.cache.invalidate();
    this.logger.debug({ kind, decision, err: String(error) }, "request failed");
    return decision;
  }

  private classify(kind: OperationKind, error: unknown): RetryDecision {
    if (!(error instanceof BrokerError) || this.finalErrors.has(error) || this.abort.signal.aborted) return "fail";
    switch (error.code) {
      case "NOT_LEADER":
        return error.leaderAddress !== undefined ? "retry-now" : "retry-after-backoff";
      case "UNAVAILABLE":
      case "SHUTTING_DOWN":
      case "OVERLOADED":
      case "PROPOSAL_DROPPED":
        return "retry-after-backoff";
      case "TIMEOUT":
        return kind === "read" || kind === "data-read" || kind === "idempotent-write" ? "retry-after-backoff" : "fail";
      case "UNKNOWN_TOPIC":
      case "UNKNOWN_PARTITION":
        // A broker may lag the controller; routing gives the final word on fresh metadata.
        return kind === "data-read" || kind === "data-write" || kind === "idempotent-write" ? "retry-after-backoff" : "fail";
      default:
        return "fail";
    }
  }

  private final<E extends Error>(error: E): E {
    this.finalErrors.add(error);
    return error;
  }

  private assertOpen(): void {
    if (this.abort.signal.aborted) throw new ShuttingDownError("the client is closed");
  }
}

function validateOptions(o: ClientOptions): void {
  if (o.brokers.length === 0) throw new InvalidArgumentError("brokers must name at least one host:port");
  for (const b of o.brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(b)) {
      throw new InvalidArgumentError(`brokers: "${b}" is not host:port`);
    }
  }
  const request = o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
  const produce = o.produceTimeoutMs ?? PRODUCE_TIMEOUT_MS_DEFAULT;
  if (!(produce > 0 && produce < request)) {
    throw new InvalidArgumentError(`produceTimeoutMs (${produce}) must be positive and below requestTimeoutMs (${request}), so the broker answers before the client gives up`);
  }
  if (o.compression !== undefined && !Object.hasOwn(CODEC_OF, o.compression)) {
    throw new InvalidArgumentError(`compression must be "none", "gzip" or "lz4", got ${JSON.stringify(o.compression)}`);
  }
  const retry = { ...RETRY_POLICY_DEFAULT, ...o.retry };
  if (!(retry.attemptsMax >= 1)) throw new InvalidArgumentError(`retry.attemptsMax must be at least 1, got ${retry.attemptsMax}`);
  if (!(retry.backoffInitialMs > 0 && retry.backoffInitialMs <= retry.backoffMaxMs)) {
    throw new InvalidArgumentError(`retry.backoffInitialMs (${retry.backoffInitialMs}) must be positive and at most retry.backoffMaxMs (${retry.backoffMaxMs})`);
  }
}

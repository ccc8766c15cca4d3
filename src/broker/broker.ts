/**
 * The data plane of a node: produce and fetch on the partitions this node leads, and the
 * partition view of metadata (leaders, in-sync replicas, offsets) for the ones it hosts.
 *
 * Failpoints (lib/failpoints.ts, for fault testing only): `broker/ack-before-quorum` answers a
 * produce once the batch is proposed; `broker/dedup-off` skips the idempotent producer pre-check
 * (the partition state skips deduplication too, see partition.ts).
 */
import { BrokerError, NotLeaderError } from "../lib/errors.js";
import { NO_FAILPOINTS, type Failpoints } from "../lib/failpoints.js";
import type { Clock } from "../lib/clock.js";
import type { GroupId, LogIndex, NodeId, Offset } from "../lib/ids.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { RaftStore } from "../multiraft/ports.js";
import type { MetadataState, PartitionRecord, TopicRecord } from "../controller/metadata.js";
import type { BrokerPartitions } from "./partition-manager.js";
import type { PartitionState } from "./partition.js";
import { LogCompactedError } from "../raft/index.js";
import {
  BATCH_HEADER_BYTES,
  BatchFormatError,
  HEADER_KEY_BYTES_MAX,
  HEADERS_PER_RECORD_MAX,
  PRIORITY_MAX,
  RECORD_ID_BYTES_MAX,
  RECORD_STRING_BYTES_MAX,
  RecordLimitError,
  encodeBatch,
  isExpired,
  readBatchHeader,
  recordSizeBytes,
  stampBrokerTimestamp,
  validateBatch,
  type BatchHeader,
  type BatchProducer,
  type ProducedRecord,
  type StoredRecord,
} from "./record-batch.js";
import type { StoredBatch } from "./partition.js";

export { HEADER_KEY_BYTES_MAX, HEADERS_PER_RECORD_MAX, RECORD_ID_BYTES_MAX };
export const PRODUCE_TIMEOUT_MS_DEFAULT = 10_000;
export const FETCH_BYTES_MAX_DEFAULT = 1024 * 1024;
export const FETCH_WAIT_MS_MAX = 30_000;
/** How long a fetch beyond the log end waits for the leader to confirm its end (a new leader catching up). */
const READ_POINT_TIMEOUT_MS = 2_000;
export const BATCH_RECORDS_MAX = 100_000;
/**
 * Largest stored batch (header and records, compressed or not); one Raft entry, so it must fit
 * one peer frame (transport/limits.ts).
 */
export const BATCH_BYTES_MAX = 8 * 1024 * 1024;
/** Largest records section of a batch before compression: bounds the leader's and consumers' decompression. */
export const BATCH_UNCOMPRESSED_BYTES_MAX = 32 * 1024 * 1024;

export interface ProduceResult {
  readonly baseOffset: Offset;
  readonly count: number;
  readonly brokerTimestampMs: number;
  /** The batch was a retry of one already written: the offsets are the original's. */
  readonly duplicate: boolean;
}

/** A fetched record, marked when its TTL had passed at the leader's clock. */
export type FetchedRecord = StoredRecord & { readonly expired: boolean };

export interface FetchOptions {
  /** Return stored batches (FetchResult.batches) instead of decoded records. */
  readonly rawBatches?: boolean;
  /** Return expired records (marked) instead of skipping them. */
  readonly includeExpired?: boolean;
}

export interface FetchResult {
  readonly records: readonly FetchedRecord[];
  /** With rawBatches: the stored batches, the first possibly starting below the fetch offset. */
  readonly batches: readonly StoredBatch[];
  readonly highWatermark: Offset;
  readonly logStartOffset: Offset;
  readonly nextOffset: Offset;
  /** The leader's wall clock when it answered: "now" for TTL expiry. */
  readonly brokerTimeMs: number;
}

/** What this node knows of one partition. */
export interface PartitionView {
  readonly partition: PartitionRecord;
  readonly leader: NodeId;
  readonly leaderTerm: number;
  readonly inSync: readonly NodeId[];
  readonly logStartOffset: Offset;
  readonly highWatermark: Offset;
}

export class Broker {
  /** Failpoint broker/ack-before-quorum: answer produces once proposed. */
  private readonly ackBeforeQuorum: boolean;
  /** False with failpoint broker/dedup-off: no pre-check of idempotent producers' batches. */
  private readonly dedup: boolean;

  constructor(
    private readonly metadata: MetadataState,
    private readonly partitions: BrokerPartitions,
    private readonly multiraft: MultiRaft,
    private readonly store: RaftStore,
    private readonly clock: Clock,
    private readonly addressOf: (id: NodeId) => string | undefined,
    failpoints: Failpoints = NO_FAILPOINTS,
  ) {
    this.ackBeforeQuorum = failpoints.enabled("broker/ack-before-quorum");
    this.dedup = !failpoints.enabled("broker/dedup-off");
  }

  /**
   * Appends records to a partition (the broker encodes them, uncompressed); resolves once they are
   * committed (fsynced on a quorum). With `producer`, the batch is deduplicated like a batch of an
   * idempotent producer (see produceBatch).
   */
  async produce(topicName: string, partitionNo: number, records: readonly ProducedRecord[], timeoutMs: number, producer?: BatchProducer): Promise<ProduceResult> {
    const topic = this.topic(topicName);
    const partition = this.partition(topic, partitionNo);
    validateRecords(topic, records);
    this.leaderState(partition);
    let batch: Uint8Array;
    try {
      batch = encodeBatch(records, this.clock.wallMs(), producer === undefined ? {} : { producer });
    } catch (e) {
      if (e instanceof RangeError) throw new BrokerError("INVALID_ARGUMENT", e.message, { cause: e });
      throw e;
    }
    return this.append(topic, partition, batch, readBatchHeader(batch)!, timeoutMs);
  }

  /**
   * Appends a record batch v2 built by a producer (src/format): checks it once (checksum,
   * decompression, framing, the topic's record limit), stamps the broker timestamp into it and
   * stores it as received. For an idempotent producer's batch, a retry of a batch already written
   * answers with the original offsets (duplicate) and writes nothing; a batch that does not follow
   * the previous one fails with OUT_OF_ORDER_SEQUENCE; an older epoch with PRODUCER_FENCED.
   */
  async produceBatch(topicName: string, partitionNo: number, batch: Uint8Array, timeoutMs: number): Promise<ProduceResult> {
    const topic = this.topic(topicName);
    const partition = this.partition(topic, partitionNo);
    if (batch.byteLength > BATCH_BYTES_MAX) {
      throw new BrokerError("RECORD_TOO_LARGE", `the batch is ${batch.byteLength} bytes; at most ${BATCH_BYTES_MAX} bytes per request are accepted, split it`);
    }
    let header: BatchHeader;
    try {
      header = validateBatch(batch, limitsOf(topic));
    } catch (e) {
      if (e instanceof RecordLimitError) throw new BrokerError(e.limit === "records" ? "INVALID_ARGUMENT" : "RECORD_TOO_LARGE", e.message, { cause: e });
      if (e instanceof BatchFormatError) throw new BrokerError("INVALID_ARGUMENT", `malformed record batch: ${e.message}`, { cause: e });
      throw e;
    }
    this.leaderState(partition);
    stampBrokerTimestamp(batch, this.clock.wallMs());
    return this.append(topic, partition, batch, header, timeoutMs);
  }

  /** Proposes a checked batch and answers with what applying it did. */
  private async append(topic: TopicRecord, partition: PartitionRecord, batch: Uint8Array, header: BatchHeader, timeoutMs: number): Promise<ProduceResult> {
    const state = this.leaderState(partition);
    const where = `${topic.name}/${partition.partition}`;
    if (header.producerId !== 0 && this.dedup) {
      const early = this.precheckProducer(state, header, where);
      if (early !== undefined) return early;
    }
    if (this.ackBeforeQuorum) return this.appendUnsafely(state, partition, batch, header, timeoutMs);
    const index = await this.multiraft.propose(partition.group, batch, timeoutMs);
    const outcome = state.outcomeAt(index);
    if (outcome === undefined) throw new BrokerError("UNAVAILABLE", `partition ${where}: the write was applied but its outcome is no longer known (replaced by a snapshot); retry it`);
    if (outcome.kind === "rejected") throw new BrokerError(outcome.code, `partition ${where}: ${outcome.message}`);
    return { baseOffset: outcome.baseOffset, count: outcome.count, brokerTimestampMs: outcome.brokerTimestampMs, duplicate: outcome.kind === "duplicate" };
  }

  /**
   * Failpoint broker/ack-before-quorum (a planted bug): answers as soon as the leader has proposed
   * the batch, with a tentative base offset (the partition's next offset now, which concurrent or
   * lost proposals make wrong) and the batch's record count, whether or not it ever commits. Only a
   * proposal the leader refused at once (it is settled already) fails the produce.
   */
  private async appendUnsafely(state: PartitionState, partition: PartitionRecord, batch: Uint8Array, header: BatchHeader, timeoutMs: number): Promise<ProduceResult> {
    const baseOffset = state.nextOffset;
    const proposal = this.multiraft.propose(partition.group, batch, timeoutMs);
    proposal.catch(() => undefined); // a later failure (timeout, dropped) is not reported to anyone
    // A promise that is already settled wins a race against one settled after it.
    const pending = Symbol("pending");
    await Promise.race([proposal, Promise.resolve(pending)]);
    const brokerTimestampMs = readBatchHeader(batch)?.brokerTimestampMs ?? header.brokerTimestampMs; // as stamped by this leader
    return { baseOffset, count: header.count, brokerTimestampMs, duplicate: false };
  }

  /**
   * Answers a batch of an idempotent producer without writing it when that is already certain: a
   * duplicate of a batch applied here, or an epoch older than the partition's or than the
   * producer's current epoch in this node's metadata replica (zombie fencing on partitions the new
   * epoch has not written to yet). Everything else is decided when the batch is applied.
   */
  private precheckProducer(state: PartitionState, header: BatchHeader, where: string): ProduceResult | undefined {
    const current = this.metadata.producerEpoch(header.producerId);
    if (current !== undefined && header.producerEpoch < current) {
      throw new BrokerError("PRODUCER_FENCED", `partition ${where}: producer ${header.producerId} epoch ${header.producerEpoch} is fenced by epoch ${current}`);
    }
    const decision = state.producers.check(header);
    if (decision.kind === "duplicate") {
      const b = decision.batch;
      return { baseOffset: b.baseOffset, count: b.count, brokerTimestampMs: b.brokerTimestampMs, duplicate: true };
    }
    if (decision.kind === "reject" && decision.code === "PRODUCER_FENCED") throw new BrokerError(decision.code, `partition ${where}: ${decision.message}`);
    return undefined;
  }

  /**
   * Reads committed records from `offset`, waiting up to `maxWaitMs` for new ones. Expired records
   * are skipped (or returned marked, with includeExpired); with rawBatches the stored batches are
   * returned instead, expired records left for the client to skip by brokerTimeMs.
   */
  async fetch(topicName: string, partitionNo: number, offset: number, maxBytes: number, maxWaitMs: number, options: FetchOptions = {}): Promise<FetchResult> {
    const topic = this.topic(topicName);
    const partition = this.partition(topic, partitionNo);
    const state = this.leaderState(partition);
    if (Number.isSafeInteger(offset) && offset > state.nextOffset) {
      // A new leader may not have applied everything its predecessor committed (and served) yet:
      // reach a linearizable read point before calling an offset beyond the end out of range.
      await this.readPoint(partition.group, `${topicName}/${partitionNo}`);
      this.leaderState(partition);
    }
    if (!Number.isSafeInteger(offset) || offset < state.logStartOffset || offset > state.nextOffset) {
      throw new BrokerError(
        "OFFSET_OUT_OF_RANGE",
        `offset ${offset} is out of range for ${topicName}/${partitionNo}: valid offsets are ${state.logStartOffset} to ${state.nextOffset}`,
      );
    }
    if (offset === state.nextOffset && maxWaitMs > 0) {
      await this.waitForRecords(state, offset, Math.min(maxWaitMs, FETCH_WAIT_MS_MAX));
      // The topic may have been deleted, or leadership moved, while waiting.
      this.topic(topicName);
      this.leaderState(partition);
    }
    const reader = (lo: LogIndex, hi: LogIndex, bytes: number) => this.store.readEntries(partition.group, lo, hi, bytes);
    let batches: StoredBatch[] = [];
    let stored: StoredRecord[] = [];
    try {
      if (options.rawBatches === true) batches = await state.readBatches(offset, maxBytes, reader);
      else stored = await state.read(offset, maxBytes, reader);
    } catch (e) {
      if (!(e instanceof LogCompactedError)) throw e;
      throw new BrokerError("OFFSET_OUT_OF_RANGE", `offset ${offset} of ${topicName}/${partitionNo} was deleted by retention while being read: valid offsets are ${state.logStartOffset} to ${state.nextOffset}`);
    }
    const now = this.clock.wallMs();
    const last = batches[batches.length - 1];
    const lastRecord = stored[stored.length - 1];
    const nextOffset = last !== undefined ? last.baseOffset + last.count : lastRecord !== undefined ? lastRecord.offset + 1 : offset;
    const records: FetchedRecord[] = [];
    for (const r of stored) {
      const expired = isExpired(r, now);
      if (!expired || options.includeExpired === true) records.push({ ...r, expired });
    }
    return { records, batches, highWatermark: state.nextOffset, logStartOffset: state.logStartOffset, nextOffset, brokerTimeMs: now };
  }

  private async waitForRecords(state: PartitionState, offset: Offset, waitMs: number): Promise<void> {
    const deadline = this.clock.monotonicMs() + waitMs;
    while (state.nextOffset <= offset) {
      const remaining = deadline - this.clock.monotonicMs();
      if (remaining <= 0) return;
      const wait = state.waitForApply();
      const timer = this.clock.setTimer(remaining, () => wait.cancel());
      await wait.promise;
      timer.cancel();
    }
  }

  /**
   * Retention: compacts every hosted partition up to its last batch older than the topic's
   * retention (broker time). Each replica does this on its own; a follower that falls behind the
   * new log start gets a snapshot. Returns how many partitions were compacted.
   */
  async enforceRetention(): Promise<number> {
    const now = this.clock.wallMs();
    let compacted = 0;
    for (const { topic, partition } of this.metadata.allPartitions()) {
      const state = this.partitions.state(partition.group);
      if (state === undefined) continue;
      const point = state.retentionPoint(now - topic.retentionMs);
      if (point === undefined) continue;
      const { confState, data } = state.snapshotAt(point);
      // Stop serving the records first, then delete them: a fetch never reads a half-deleted range.
      state.compactedTo(point);
      if (await this.multiraft.compactTo(partition.group, point, confState, data)) compacted++;
    }
    return compacted;
  }

  /** Partition views of a topic as this node knows them. */
  describe(topic: TopicRecord): PartitionView[] {
    return topic.partitions.map((p) => this.view(p));
  }

  private view(partition: PartitionRecord): PartitionView {
    const status = this.multiraft.status(partition.group);
    const state = this.partitions.state(partition.group);
    const inSync: NodeId[] = [];
    if (status?.role === "leader" && status.progress !== undefined) {
      for (const [id, pr] of status.progress) if (!pr.isLearner && (id === status.id || pr.match >= status.commit)) inSync.push(id);
    }
    return {
      partition,
      leader: status?.lead ?? 0,
      leaderTerm: status !== undefined && status.lead !== 0 ? status.term : 0,
      inSync: inSync.sort((a, b) => a - b),
      logStartOffset: state?.logStartOffset ?? 0,
      highWatermark: state?.nextOffset ?? 0,
    };
  }

  topic(name: string): TopicRecord {
    if (typeof name !== "string" || name.length === 0) throw new BrokerError("INVALID_ARGUMENT", "topic name is required");
    const topic = this.metadata.topics.get(name);
    if (topic === undefined) throw new BrokerError("UNKNOWN_TOPIC", `topic "${name}" does not exist; create it first (raftmq topic create ${name})`);
    return topic;
  }

  private partition(topic: TopicRecord, partitionNo: number): PartitionRecord {
    const p = topic.partitions[partitionNo];
    if (!Number.isInteger(partitionNo) || p === undefined) {
      throw new BrokerError("UNKNOWN_PARTITION", `topic "${topic.name}" has partitions 0 to ${topic.partitions.length - 1}; there is no partition ${partitionNo}`);
    }
    return p;
  }

  /** The partition's local state if this node leads it; otherwise NOT_LEADER with the leader's address. */
  /** Waits until this leader has applied everything committed before the call (ReadIndex); UNAVAILABLE when that takes too long. */
  private async readPoint(group: GroupId, where: string): Promise<void> {
    try {
      await this.multiraft.readIndex(group, READ_POINT_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof NotLeaderError) throw e;
      throw new BrokerError("UNAVAILABLE", `partition ${where}: the leader could not confirm its log end in time (${e instanceof Error ? e.message : String(e)}); retry`, { cause: e });
    }
  }

  private leaderState(partition: PartitionRecord): PartitionState {
    const group: GroupId = partition.group;
    const status = this.multiraft.status(group);
    const state = this.partitions.state(group);
    if (status?.role === "leader" && state !== undefined) return state;
    const lead = status?.lead ?? 0;
    throw new NotLeaderError(group, lead, `partition ${partition.partition} is led elsewhere`, this.addressOf(lead));
  }
}

function limitsOf(topic: TopicRecord) {
  return { maxRecordBytes: topic.maxRecordBytes, recordsMax: BATCH_RECORDS_MAX, uncompressedBytesMax: BATCH_UNCOMPRESSED_BYTES_MAX };
}

function validateRecordFields(r: ProducedRecord, i: number): void {
  if (Buffer.byteLength(r.id, "utf8") > RECORD_ID_BYTES_MAX) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i}: the id is longer than ${RECORD_ID_BYTES_MAX} bytes`);
  }
  for (const [field, value] of [["correlation id", r.correlationId], ["reply-to", r.replyTo], ["content type", r.contentType]] as const) {
    if (value !== undefined && Buffer.byteLength(value, "utf8") > RECORD_STRING_BYTES_MAX) {
      throw new BrokerError("INVALID_ARGUMENT", `record ${i}: the ${field} is longer than ${RECORD_STRING_BYTES_MAX} bytes`);
    }
  }
  const priority = r.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > PRIORITY_MAX) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i}: priority must be an integer from 0 to ${PRIORITY_MAX}, got ${priority}`);
  }
  const ttlMs = r.ttlMs ?? 0;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new BrokerError("INVALID_ARGUMENT", `record ${i}: ttl ms must be a non-negative integer, got ${ttlMs}`);
  if (r.headers.length > HEADERS_PER_RECORD_MAX) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i} has ${r.headers.length} headers; at most ${HEADERS_PER_RECORD_MAX} are allowed`);
  }
  for (const h of r.headers) {
    if (h.key.length === 0) throw new BrokerError("INVALID_ARGUMENT", `record ${i}: header keys must not be empty`);
    if (Buffer.byteLength(h.key, "utf8") > HEADER_KEY_BYTES_MAX) {
      throw new BrokerError("INVALID_ARGUMENT", `record ${i}: header key "${h.key.slice(0, 40)}..." is longer than ${HEADER_KEY_BYTES_MAX} bytes`);
    }
  }
}

function validateRecords(topic: TopicRecord, records: readonly ProducedRecord[]): void {
  if (records.length === 0) throw new BrokerError("INVALID_ARGUMENT", "a produce request needs at least one record");
  if (records.length > BATCH_RECORDS_MAX) throw new BrokerError("INVALID_ARGUMENT", `a produce request may carry at most ${BATCH_RECORDS_MAX} records, got ${records.length}; split the batch`);
  let total = BATCH_HEADER_BYTES;
  for (const [i, r] of records.entries()) {
    const size = recordSizeBytes(r);
    if (size > topic.maxRecordBytes) {
      throw new BrokerError("RECORD_TOO_LARGE", `record ${i} is ${size} bytes; topic "${topic.name}" accepts records up to ${topic.maxRecordBytes} bytes`);
    }
    validateRecordFields(r, i);
    total += size;
  }
  if (total > BATCH_BYTES_MAX) throw new BrokerError("RECORD_TOO_LARGE", `the batch is ${total} bytes; at most ${BATCH_BYTES_MAX} bytes per request are accepted, split it`);
}

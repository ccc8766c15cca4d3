/**
 * The data plane of a node: produce and fetch on the partitions this node leads, and the
 * partition view of metadata (leaders, in-sync replicas, offsets) for the ones it hosts.
 */
import { BrokerError, NotLeaderError } from "../lib/errors.js";
import type { Clock } from "../lib/clock.js";
import type { GroupId, NodeId, Offset } from "../lib/ids.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { RaftStore } from "../multiraft/ports.js";
import type { MetadataState, PartitionRecord, TopicRecord } from "../controller/metadata.js";
import type { BrokerPartitions } from "./partition-manager.js";
import type { PartitionState } from "./partition.js";
import { LogCompactedError } from "../raft/index.js";
import { encodeBatch, recordSizeBytes, type ProducedRecord, type StoredRecord } from "./record-batch.js";

export const PRODUCE_TIMEOUT_MS_DEFAULT = 10_000;
export const FETCH_BYTES_MAX_DEFAULT = 1024 * 1024;
export const FETCH_WAIT_MS_MAX = 30_000;
export const BATCH_RECORDS_MAX = 100_000;
/** Largest produce batch; one Raft entry, so it must fit one peer frame (transport/limits.ts). */
export const BATCH_BYTES_MAX = 8 * 1024 * 1024;
/** Bounds of the 16-bit length fields of the batch format, kept well below them. */
export const RECORD_ID_BYTES_MAX = 1024;
export const HEADER_KEY_BYTES_MAX = 1024;
export const HEADERS_PER_RECORD_MAX = 1024;

export interface ProduceResult {
  readonly baseOffset: Offset;
  readonly count: number;
  readonly brokerTimestampMs: number;
}

export interface FetchResult {
  readonly records: readonly StoredRecord[];
  readonly highWatermark: Offset;
  readonly logStartOffset: Offset;
  readonly nextOffset: Offset;
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
  constructor(
    private readonly metadata: MetadataState,
    private readonly partitions: BrokerPartitions,
    private readonly multiraft: MultiRaft,
    private readonly store: RaftStore,
    private readonly clock: Clock,
    private readonly addressOf: (id: NodeId) => string | undefined,
  ) {}

  /** Appends records to a partition; resolves once they are committed (fsynced on a quorum). */
  async produce(topicName: string, partitionNo: number, records: readonly ProducedRecord[], timeoutMs: number): Promise<ProduceResult> {
    const topic = this.topic(topicName);
    const partition = this.partition(topic, partitionNo);
    validateBatch(topic, records);
    const state = this.leaderState(partition);
    const brokerTimestampMs = this.clock.wallMs();
    const index = await this.multiraft.propose(partition.group, encodeBatch(records, brokerTimestampMs), timeoutMs);
    const baseOffset = state.baseOffsetAt(index);
    if (baseOffset === undefined) throw new BrokerError("UNAVAILABLE", `partition ${topicName}/${partitionNo} was compacted before the write was reported; its offset is unknown`);
    return { baseOffset, count: records.length, brokerTimestampMs };
  }

  /** Reads committed records from `offset`, waiting up to `maxWaitMs` for new ones. */
  async fetch(topicName: string, partitionNo: number, offset: number, maxBytes: number, maxWaitMs: number): Promise<FetchResult> {
    const topic = this.topic(topicName);
    const partition = this.partition(topic, partitionNo);
    const state = this.leaderState(partition);
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
    let records: StoredRecord[];
    try {
      records = await state.read(offset, maxBytes, (lo, hi, bytes) => this.store.readEntries(partition.group, lo, hi, bytes));
    } catch (e) {
      if (!(e instanceof LogCompactedError)) throw e;
      throw new BrokerError("OFFSET_OUT_OF_RANGE", `offset ${offset} of ${topicName}/${partitionNo} was deleted by retention while being read: valid offsets are ${state.logStartOffset} to ${state.nextOffset}`);
    }
    const last = records[records.length - 1];
    return { records, highWatermark: state.nextOffset, logStartOffset: state.logStartOffset, nextOffset: last === undefined ? offset : last.offset + 1 };
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
  private leaderState(partition: PartitionRecord): PartitionState {
    const group: GroupId = partition.group;
    const status = this.multiraft.status(group);
    const state = this.partitions.state(group);
    if (status?.role === "leader" && state !== undefined) return state;
    const lead = status?.lead ?? 0;
    throw new NotLeaderError(group, lead, `partition ${partition.partition} is led elsewhere`, this.addressOf(lead));
  }
}

function validateRecordFields(r: ProducedRecord, i: number): void {
  if (Buffer.byteLength(r.id, "utf8") > RECORD_ID_BYTES_MAX) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i}: the id is longer than ${RECORD_ID_BYTES_MAX} bytes`);
  }
  if (r.headers.length > HEADERS_PER_RECORD_MAX) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i} has ${r.headers.length} headers; at most ${HEADERS_PER_RECORD_MAX} are allowed`);
  }
  for (const h of r.headers) {
    if (Buffer.byteLength(h.key, "utf8") > HEADER_KEY_BYTES_MAX) {
      throw new BrokerError("INVALID_ARGUMENT", `record ${i}: header key "${h.key.slice(0, 40)}..." is longer than ${HEADER_KEY_BYTES_MAX} bytes`);
    }
  }
}

function validateBatch(topic: TopicRecord, records: readonly ProducedRecord[]): void {
  if (records.length === 0) throw new BrokerError("INVALID_ARGUMENT", "a produce request needs at least one record");
  if (records.length > BATCH_RECORDS_MAX) throw new BrokerError("INVALID_ARGUMENT", `a produce request may carry at most ${BATCH_RECORDS_MAX} records, got ${records.length}; split the batch`);
  let total = 0;
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

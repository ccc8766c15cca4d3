/**
 * The controller frontend: validates metadata requests and proposes them to the controller group.
 * It runs on every node; only the controller leader can propose, others answer NOT_LEADER with
 * the leader's address so that clients retry there.
 */
import { BrokerError, NotLeaderError } from "../lib/errors.js";
import type { NodeId } from "../lib/ids.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import { CONTROLLER_GROUP, INTERNAL_TOPIC_PREFIX, NAMED_PRODUCERS_MAX, encodeCommand, type InternalTopicKind, type MetadataCommand, type MetadataState, type TopicRecord } from "./metadata.js";

export const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
export const PARTITIONS_MAX = 10_000;
/** Must not exceed what one produce request carries (broker.ts BATCH_BYTES_MAX). */
export const RECORD_BYTES_MAX_LIMIT = 8 * 1024 * 1024;
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Producer names: up to 249 characters, no control characters; empty for an anonymous producer. */
export const PRODUCER_NAME_PATTERN = /^[^\u0000-\u001f\u007f]{0,249}$/u;

export interface CreateTopicSpec {
  readonly name: string;
  readonly partitions?: number;
  readonly replicationFactor?: number;
  readonly maxRecordBytes?: number;
  readonly retentionMs?: number;
}

export class ControllerFrontend {
  constructor(
    private readonly multiraft: MultiRaft,
    private readonly metadata: MetadataState,
    private readonly addressOf: (id: NodeId) => string | undefined,
    private readonly requestTimeoutMs: number,
  ) {}

  async createTopic(spec: CreateTopicSpec): Promise<TopicRecord> {
    const cmd = this.validateCreate(spec);
    this.requireLeader();
    if (this.metadata.topics.has(cmd.name)) throw new BrokerError("TOPIC_EXISTS", `topic "${cmd.name}" already exists`);
    const index = await this.multiraft.propose(CONTROLLER_GROUP, encodeCommand(cmd), this.requestTimeoutMs);
    const topic = this.metadata.topics.get(cmd.name);
    if (topic === undefined || topic.createdIndex !== index) {
      throw new BrokerError("TOPIC_EXISTS", `topic "${cmd.name}" was created concurrently by another request`);
    }
    return topic;
  }

  async deleteTopic(name: string): Promise<void> {
    if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name)) throw invalid(`topic name ${JSON.stringify(name)} is not valid`);
    this.requireLeader();
    if (!this.metadata.topics.has(name)) throw new BrokerError("UNKNOWN_TOPIC", `topic "${name}" does not exist`);
    await this.multiraft.propose(CONTROLLER_GROUP, encodeCommand({ op: "deleteTopic", name }), this.requestTimeoutMs);
  }

  /**
   * Starts a producer session: a fresh producer id for an empty name; for a name, its id (the same
   * for the life of the cluster) with the next epoch, which fences every older session of that
   * name. If two inits of one name race, the later one wins and the earlier answers PRODUCER_FENCED.
   */
  async initProducer(name: string): Promise<{ producerId: number; producerEpoch: number }> {
    if (typeof name !== "string" || !PRODUCER_NAME_PATTERN.test(name)) {
      throw invalid(`producer name ${JSON.stringify(name)} is not valid: use at most 249 characters, no control characters`);
    }
    this.requireLeader();
    if (name !== "" && !this.metadata.producers.has(name) && this.metadata.producers.size >= NAMED_PRODUCERS_MAX) {
      throw new BrokerError("OVERLOADED", `the cluster already has ${NAMED_PRODUCERS_MAX} named producers; reuse a name or use an anonymous producer`);
    }
    const index = await this.multiraft.propose(CONTROLLER_GROUP, encodeCommand({ op: "initProducer", name }), this.requestTimeoutMs);
    const result = this.metadata.initResult(index);
    if (result === undefined) throw new BrokerError("UNAVAILABLE", "the producer init was applied but its result is no longer known; retry");
    if (name !== "" && this.metadata.producers.get(name)?.initIndex !== index) {
      throw new BrokerError("PRODUCER_FENCED", `another session of producer "${name}" was initialized concurrently and fenced this one`);
    }
    return { producerId: result.id, producerEpoch: result.epoch };
  }

  /**
   * Creates the internal topic `name` of `kind` if this node leads the controller and the topic is
   * missing (replication min(3, nodes)); the node calls it periodically until the topic exists.
   * Returns whether it proposed; a lost race or a failed proposal is retried by the next call.
   */
  async ensureInternalTopic(name: string, kind: InternalTopicKind, partitions: number): Promise<boolean> {
    if (this.metadata.internalTopics.has(name) || this.multiraft.status(CONTROLLER_GROUP)?.role !== "leader") return false;
    const replicationFactor = Math.min(3, this.metadata.nodes.size);
    const cmd: MetadataCommand = { op: "createTopic", name, partitions, replicationFactor, maxRecordBytes: DEFAULT_MAX_RECORD_BYTES, retentionMs: DEFAULT_RETENTION_MS, kind };
    await this.multiraft.propose(CONTROLLER_GROUP, encodeCommand(cmd), this.requestTimeoutMs);
    return true;
  }

  /** The controller leader's node id (0 if unknown). */
  leader(): NodeId {
    return this.multiraft.leader(CONTROLLER_GROUP);
  }

  private requireLeader(): void {
    const status = this.multiraft.status(CONTROLLER_GROUP);
    if (status?.role === "leader") return;
    const lead = status?.lead ?? 0;
    throw new NotLeaderError(CONTROLLER_GROUP, lead, "metadata changes go to the controller leader", this.addressOf(lead));
  }

  private validateCreate(spec: CreateTopicSpec): Extract<MetadataCommand, { op: "createTopic" }> {
    const { name } = spec;
    if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name)) {
      throw invalid(`topic name ${JSON.stringify(name)} is not valid: use 1-249 characters of letters, digits, '.', '_' and '-'`);
    }
    if (name.startsWith(INTERNAL_TOPIC_PREFIX)) throw invalid(`topic name "${name}" is reserved: names starting with "${INTERNAL_TOPIC_PREFIX}" are for internal topics`);
    const partitions = spec.partitions || 1;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX) {
      throw invalid(`partitions must be an integer from 1 to ${PARTITIONS_MAX}, got ${spec.partitions}`);
    }
    const nodes = this.metadata.nodes.size;
    const replicationFactor = spec.replicationFactor || Math.min(3, nodes);
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > nodes) {
      throw invalid(`replication factor must be from 1 to the number of nodes (${nodes}), got ${spec.replicationFactor}`);
    }
    const maxRecordBytes = spec.maxRecordBytes || DEFAULT_MAX_RECORD_BYTES;
    if (!Number.isInteger(maxRecordBytes) || maxRecordBytes < 1 || maxRecordBytes > RECORD_BYTES_MAX_LIMIT) {
      throw invalid(`max record bytes must be from 1 to ${RECORD_BYTES_MAX_LIMIT}, got ${spec.maxRecordBytes}`);
    }
    const retentionMs = spec.retentionMs || DEFAULT_RETENTION_MS;
    if (!Number.isSafeInteger(retentionMs) || retentionMs < 1) throw invalid(`retention ms must be a positive integer, got ${spec.retentionMs}`);
    return { op: "createTopic", name, partitions, replicationFactor, maxRecordBytes, retentionMs };
  }
}

function invalid(message: string): BrokerError {
  return new BrokerError("INVALID_ARGUMENT", message);
}

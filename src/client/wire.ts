/**
 * The messages of protos/broker.proto as @grpc/proto-loader decodes them with
 * {@link PROTO_LOADER_OPTIONS}: camelCase field names (`keepCase: false`), 64-bit integers as
 * JavaScript numbers (`longs: Number`; exact for offsets, ids and timestamps below 2^53), bytes as
 * Buffers, and every field present (`defaults: true`). These shapes are also the client's public
 * read types; records get their own friendlier types in records.ts.
 */
import type { Options } from "@grpc/proto-loader";

/** How the client (and its fake server) load protos/broker.proto. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface WireHeader {
  key: string;
  value: Buffer | Uint8Array;
}

export interface WireRecord {
  key: Buffer | Uint8Array;
  headers: WireHeader[];
  body: Buffer | Uint8Array;
  id: string;
  producerTimestampMs: number;
  brokerTimestampMs?: number;
  offset?: number;
  correlationId?: string;
  replyTo?: string;
  contentType?: string;
  ttlMs?: number;
  priority?: number;
  /** Set on fetch (with includeExpired) when the record's TTL had passed. */
  expired?: boolean;
}

/** One partition as the answering node knows it. */
export interface PartitionInfo {
  partition: number;
  /** Node ids of the replicas; the first is the preferred leader. */
  replicas: number[];
  /** The leader's node id, 0 if unknown to the answering node. */
  leader: number;
  /** Replicas caught up with the leader (filled only by the leader). */
  inSync: number[];
  leaderTerm: number;
  /** Offset of the first retained record (filled only by nodes hosting the partition). */
  logStartOffset: number;
  /** Offset the next record will get. */
  highWatermark: number;
}

export interface TopicInfo {
  name: string;
  /** Unique for the life of the cluster: a re-created topic gets a new id. */
  id: number;
  replicationFactor: number;
  maxRecordBytes: number;
  partitions: PartitionInfo[];
  /** How long records are kept, in ms (absent from brokers that do not report it). */
  retentionMs?: number;
}

export interface NodeInfo {
  id: number;
  /** host:port for clients. */
  address: string;
  /** Whether the node votes in the controller group. */
  controller: boolean;
}

/** The cluster as one node knows it. */
export interface ClusterMetadata {
  clusterId: string;
  /** The node that answered. */
  nodeId: number;
  nodes: NodeInfo[];
  /** Leader of the controller group, 0 if unknown. */
  controllerLeader: number;
  topics: TopicInfo[];
}

export interface CreateTopicRequest {
  name: string;
  partitions: number;
  replicationFactor: number;
  maxRecordBytes: number;
  /** 0: the broker's default. */
  retentionMs?: number;
}

export interface ProduceRequest {
  topic: string;
  partition: number;
  /** Records for the broker to encode, or empty when `batch` is set. */
  records: WireRecord[];
  timeoutMs: number;
  /** A record batch v2 (src/format) built by the client. */
  batch?: Buffer | Uint8Array;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
}

export interface ProduceResponse {
  baseOffset: number;
  count: number;
  brokerTimestampMs: number;
  /** The batch was a retry of one already written; the offsets are the original's. */
  duplicate?: boolean;
}

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  maxWaitMs: number;
  /** Return stored batches instead of decoded records. */
  rawBatches?: boolean;
  /** Return expired records, marked, instead of skipping them. */
  includeExpired?: boolean;
}

/** A stored batch and the offset of its first record. */
export interface WireBatch {
  baseOffset: number;
  data: Buffer | Uint8Array;
}

export interface FetchResponse {
  records: WireRecord[];
  highWatermark: number;
  logStartOffset: number;
  nextOffset: number;
  /** With rawBatches. */
  batches?: WireBatch[];
  /** The leader's wall clock when it answered (Unix ms), for TTL expiry. */
  brokerTimeMs?: number;
}

export interface InitProducerResponse {
  producerId: number;
  producerEpoch: number;
}

/** Request and response types of every Broker method, keyed by the method's proto name. */
export interface BrokerMethods {
  CreateTopic: { request: CreateTopicRequest; response: { topic: TopicInfo } };
  DeleteTopic: { request: { name: string }; response: Record<string, never> };
  ListTopics: { request: Record<string, never>; response: { topics: TopicInfo[] } };
  DescribeTopic: { request: { name: string }; response: { topic: TopicInfo } };
  Metadata: { request: { topics: string[] }; response: ClusterMetadata };
  Produce: { request: ProduceRequest; response: ProduceResponse };
  Fetch: { request: FetchRequest; response: FetchResponse };
  InitProducer: { request: { producerName: string }; response: InitProducerResponse };
}

export type BrokerMethod = keyof BrokerMethods;

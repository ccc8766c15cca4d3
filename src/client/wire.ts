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
  records: WireRecord[];
  timeoutMs: number;
}

export interface ProduceResponse {
  baseOffset: number;
  count: number;
  brokerTimestampMs: number;
}

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  maxWaitMs: number;
}

export interface FetchResponse {
  records: WireRecord[];
  highWatermark: number;
  logStartOffset: number;
  nextOffset: number;
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
}

export type BrokerMethod = keyof BrokerMethods;

/**
 * The gRPC handlers of protos/broker.proto: decode and validate requests, call the controller
 * frontend or the broker, encode answers, and map every failure to a status with trailers.
 * A handler never throws out: bad input gets a clear error, never a crashed node.
 */
import { randomUUID } from "node:crypto";
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { BrokerError } from "../lib/errors.js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Broker, PartitionView } from "../broker/broker.js";
import { FETCH_BYTES_MAX_DEFAULT, PRODUCE_TIMEOUT_MS_DEFAULT } from "../broker/broker.js";
import type { FetchedRecord } from "../broker/broker.js";
import type { BatchProducer, ProducedRecord } from "../broker/record-batch.js";
import type { StoredBatch } from "../broker/partition.js";
import type { ControllerFrontend } from "../controller/frontend.js";
import type { MetadataState, TopicRecord } from "../controller/metadata.js";
import { unary } from "./unary.js";

const RECORD_ID_CHARS_MAX = 256;
const PRODUCE_TIMEOUT_MS_MAX = 120_000;
const FETCH_BYTES_MAX = 64 * 1024 * 1024;

/* Wire shapes as @grpc/proto-loader decodes them (keepCase: false, longs: Number, defaults: true). */
interface WireHeader {
  key: string;
  value: Buffer;
}
interface WireRecord {
  key: Buffer;
  headers: WireHeader[];
  body: Buffer;
  id: string;
  producerTimestampMs: number;
  brokerTimestampMs?: number;
  offset?: number;
  correlationId: string;
  replyTo: string;
  contentType: string;
  ttlMs: number;
  priority: number;
  expired?: boolean;
}
interface ProduceRequest {
  topic: string;
  partition: number;
  records: WireRecord[];
  timeoutMs: number;
  batch: Buffer;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}
interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  maxWaitMs: number;
  rawBatches: boolean;
  includeExpired: boolean;
}

export interface BrokerServiceDeps {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly metadata: MetadataState;
  readonly frontend: ControllerFrontend;
  readonly broker: Broker;
  readonly controllerVoters: () => readonly NodeId[];
  /** Rejects requests while the node shuts down. */
  readonly accepting: () => boolean;
  readonly log: Logger;
}

export function brokerServiceImplementation(deps: BrokerServiceDeps): UntypedServiceImplementation {
  const { frontend, broker, metadata } = deps;
  return {
    CreateTopic: unary(deps, async (req: { name: string; partitions: number; replicationFactor: number; maxRecordBytes: number; retentionMs: number }) => {
      const topic = await frontend.createTopic(req);
      return { topic: topicInfo(topic, broker.describe(topic)) };
    }),
    DeleteTopic: unary(deps, async (req: { name: string }) => {
      await frontend.deleteTopic(req.name);
      return {};
    }),
    ListTopics: unary(deps, async () => ({ topics: [...metadata.topics.values()].map((t) => topicInfo(t, broker.describe(t))) })),
    DescribeTopic: unary(deps, async (req: { name: string }) => {
      const topic = broker.topic(req.name);
      return { topic: topicInfo(topic, broker.describe(topic)) };
    }),
    Metadata: unary(deps, async (req: { topics: string[] }) => metadataResponse(deps, req.topics)),
    Produce: unary(deps, async (req: ProduceRequest) => {
      const timeoutMs = req.timeoutMs > 0 ? Math.min(req.timeoutMs, PRODUCE_TIMEOUT_MS_MAX) : PRODUCE_TIMEOUT_MS_DEFAULT;
      const records = req.records ?? [];
      const batch = req.batch ?? Buffer.alloc(0);
      if (batch.byteLength > 0 && records.length > 0) throw new BrokerError("INVALID_ARGUMENT", "a produce request carries records or a batch, not both");
      const result = batch.byteLength > 0
        ? await broker.produceBatch(req.topic, req.partition, batch, timeoutMs)
        : await broker.produce(req.topic, req.partition, records.map(toProduced), timeoutMs, producerOf(req));
      return { baseOffset: result.baseOffset, count: result.count, brokerTimestampMs: result.brokerTimestampMs, duplicate: result.duplicate };
    }),
    Fetch: unary(deps, async (req: FetchRequest) => {
      const maxBytes = req.maxBytes > 0 ? Math.min(req.maxBytes, FETCH_BYTES_MAX) : FETCH_BYTES_MAX_DEFAULT;
      const result = await broker.fetch(req.topic, req.partition, Number(req.offset), maxBytes, req.maxWaitMs, { rawBatches: req.rawBatches, includeExpired: req.includeExpired });
      return {
        records: result.records.map(toWire),
        batches: result.batches.map(toWireBatch),
        highWatermark: result.highWatermark,
        logStartOffset: result.logStartOffset,
        nextOffset: result.nextOffset,
        brokerTimeMs: result.brokerTimeMs,
      };
    }),
    InitProducer: unary(deps, async (req: { producerName: string }) => frontend.initProducer(req.producerName ?? "")),
  };
}

/** The idempotent producer fields of a `records` produce, if set. */
function producerOf(req: ProduceRequest): BatchProducer | undefined {
  const producerId = Number(req.producerId ?? 0);
  if (producerId === 0) return undefined;
  if (!Number.isSafeInteger(producerId) || producerId < 0) throw new BrokerError("INVALID_ARGUMENT", `producer_id ${req.producerId} is not valid`);
  return { producerId, producerEpoch: req.producerEpoch ?? 0, baseSequence: req.baseSequence ?? 0 };
}

function metadataResponse(deps: BrokerServiceDeps, names: readonly string[]) {
  const { metadata, broker } = deps;
  const voters = new Set(deps.controllerVoters());
  const topics = names.length === 0 ? [...metadata.topics.values()] : names.map((n) => broker.topic(n));
  return {
    clusterId: deps.clusterId,
    nodeId: deps.nodeId,
    nodes: [...metadata.nodes.values()].map((n) => ({ id: n.id, address: n.address, controller: voters.has(n.id) })),
    controllerLeader: deps.frontend.leader(),
    topics: topics.map((t) => topicInfo(t, broker.describe(t))),
  };
}

function topicInfo(topic: TopicRecord, views: readonly PartitionView[]) {
  return {
    name: topic.name,
    id: topic.id,
    replicationFactor: topic.replicationFactor,
    maxRecordBytes: topic.maxRecordBytes,
    retentionMs: topic.retentionMs,
    partitions: views.map((v) => ({
      partition: v.partition.partition,
      replicas: v.partition.replicas,
      leader: v.leader,
      inSync: v.inSync,
      leaderTerm: v.leaderTerm,
      logStartOffset: v.logStartOffset,
      highWatermark: v.highWatermark,
    })),
  };
}

function toProduced(r: WireRecord, i: number): ProducedRecord {
  const id = r.id === "" ? randomUUID() : r.id;
  if (id.length > RECORD_ID_CHARS_MAX) throw new BrokerError("INVALID_ARGUMENT", `record ${i}: id is ${id.length} characters; at most ${RECORD_ID_CHARS_MAX} are allowed`);
  const producerTimestampMs = Number(r.producerTimestampMs ?? 0);
  if (!Number.isSafeInteger(producerTimestampMs) || producerTimestampMs < 0) {
    throw new BrokerError("INVALID_ARGUMENT", `record ${i}: producer_timestamp_ms must be a non-negative Unix time in ms`);
  }
  for (const h of r.headers ?? []) {
    if (h.key.length === 0) throw new BrokerError("INVALID_ARGUMENT", `record ${i}: header keys must not be empty`);
  }
  const ttlMs = Number(r.ttlMs ?? 0);
  if (!Number.isSafeInteger(ttlMs)) throw new BrokerError("INVALID_ARGUMENT", `record ${i}: ttl_ms must be below 2^53`);
  return {
    id,
    key: r.key ?? Buffer.alloc(0),
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value ?? Buffer.alloc(0) })),
    body: r.body ?? Buffer.alloc(0),
    producerTimestampMs,
    correlationId: r.correlationId ?? "",
    replyTo: r.replyTo ?? "",
    contentType: r.contentType ?? "",
    ttlMs,
    priority: r.priority ?? 0,
  };
}

export function toWire(r: FetchedRecord): WireRecord {
  return {
    key: asBuffer(r.key),
    headers: r.headers.map((h) => ({ key: h.key, value: asBuffer(h.value) })),
    body: asBuffer(r.body),
    id: r.id,
    producerTimestampMs: r.producerTimestampMs,
    brokerTimestampMs: r.brokerTimestampMs,
    offset: r.offset,
    correlationId: r.correlationId,
    replyTo: r.replyTo,
    contentType: r.contentType,
    ttlMs: r.ttlMs,
    priority: r.priority,
    expired: r.expired,
  };
}

/** The wire form of a stored batch (RecordBatch), sharing its bytes. */
export function toWireBatch(b: StoredBatch): { baseOffset: number; data: Buffer } {
  return { baseOffset: b.baseOffset, data: asBuffer(b.data) };
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

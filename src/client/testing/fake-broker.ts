/**
 * An in-process fake of a raftmq cluster for client and CLI tests: one gRPC server per fake node
 * on 127.0.0.1, all sharing one in-memory state (topics, partition logs, leaders). It implements
 * protos/broker.proto with the real contract's errors and trailers: Produce and Fetch on a node
 * that does not lead the partition answer FAILED_PRECONDITION with `raftmq-error-code: NOT_LEADER`
 * and the leader's id and address; administration is answered by any node.
 *
 * Tests steer it: setLeader() moves a partition, failNext() injects faults (an error code with or
 * without trailers, a delay), and `requests` records every call for assertions.
 */
import * as grpc from "@grpc/grpc-js";
import type { ErrorCode } from "../../lib/errors.js";
import { TRAILER_CODE, TRAILER_LEADER_ADDRESS, TRAILER_LEADER_ID } from "../errors.js";
import { decodeBatch, encodeBatch, readBatchHeader } from "../../format/index.js";
import { brokerServiceDefinition } from "../proto.js";
import { toProducedRecord } from "../records.js";
import type { BrokerMethod, ClusterMetadata, FetchRequest, ProduceRequest, TopicInfo, WireRecord } from "../wire.js";

/** The records of a Produce request as the fake received them: `records`, or the decoded `batch`. */
export function recordsOf(request: ProduceRequest): WireRecord[] {
  const batch = request.batch;
  if (batch === undefined || batch.length === 0) return request.records;
  return decodeBatch(batch, 0).map((r) => ({
    key: Buffer.from(r.key),
    headers: r.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value) })),
    body: Buffer.from(r.body),
    id: r.id,
    producerTimestampMs: r.producerTimestampMs,
    correlationId: r.correlationId,
    replyTo: r.replyTo,
    contentType: r.contentType,
    ttlMs: r.ttlMs,
    priority: r.priority,
  }));
}

/** A failure to inject into matching requests. */
export interface FakeFault {
  /** The `raftmq-error-code` trailer (omitted with `noTrailer`). */
  readonly code?: ErrorCode | string;
  /** gRPC status; default: the status the real server uses for `code`. */
  readonly status?: grpc.status;
  readonly message?: string;
  readonly leaderId?: number;
  readonly leaderAddress?: string;
  /** Send the status without any raftmq trailer. */
  readonly noTrailer?: boolean;
  /** Wait this long before answering (with the error, or normally when no code/status is set). */
  readonly delayMs?: number;
}

export interface RecordedRequest {
  readonly node: number;
  readonly method: BrokerMethod;
  readonly request: any;
}

export interface FakeClusterOptions {
  /** Number of nodes (ids 1..n, ports chosen by the OS), or fixed addresses by id. Default 1. */
  readonly nodes?: number | ReadonlyMap<number, string>;
  /** Which nodes get a server in this process. Default: all. */
  readonly serve?: readonly number[];
  readonly clusterId?: string;
  /** Default 1. */
  readonly controllerLeader?: number;
}

interface FakePartition {
  replicas: number[];
  leader: number;
  log: WireRecord[];
  waiters: Set<() => void>;
  /** Idempotent producers: per producer id, the epoch, the last sequence and the last batch (a simplified partition dedup). */
  producers: Map<number, { epoch: number; lastSequence: number; lastBase: number; lastCount: number; lastOffset: number }>;
}

interface FakeTopic {
  name: string;
  id: number;
  replicationFactor: number;
  maxRecordBytes: number;
  partitions: FakePartition[];
}

interface QueuedFault {
  readonly method: BrokerMethod;
  readonly node: number | undefined;
  remaining: number;
  readonly fault: FakeFault;
}

const STATUS_OF_CODE: Record<string, grpc.status> = {
  NOT_LEADER: grpc.status.FAILED_PRECONDITION,
  PROPOSAL_DROPPED: grpc.status.ABORTED,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  OVERLOADED: grpc.status.RESOURCE_EXHAUSTED,
  UNKNOWN_TOPIC: grpc.status.NOT_FOUND,
  TOPIC_EXISTS: grpc.status.ALREADY_EXISTS,
  UNKNOWN_PARTITION: grpc.status.NOT_FOUND,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  RECORD_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  OFFSET_OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  OUT_OF_ORDER_SEQUENCE: grpc.status.ABORTED,
  PRODUCER_FENCED: grpc.status.FAILED_PRECONDITION,
};

const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
const MAX_RECORD_BYTES_DEFAULT = 1024 * 1024;
const FETCH_BYTES_DEFAULT = 1024 * 1024;

/** A raftmq error as the fake answers it. */
class FakeError extends Error {
  constructor(readonly code: string, message: string, readonly leaderId?: number, readonly leaderAddress?: string) {
    super(message);
  }
}

export class FakeCluster {
  readonly requests: RecordedRequest[] = [];
  controllerLeader: number;
  readonly clusterId: string;
  private readonly addresses = new Map<number, string>();
  private readonly servers = new Map<number, grpc.Server>();
  private readonly topics = new Map<string, FakeTopic>();
  private readonly faults: QueuedFault[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private nextTopicId = 1;
  private nextProducerId = 1;
  private readonly producerNames = new Map<string, { id: number; epoch: number }>();

  private constructor(options: FakeClusterOptions) {
    this.clusterId = options.clusterId ?? "fake";
    this.controllerLeader = options.controllerLeader ?? 1;
  }

  /** Starts the fake nodes' servers and resolves once all are listening. */
  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const cluster = new FakeCluster(options);
    const nodes = options.nodes ?? 1;
    const fixed = typeof nodes === "number" ? undefined : nodes;
    const ids = fixed === undefined ? Array.from({ length: nodes as number }, (_, i) => i + 1) : [...fixed.keys()];
    for (const id of ids) cluster.addresses.set(id, fixed?.get(id) ?? "");
    for (const id of options.serve ?? ids) await cluster.serve(id, fixed?.get(id) ?? "127.0.0.1:0");
    return cluster;
  }

  /** Node ids and addresses. */
  get nodes(): ReadonlyArray<{ id: number; address: string }> {
    return [...this.addresses].map(([id, address]) => ({ id, address }));
  }

  /** Every node's address, in id order. */
  brokers(): string[] {
    return [...this.addresses.values()];
  }

  addressOf(id: number): string {
    return this.addresses.get(id) ?? "";
  }

  /** Creates a topic directly (no request); leaders default to each partition's first replica. */
  addTopic(name: string, partitions = 1, replicationFactor = Math.min(3, this.addresses.size)): TopicInfo {
    const ids = [...this.addresses.keys()].sort((a, b) => a - b);
    const topic: FakeTopic = { name, id: this.nextTopicId++, replicationFactor, maxRecordBytes: MAX_RECORD_BYTES_DEFAULT, partitions: [] };
    for (let p = 0; p < partitions; p++) {
      const replicas = Array.from({ length: replicationFactor }, (_, k) => ids[(p + k) % ids.length]!);
      topic.partitions.push({ replicas, leader: replicas[0]!, log: [], waiters: new Set(), producers: new Map() });
    }
    this.topics.set(name, topic);
    return this.topicInfo(topic);
  }

  /** Moves a partition's leadership (0: no leader). */
  setLeader(topic: string, partition: number, leader: number): void {
    this.partitionOf(topic, partition).leader = leader;
  }

  /** Sets the partition's max record size. */
  setMaxRecordBytes(topic: string, bytes: number): void {
    this.topicOf(topic).maxRecordBytes = bytes;
  }

  /** The records stored in a partition, in offset order. */
  records(topic: string, partition: number): readonly WireRecord[] {
    return this.partitionOf(topic, partition).log;
  }

  /** Requests of one method, optionally to one node. */
  requestsOf(method: BrokerMethod, node?: number): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && (node === undefined || r.node === node));
  }

  /** Answers the next `times` requests of `method` (to `node`, if given) with `fault`. */
  failNext(method: BrokerMethod, fault: FakeFault, options: { node?: number; times?: number } = {}): void {
    this.faults.push({ method, node: options.node, remaining: options.times ?? 1, fault });
  }

  /** Stops every server at once and releases long polls. */
  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const topic of this.topics.values()) for (const p of topic.partitions) for (const w of p.waiters) w();
    for (const server of this.servers.values()) server.forceShutdown();
    this.servers.clear();
  }

  /** Stops one node's server (as if it crashed); its address stays in the metadata. */
  stopNode(id: number): void {
    this.servers.get(id)?.forceShutdown();
    this.servers.delete(id);
  }

  private async serve(id: number, listen: string): Promise<void> {
    const server = new grpc.Server();
    server.addService(brokerServiceDefinition(), this.handlers(id));
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.addresses.set(id, listen.endsWith(":0") ? `127.0.0.1:${port}` : listen);
    this.servers.set(id, server);
  }

  private handlers(node: number): grpc.UntypedServiceImplementation {
    const wrap = (method: BrokerMethod, fn: (req: any) => unknown) => this.unary(node, method, fn);
    return {
      CreateTopic: wrap("CreateTopic", (req) => ({ topic: this.createTopic(req) })),
      DeleteTopic: wrap("DeleteTopic", (req) => this.deleteTopic(req.name)),
      ListTopics: wrap("ListTopics", () => ({ topics: [...this.topics.values()].map((t) => this.topicInfo(t)) })),
      DescribeTopic: wrap("DescribeTopic", (req) => ({ topic: this.topicInfo(this.topicOf(req.name)) })),
      Metadata: wrap("Metadata", (req) => this.metadata(node, req.topics)),
      Produce: wrap("Produce", (req) => this.produce(node, req)),
      Fetch: wrap("Fetch", (req) => this.fetch(node, req)),
      InitProducer: wrap("InitProducer", (req) => this.initProducer(req.producerName)),
    };
  }

  private unary(node: number, method: BrokerMethod, fn: (req: any) => unknown) {
    return (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>): void => {
      this.requests.push({ node, method, request: call.request });
      const fault = this.takeFault(method, node);
      const run = async (): Promise<unknown> => {
        if (fault?.delayMs !== undefined) await this.delay(fault.delayMs);
        if (fault !== undefined && (fault.code !== undefined || fault.status !== undefined)) throw fault;
        return fn(call.request);
      };
      run().then(
        (res) => callback(null, res),
        (e: unknown) => callback(this.toStatus(e) as grpc.ServiceError),
      );
    };
  }

  private takeFault(method: BrokerMethod, node: number): FakeFault | undefined {
    const i = this.faults.findIndex((f) => f.method === method && (f.node === undefined || f.node === node));
    if (i < 0) return undefined;
    const queued = this.faults[i]!;
    if (--queued.remaining <= 0) this.faults.splice(i, 1);
    return queued.fault;
  }

  private toStatus(e: unknown): Partial<grpc.ServiceError> {
    const metadata = new grpc.Metadata();
    if (e instanceof FakeError) {
      metadata.set(TRAILER_CODE, e.code);
      if (e.leaderId !== undefined && e.leaderId > 0) metadata.set(TRAILER_LEADER_ID, String(e.leaderId));
      if (e.leaderAddress) metadata.set(TRAILER_LEADER_ADDRESS, e.leaderAddress);
      return { code: STATUS_OF_CODE[e.code] ?? grpc.status.INTERNAL, details: e.message, metadata };
    }
    if (e instanceof Error) return { code: grpc.status.INTERNAL, details: e.message, metadata };
    const fault = e as FakeFault;
    if (!fault.noTrailer && fault.code !== undefined) metadata.set(TRAILER_CODE, fault.code);
    if (!fault.noTrailer && fault.leaderId !== undefined) metadata.set(TRAILER_LEADER_ID, String(fault.leaderId));
    if (!fault.noTrailer && fault.leaderAddress !== undefined) metadata.set(TRAILER_LEADER_ADDRESS, fault.leaderAddress);
    const code = fault.status ?? STATUS_OF_CODE[fault.code ?? ""] ?? grpc.status.INTERNAL;
    return { code, details: fault.message ?? `injected ${fault.code ?? grpc.status[code]}`, metadata };
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private metadata(node: number, names: string[]): ClusterMetadata {
    const topics = names.length === 0 ? [...this.topics.values()] : names.map((n) => this.topicOf(n));
    const ids = [...this.addresses.keys()].sort((a, b) => a - b);
    return {
      clusterId: this.clusterId,
      nodeId: node,
      nodes: ids.map((id, i) => ({ id, address: this.addresses.get(id)!, controller: i < 3 })),
      controllerLeader: this.controllerLeader,
      topics: topics.map((t) => this.topicInfo(t)),
    };
  }

  private createTopic(req: { name: string; partitions: number; replicationFactor: number; maxRecordBytes: number }): TopicInfo {
    if (!TOPIC_NAME_PATTERN.test(req.name)) throw new FakeError("INVALID_ARGUMENT", `topic name ${JSON.stringify(req.name)} is not valid`);
    if (this.topics.has(req.name)) throw new FakeError("TOPIC_EXISTS", `topic "${req.name}" already exists`);
    const partitions = req.partitions || 1;
    if (partitions > 10_000) throw new FakeError("INVALID_ARGUMENT", `partitions must be from 1 to 10000, got ${partitions}`);
    const rf = req.replicationFactor || Math.min(3, this.addresses.size);
    if (rf > this.addresses.size) throw new FakeError("INVALID_ARGUMENT", `replication factor must be from 1 to the number of nodes (${this.addresses.size}), got ${rf}`);
    const info = this.addTopic(req.name, partitions, rf);
    if (req.maxRecordBytes > 0) this.setMaxRecordBytes(req.name, req.maxRecordBytes);
    return { ...info, maxRecordBytes: this.topicOf(req.name).maxRecordBytes };
  }

  private deleteTopic(name: string): object {
    const topic = this.topicOf(name);
    for (const p of topic.partitions) for (const w of p.waiters) w();
    this.topics.delete(name);
    return {};
  }

  private initProducer(name: string): object {
    if (name === "") return { producerId: this.nextProducerId++, producerEpoch: 0 };
    const known = this.producerNames.get(name);
    const next = known === undefined ? { id: this.nextProducerId++, epoch: 0 } : { id: known.id, epoch: known.epoch + 1 };
    this.producerNames.set(name, next);
    return { producerId: next.id, producerEpoch: next.epoch };
  }

  private produce(node: number, req: ProduceRequest): object {
    const p = this.leaderPartition(node, req.topic, req.partition);
    const records = recordsOf(req);
    if (records.length === 0) throw new FakeError("INVALID_ARGUMENT", "a produce request needs at least one record");
    const max = this.topicOf(req.topic).maxRecordBytes;
    records.forEach((r, i) => {
      const size = r.key.length + r.body.length + r.headers.reduce((n, h) => n + h.key.length + h.value.length, 0);
      if (size > max) throw new FakeError("RECORD_TOO_LARGE", `record ${i} is ${size} bytes; topic "${req.topic}" accepts records up to ${max} bytes`);
    });
    const now = Date.now();
    const header = req.batch !== undefined && req.batch.length > 0 ? readBatchHeader(req.batch)! : undefined;
    if (header !== undefined && header.producerId !== 0) {
      const known = p.producers.get(header.producerId);
      if (known !== undefined && header.producerEpoch < known.epoch) throw new FakeError("PRODUCER_FENCED", `producer ${header.producerId} is fenced`);
      if (known !== undefined && header.producerEpoch === known.epoch) {
        if (header.baseSequence === known.lastBase && header.count === known.lastCount) {
          return { baseOffset: known.lastOffset, count: header.count, brokerTimestampMs: now, duplicate: true };
        }
        if (header.baseSequence !== known.lastSequence + 1) throw new FakeError("OUT_OF_ORDER_SEQUENCE", `expected sequence ${known.lastSequence + 1}, got ${header.baseSequence}`);
      }
      p.producers.set(header.producerId, {
        epoch: header.producerEpoch, lastSequence: header.baseSequence + header.count - 1, lastBase: header.baseSequence, lastCount: header.count, lastOffset: p.log.length,
      });
    }
    const baseOffset = p.log.length;
    for (const r of records) p.log.push({ ...r, brokerTimestampMs: now, offset: p.log.length });
    for (const w of p.waiters) w();
    return { baseOffset, count: records.length, brokerTimestampMs: now };
  }

  private async fetch(node: number, req: FetchRequest): Promise<object> {
    const p = this.leaderPartition(node, req.topic, req.partition);
    if (req.offset > p.log.length) {
      throw new FakeError("OFFSET_OUT_OF_RANGE", `offset ${req.offset} is beyond the high watermark ${p.log.length}`);
    }
    if (req.offset === p.log.length && req.maxWaitMs > 0) await this.waitForRecords(p, req.maxWaitMs);
    const maxBytes = req.maxBytes || FETCH_BYTES_DEFAULT;
    const records: WireRecord[] = [];
    let bytes = 0;
    for (let o = req.offset; o < p.log.length; o++) {
      const r = p.log[o]!;
      bytes += r.key.length + r.body.length;
      if (records.length > 0 && bytes > maxBytes) break;
      records.push(r);
    }
    const page = { highWatermark: p.log.length, logStartOffset: 0, nextOffset: req.offset + records.length, brokerTimeMs: Date.now() };
    // Raw batches: one single-record batch per record (the real broker returns batches as produced).
    if (req.rawBatches) return { records: [], batches: records.map((r) => ({ baseOffset: r.offset, data: encodeBatch([toProducedRecord(r)], r.brokerTimestampMs ?? 0) })), ...page };
    return { records, ...page };
  }

  private waitForRecords(p: FakePartition, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.timers.delete(t);
        p.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, maxWaitMs);
      this.timers.add(t);
      p.waiters.add(done);
    });
  }

  private leaderPartition(node: number, topic: string, partition: number): FakePartition {
    const p = this.partitionOf(topic, partition);
    if (p.leader !== node) {
      const address = p.leader > 0 ? this.addresses.get(p.leader) : undefined;
      throw new FakeError("NOT_LEADER", `node ${node} does not lead ${topic}/${partition}`, p.leader, address);
    }
    return p;
  }

  private topicOf(name: string): FakeTopic {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new FakeError("UNKNOWN_TOPIC", `topic "${name}" does not exist`);
    return topic;
  }

  private partitionOf(topic: string, partition: number): FakePartition {
    const t = this.topicOf(topic);
    const p = t.partitions[partition];
    if (p === undefined) throw new FakeError("UNKNOWN_PARTITION", `topic "${topic}" has no partition ${partition}`);
    return p;
  }

  private topicInfo(t: FakeTopic): TopicInfo {
    return {
      name: t.name,
      id: t.id,
      replicationFactor: t.replicationFactor,
      maxRecordBytes: t.maxRecordBytes,
      partitions: t.partitions.map((p, i) => ({
        partition: i,
        replicas: [...p.replicas],
        leader: p.leader,
        inSync: [...p.replicas],
        leaderTerm: 1,
        logStartOffset: 0,
        highWatermark: p.log.length,
      })),
    };
  }
}

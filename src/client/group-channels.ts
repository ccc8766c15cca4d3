/**
 * gRPC clients of protos/consumer.proto, one per service and broker address (grpc-js shares the
 * underlying connection with the Broker service's client of the same address). Unary calls have
 * a per-attempt timeout on the injected Clock and fail with the errors of errors.ts; Consume
 * streams are opened here and cancelled by close().
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Clock } from "../lib/clock.js";
import { STREAM_WINDOW_BYTES } from "../lib/flow-control.js";
import { unaryCall, type UnaryMethod } from "./channels.js";
import { ShuttingDownError } from "./errors.js";
import { PROTO_LOADER_OPTIONS, type WireBatch, type WireRecord } from "./wire.js";

/** Absolute path of protos/ (this file is compiled to dist/src/client/). */
const PROTOS_DIR = fileURLToPath(new URL("../../../protos/", import.meta.url));

export interface WireTopicPartition {
  topic: string;
  partition: number;
}
export interface WirePartitionOffset extends WireTopicPartition {
  offset: number;
}

export interface GroupMethods {
  Heartbeat: {
    request: { group: string; memberId: string; clientId: string; topics: string[]; owned: WireTopicPartition[]; sessionTimeoutMs: number };
    response: { memberId: string; generation: number; assigned: WireTopicPartition[]; revoke: WireTopicPartition[]; pending: WireTopicPartition[]; heartbeatIntervalMs: number };
  };
  LeaveGroup: { request: { group: string; memberId: string }; response: Record<string, never> };
  CommitOffsets: { request: { group: string; memberId: string; offsets: WirePartitionOffset[] }; response: { offsets: WirePartitionOffset[] } };
  FetchOffsets: { request: { group: string; topics: string[] }; response: { offsets: WirePartitionOffset[] } };
  ListGroups: {
    request: Record<string, never>;
    response: { groups: { group: string; coordinator: number; members: number }[]; offsetsPartitions: number[]; offsetsPartitionCount: number };
  };
  DescribeGroup: { request: { group: string }; response: GroupDescription };
  ResetOffsets: { request: { group: string; offsets: WirePartitionOffset[] }; response: { offsets: WirePartitionOffset[] } };
}
export type GroupMethod = keyof GroupMethods;

export interface SubscriptionMethods {
  ListOffsets: {
    request: { topic: string; partition: number; timestampMs: number };
    response: { logStartOffset: number; highWatermark: number; offsetForTimestamp: number };
  };
}

/** A group as its coordinator describes it (DescribeGroupResponse). */
export interface GroupDescription {
  group: string;
  /** The coordinator's node id. */
  coordinator: number;
  /** "empty", "stable" or "rebalancing". */
  state: string;
  generation: number;
  members: {
    memberId: string;
    clientId: string;
    topics: string[];
    owned: WireTopicPartition[];
    target: WireTopicPartition[];
    sessionTimeoutMs: number;
    sinceHeartbeatMs: number;
  }[];
  offsets: {
    topic: string;
    partition: number;
    /** -1: none committed. */
    offset: number;
    committedAtMs: number;
    /** -1: unknown to the coordinator. */
    highWatermark: number;
    /** -1: unknown. */
    lag: number;
  }[];
}

export interface ConsumeStart {
  topic: string;
  partition: number;
  offset: number;
  creditRecords: number;
  creditBytes: number;
  /** Ask for stored batches instead of decoded records. */
  batches: boolean;
}
export interface ConsumeMessage {
  /** Decoded records: without ConsumeStart.batches, or from a leader that predates it. */
  records: WireRecord[];
  highWatermark: number;
  nextOffset: number;
  chargedBytes: number;
  /** With ConsumeStart.batches: the stored batches, the first possibly starting below the start offset. */
  batches: WireBatch[];
  /** 0 from a leader that predates it. */
  chargedRecords: number;
  brokerTimeMs: number;
}
export type ConsumeStream = grpc.ClientDuplexStream<{ start?: ConsumeStart; credit?: { records: number; bytes: number } }, ConsumeMessage>;


let constructors: { groups: grpc.ServiceClientConstructor; subscriptions: grpc.ServiceClientConstructor } | undefined;

function load(): { groups: grpc.ServiceClientConstructor; subscriptions: grpc.ServiceClientConstructor } {
  if (constructors === undefined) {
    const definition = protoLoader.loadSync(`${PROTOS_DIR}consumer.proto`, { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTOS_DIR] });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      raftmq: { consumer: { v1: { Groups: grpc.ServiceClientConstructor; Subscriptions: grpc.ServiceClientConstructor } } };
    };
    constructors = { groups: pkg.raftmq.consumer.v1.Groups, subscriptions: pkg.raftmq.consumer.v1.Subscriptions };
  }
  return constructors;
}

export interface GroupChannelsOptions {
  readonly clock: Clock;
  readonly messageBytesMax: number;
}

export class GroupChannels {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly inflight = new Set<grpc.ClientUnaryCall>();
  private readonly streams = new Set<ConsumeStream>();
  private closed = false;

  constructor(private readonly options: GroupChannelsOptions) {}

  /** Calls a Groups method on `address`, failing after `timeoutMs`. */
  group<M extends GroupMethod>(address: string, method: M, request: GroupMethods[M]["request"], timeoutMs: number): Promise<GroupMethods[M]["response"]> {
    return this.unary("groups", address, method, request, timeoutMs) as Promise<GroupMethods[M]["response"]>;
  }

  listOffsets(address: string, request: SubscriptionMethods["ListOffsets"]["request"], timeoutMs: number): Promise<SubscriptionMethods["ListOffsets"]["response"]> {
    return this.unary("subscriptions", address, "ListOffsets", request, timeoutMs) as Promise<SubscriptionMethods["ListOffsets"]["response"]>;
  }

  /** Opens a Consume stream to `address`; the caller writes `start` first. */
  consume(address: string): ConsumeStream {
    if (this.closed) throw new ShuttingDownError("the client is closed");
    const client = this.clientFor("subscriptions", address) as unknown as { Consume: () => ConsumeStream };
    const stream = client.Consume();
    this.streams.add(stream);
    const forget = (): void => void this.streams.delete(stream);
    stream.once("close", forget);
    stream.once("error", forget);
    stream.once("end", forget);
    return stream;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Cancels calls and streams in flight and closes every channel. Idempotent. */
  close(): void {
    this.closed = true;
    for (const call of this.inflight) call.cancel();
    this.inflight.clear();
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private unary(service: "groups" | "subscriptions", address: string, method: string, request: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new ShuttingDownError("the client is closed"));
    const client = this.clientFor(service, address);
    const fn = (client as unknown as Record<string, UnaryMethod>)[method]!;
    return unaryCall(client, fn, request, timeoutMs, { clock: this.options.clock, inflight: this.inflight, isClosed: () => this.closed, address, method });
  }

  private clientFor(service: "groups" | "subscriptions", address: string): grpc.Client {
    const key = `${service} ${address}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const Ctor = load()[service];
      client = new Ctor(address, grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": this.options.messageBytesMax,
        "grpc.max_receive_message_length": this.options.messageBytesMax,
        "grpc-node.flow_control_window": STREAM_WINDOW_BYTES,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 2_000,
      });
      this.clients.set(key, client);
    }
    return client;
  }
}

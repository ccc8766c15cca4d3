/**
 * The gRPC handlers of protos/consumer.proto: the Groups service (the group coordinator, which
 * answers NOT_LEADER with the coordinator's address on any other node) and the Subscriptions
 * service (flow-controlled record streams and offset lookups on partition leaders). Like
 * broker-service.ts, a handler never throws out: every failure becomes a status with trailers.
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { BrokerError, NotLeaderError } from "../lib/errors.js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { Broker } from "../broker/broker.js";
import type { BrokerPartitions } from "../broker/partition-manager.js";
import { batchesOf, recordsOf, Subscription, type SubscriptionMessage } from "../broker/subscription.js";
import type { MetadataState } from "../controller/metadata.js";
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, type GroupCoordinator, type OffsetToCommit } from "../groups/coordinator.js";
import type { TopicPartition } from "../groups/assignor.js";
import { toWire, toWireBatch } from "./broker-service.js";
import { toServiceError } from "./status.js";
import { unary } from "./unary.js";

/** Consume streams served at once by one node. */
export const CONSUME_STREAMS_MAX = 10_000;
/** Long-poll wait of a stream's fetches: how late it notices a leader change. */
export const CONSUME_POLL_WAIT_MS = 500;

export interface ConsumerServiceDeps {
  readonly coordinator: GroupCoordinator;
  readonly broker: Broker;
  readonly metadata: MetadataState;
  readonly multiraft: MultiRaft;
  readonly partitions: BrokerPartitions;
  readonly addressOf: (id: NodeId) => string | undefined;
  /** Rejects requests while the node shuts down. */
  readonly accepting: () => boolean;
  readonly log: Logger;
  /** Default CONSUME_POLL_WAIT_MS. */
  readonly pollWaitMs?: number;
}

export interface ConsumerServices {
  readonly groups: UntypedServiceImplementation;
  readonly subscriptions: UntypedServiceImplementation;
  /** Ends every open Consume stream with SHUTTING_DOWN (before the server drains). */
  closeStreams(): void;
}

/* Wire shapes as @grpc/proto-loader decodes them (camelCase, longs as numbers, defaults set). */
interface WireOffset {
  topic: string;
  partition: number;
  offset: number;
}
interface ConsumeRequest {
  start?: { topic: string; partition: number; offset: number; creditRecords: number; creditBytes: number; batches: boolean } | null;
  credit?: { records: number; bytes: number } | null;
}

export function consumerServices(deps: ConsumerServiceDeps): ConsumerServices {
  const streams = new Set<(e: BrokerError) => void>();
  return {
    groups: groupsImplementation(deps),
    subscriptions: {
      Consume: (call: ServerDuplexStream<ConsumeRequest, unknown>) => serveConsume(deps, streams, call),
      ListOffsets: unary(deps, async (req: { topic: string; partition: number; timestampMs: number }) => listOffsets(deps, req.topic, req.partition, Number(req.timestampMs))),
    },
    closeStreams: () => {
      for (const end of [...streams]) end(new BrokerError("SHUTTING_DOWN", "the node is shutting down; resubscribe at the partition's new leader"));
    },
  };
}

function groupsImplementation(deps: ConsumerServiceDeps): UntypedServiceImplementation {
  const { coordinator } = deps;
  return {
    Heartbeat: unary(deps, async (req: { group: string; memberId: string; clientId: string; topics: string[]; owned: TopicPartition[]; sessionTimeoutMs: number }) => {
      const r = await coordinator.heartbeat({
        group: req.group,
        memberId: req.memberId ?? "",
        clientId: req.clientId ?? "",
        topics: req.topics ?? [],
        owned: (req.owned ?? []).map((tp) => ({ topic: tp.topic, partition: tp.partition })),
        sessionTimeoutMs: req.sessionTimeoutMs,
      });
      return { memberId: r.memberId, generation: r.generation, assigned: r.assigned, revoke: r.revoke, pending: r.pending, heartbeatIntervalMs: r.heartbeatIntervalMs };
    }),
    LeaveGroup: unary(deps, async (req: { group: string; memberId: string }) => {
      await coordinator.leave(req.group, req.memberId ?? "");
      return {};
    }),
    CommitOffsets: unary(deps, async (req: { group: string; memberId: string; offsets: WireOffset[] }) => ({
      offsets: (await coordinator.commit(req.group, req.memberId ?? "", toCommit(req.offsets))).map(wireOffset),
    })),
    FetchOffsets: unary(deps, async (req: { group: string; topics: string[] }) => ({
      offsets: (await coordinator.fetchOffsets(req.group, req.topics ?? [])).map(wireOffset),
    })),
    ListGroups: unary(deps, async () => {
      const { groups, partitions } = coordinator.listGroups();
      return {
        groups,
        offsetsPartitions: partitions,
        offsetsPartitionCount: deps.metadata.internalTopics.get(OFFSETS_TOPIC)?.partitions.length ?? OFFSETS_TOPIC_PARTITIONS,
      };
    }),
    DescribeGroup: unary(deps, async (req: { group: string }) => {
      const d = await coordinator.describe(req.group);
      return {
        group: d.group,
        coordinator: d.coordinator,
        state: d.phase,
        generation: d.generation,
        members: d.members,
        offsets: d.offsets,
      };
    }),
    ResetOffsets: unary(deps, async (req: { group: string; offsets: WireOffset[] }) => ({
      offsets: (await coordinator.reset(req.group, toCommit(req.offsets))).map(wireOffset),
    })),
  };
}

function toCommit(offsets: WireOffset[] | undefined): OffsetToCommit[] {
  return (offsets ?? []).map((o) => ({ topic: o.topic, partition: o.partition, offset: Number(o.offset) }));
}

function wireOffset(o: { topic: string; partition: number; offset: number }): WireOffset {
  return { topic: o.topic, partition: o.partition, offset: o.offset };
}

/** A partition's offsets and the offset for a timestamp, from its leader's state. */
function listOffsets(deps: ConsumerServiceDeps, topicName: string, partitionNo: number, timestampMs: number) {
  const topic = deps.broker.topic(topicName);
  const partition = topic.partitions[partitionNo];
  if (!Number.isInteger(partitionNo) || partition === undefined) {
    throw new BrokerError("UNKNOWN_PARTITION", `topic "${topicName}" has partitions 0 to ${topic.partitions.length - 1}; there is no partition ${partitionNo}`);
  }
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new BrokerError("INVALID_ARGUMENT", `timestamp_ms must be a non-negative Unix time in ms, got ${timestampMs}`);
  const status = deps.multiraft.status(partition.group);
  const state = deps.partitions.state(partition.group);
  if (status?.role !== "leader" || state === undefined) {
    const lead = status?.lead ?? 0;
    throw new NotLeaderError(partition.group, lead, `partition ${partitionNo} is led elsewhere`, deps.addressOf(lead));
  }
  return {
    logStartOffset: state.logStartOffset,
    highWatermark: state.nextOffset,
    offsetForTimestamp: timestampMs > 0 ? state.offsetForTimestamp(timestampMs) : state.nextOffset,
  };
}

/**
 * One Consume stream: waits for `start`, then runs a Subscription (of stored batches when the
 * start asks for them, else of decoded records) whose messages are written with the stream's
 * backpressure; `credit` messages add credits. Ends with the pump's error, with OK when the client
 * half-closes, and quietly when it cancels.
 */
function serveConsume(deps: ConsumerServiceDeps, streams: Set<(e: BrokerError) => void>, call: ServerDuplexStream<ConsumeRequest, unknown>): void {
  let sub: Pick<Subscription<unknown>, "grant" | "run" | "close"> | undefined;
  let ended = false;
  let onEnded: () => void = () => {};
  const endedPromise = new Promise<void>((resolve) => (onEnded = resolve));
  const finish = (error: unknown, quietly = false): void => {
    if (ended) return;
    ended = true;
    streams.delete(finish);
    sub?.close();
    onEnded();
    if (quietly) return;
    if (error === undefined) call.end();
    else call.emit("error", toServiceError(error));
  };
  if (!deps.accepting()) return finish(new BrokerError("SHUTTING_DOWN", "this node is shutting down; retry on another node"));
  if (streams.size >= CONSUME_STREAMS_MAX) return finish(new BrokerError("OVERLOADED", `this node already serves ${CONSUME_STREAMS_MAX} consume streams; retry later`));
  streams.add(finish);
  const send = <U>(toWireUnits: (units: readonly U[]) => object) => (m: SubscriptionMessage<U>): Promise<void> => {
    if (ended) return Promise.resolve();
    const { highWatermark, nextOffset, chargedRecords, chargedBytes, brokerTimeMs } = m;
    const ok = call.write({ ...toWireUnits(m.units), highWatermark, nextOffset, chargedRecords, chargedBytes, brokerTimeMs });
    if (ok) return Promise.resolve();
    return Promise.race([new Promise<void>((resolve) => call.once("drain", resolve)), endedPromise]);
  };
  call.on("data", (msg: ConsumeRequest) => {
    try {
      if (msg.start) {
        if (sub !== undefined) throw new BrokerError("INVALID_ARGUMENT", "a Consume stream takes one start message");
        const { topic, partition, offset, creditRecords, creditBytes, batches } = msg.start;
        deps.broker.topic(topic); // UNKNOWN_TOPIC now rather than at the first fetch
        const common = { offset: Number(offset), pollWaitMs: deps.pollWaitMs ?? CONSUME_POLL_WAIT_MS };
        sub = batches === true
          ? new Subscription({ ...common, source: batchesOf(deps.broker, topic, partition), send: send((units) => ({ batches: units.map(toWireBatch) })) })
          : new Subscription({ ...common, source: recordsOf(deps.broker, topic, partition), send: send((units) => ({ records: units.map(toWire) })) });
        sub.grant(creditRecords, Number(creditBytes));
        sub.run().then(() => finish(undefined), (e: unknown) => finish(e));
      } else if (msg.credit) {
        if (sub === undefined) throw new BrokerError("INVALID_ARGUMENT", "the first message of a Consume stream must be start");
        sub.grant(msg.credit.records, Number(msg.credit.bytes));
      } else {
        throw new BrokerError("INVALID_ARGUMENT", "a Consume request carries start or credit");
      }
    } catch (e) {
      finish(e);
    }
  });
  call.on("end", () => finish(undefined));
  call.on("cancelled", () => finish(undefined, true));
  call.on("error", () => finish(undefined, true));
}

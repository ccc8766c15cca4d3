/**
 * Wires consumer groups into a node: the state machine of `__consumer_offsets` replicas (handed
 * to the partition manager), the group coordinator, the loop that creates the offsets topic, and
 * the gRPC handlers of protos/consumer.proto. node.ts builds it, registers the services, starts it
 * after the multi-raft host, and stops it first on shutdown.
 */
import type { Clock } from "../lib/clock.js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { Broker } from "../broker/broker.js";
import type { BrokerPartitions, InternalStateFactory } from "../broker/partition-manager.js";
import type { ControllerFrontend } from "../controller/frontend.js";
import type { MetadataState } from "../controller/metadata.js";
import { GroupCoordinator } from "../groups/coordinator.js";
import { GroupCoordinatorState } from "../groups/coordinator-state.js";
import { ensureOffsetsTopic } from "../groups/offsets-topic.js";
import { consumerServices, type ConsumerServices } from "./consumer-service.js";

/** The state machine factory for internal topic replicas (only `group-offsets` exists). */
export const internalStateFactory: InternalStateFactory = (_topic, partition) => new GroupCoordinatorState(partition.group);

export interface ConsumerGroupsDeps {
  readonly nodeId: NodeId;
  readonly multiraft: MultiRaft;
  readonly metadata: MetadataState;
  readonly partitions: BrokerPartitions;
  readonly frontend: ControllerFrontend;
  readonly broker: Broker;
  readonly clock: Clock;
  readonly random: Random;
  readonly addressOf: (id: NodeId) => string | undefined;
  readonly accepting: () => boolean;
  readonly log: Logger;
  readonly requestTimeoutMs: number;
}

export interface ConsumerGroups {
  readonly coordinator: GroupCoordinator;
  readonly services: ConsumerServices;
  /** Starts the coordinator's maintenance and the offsets topic creation loop. */
  start(): void;
  /** Stops both (open consume streams end separately: services.closeStreams()). */
  stop(): void;
}

export function consumerGroups(deps: ConsumerGroupsDeps): ConsumerGroups {
  const log = deps.log.child({ component: "groups" });
  const coordinator = new GroupCoordinator({
    nodeId: deps.nodeId,
    multiraft: deps.multiraft,
    metadata: deps.metadata,
    stateOf: (group) => {
      const s = deps.partitions.internalState(group);
      return s instanceof GroupCoordinatorState ? s : undefined;
    },
    partitionOffsets: (topic, partition) => {
      const p = deps.metadata.topics.get(topic)?.partitions[partition];
      const s = p === undefined ? undefined : deps.partitions.state(p.group);
      return s === undefined ? undefined : { logStartOffset: s.logStartOffset, highWatermark: s.nextOffset };
    },
    clock: deps.clock,
    random: deps.random,
    addressOf: deps.addressOf,
    log,
    requestTimeoutMs: deps.requestTimeoutMs,
  });
  const services = consumerServices({
    coordinator,
    broker: deps.broker,
    metadata: deps.metadata,
    multiraft: deps.multiraft,
    partitions: deps.partitions,
    addressOf: deps.addressOf,
    accepting: deps.accepting,
    log,
  });
  let topicLoop: { stop(): void } | undefined;
  return {
    coordinator,
    services,
    start: () => {
      coordinator.start();
      topicLoop = ensureOffsetsTopic(deps.frontend, deps.metadata, deps.clock, log);
    },
    stop: () => {
      topicLoop?.stop();
      coordinator.close();
    },
  };
}

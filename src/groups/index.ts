/**
 * # Consumer groups
 *
 * Publish-subscribe with competing consumers: every group receives every record of its topics,
 * and inside a group each partition is consumed by one member at a time.
 *
 * Where the state lives. The controller creates an internal topic, `__consumer_offsets`, with 8
 * partitions (offsets-topic.ts). Its replicas host a {@link GroupCoordinatorState} instead of a
 * record log (the partition manager dispatches on TopicRecord.kind). A group belongs to partition
 * fnv1a(group) mod 8, and the Raft leader of that partition is the group's coordinator
 * ({@link GroupCoordinator}). What must survive failures goes through that partition's Raft log:
 * committed offsets (never backwards, except an explicit reset) and who owns which partition. What
 * may be lost with the leader — session timers, the target assignment — is soft state, rebuilt as
 * members keep heartbeating to the new leader.
 *
 * How members share partitions (membership.ts). One call, the heartbeat: a member reports what it
 * consumes and learns what it may consume, what it must give up and what it is waiting for. The
 * sticky assignor (assignor.ts, pure) decides the target; the hand-over is cooperative, so a
 * partition reaches its new owner only after the old one committed and gave it up.
 *
 * Streams. Records reach consumers over a flow-controlled stream per partition served by its
 * leader (broker/subscription.ts): the consumer grants record and byte credits, the leader never
 * sends more. The client side (client/consumer.ts) turns streams and heartbeats into an async
 * iterator or a handler loop, with at-most-once or at-least-once offset commits.
 *
 * Dependencies: groups → controller (metadata, frontend), multiraft, raft types, lib. The broker
 * never imports groups; the composition root (server/consumer-groups.ts) hands the partition
 * manager a factory for the coordinator state.
 */
export { assign, compareTp, parseTpKey, tpKey, type Assignment, type AssignorInput, type AssignorMember, type TopicPartition } from "./assignor.js";
export { GroupCoordinatorState, encodeCoordinatorCommand, type CommittedOffset, type CoordinatorCommand, type RecordedMember } from "./coordinator-state.js";
export {
  GroupCoordinator,
  OFFSETS_TOPIC,
  OFFSETS_TOPIC_PARTITIONS,
  fnv1a,
  heartbeatIntervalMs,
  type DescribedMember,
  type DescribedOffset,
  type GroupCoordinatorDeps,
  type GroupDescription,
  type GroupListing,
  type GroupOffset,
  type HeartbeatRequest,
  type HeartbeatResult,
  type OffsetToCommit,
} from "./coordinator.js";
export { GroupMembership, type GroupPhase, type HeartbeatDecision, type HeartbeatInput } from "./membership.js";
export { ensureOffsetsTopic } from "./offsets-topic.js";

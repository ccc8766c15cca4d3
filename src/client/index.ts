/**
 * The raftmq TypeScript client.
 *
 * `connect({ brokers })` gives a RaftmqClient. It learns the cluster from the Metadata call of any
 * broker and caches it: nodes and their addresses, topics, partitions and their leaders. Produce
 * and Fetch go straight to the partition leader over one gRPC channel per broker address. When
 * leadership moves, the old leader answers NOT_LEADER with the new leader's address in trailers
 * (`raftmq-error-code`, `raftmq-leader-id`, `raftmq-leader-address`) and the client retries there;
 * when nobody is known, it refreshes the metadata after a bounded exponential backoff. Every retry
 * loop is bounded in attempts and in time, and time comes from an injectable Clock.
 *
 * Records with a key go to `murmur2(key) % partitions`, Kafka's default partitioner, so one key
 * keeps its order; records without a key go round-robin. `client.producer()` batches records per
 * partition (linger, record and byte bounds) and resolves each record's promise with its
 * partition and offset. Batches are encoded and compressed here (record batch v2, src/format;
 * lz4 by default) and read back, by fetches and consumer streams alike, as the stored batches,
 * which the client decodes. Producers are idempotent by default: one InitProducer per session,
 * sequence numbers per partition, retries with the same bytes, so that each record is written
 * once however often its batch is retried.
 *
 * `client.consumer({ group, topics, guarantee })` joins a consumer group (consumer.ts): its
 * coordinator (the leader of the group's `__consumer_offsets` partition, found by redirect) assigns
 * partitions with a cooperative hand-over; records arrive over a flow-controlled stream per
 * partition from its leader; offsets are committed after handling (at-least-once) or before
 * delivery (at-most-once). `listGroups()`, `describeGroup()` and `resetOffsets()` administer groups.
 * `request()` sends a record and resolves with the reply a consumer sent with `reply()`, through
 * the client's reply inbox (request-reply.ts).
 *
 * Failures come back as the broker's error classes, rebuilt from the `raftmq-error-code` trailer
 * (errors.ts): NotLeaderError, TimeoutError, UnknownTopicError, and so on, all BrokerErrors with a
 * stable `code`. 64-bit fields (offsets, ids, timestamps) are JavaScript numbers: exact below
 * 2^53, which offsets will not reach.
 */
export { connect, RaftmqClient } from "./client.js";
export type { ClientOptions, CreateTopicOptions, FetchOptions, PartitionOffsets, ProduceOptions, ProducerSession } from "./client.js";
export type { CompressionName } from "../format/index.js";
export { Producer } from "./producer.js";
export { Consumer, type CommitEvent, type ConsumedRecord, type ConsumerEvents, type ConsumerOptions, type DeliveryGuarantee, type TopicPartition } from "./consumer.js";
export type { GroupDescription } from "./group-channels.js";
export type { GroupSummary, ResetTarget } from "./groups.js";
export { REPLY_TOPIC_DEFAULT, type RequestOptions } from "./request-reply.js";
export type { ProducerOptions } from "./producer.js";
export type { Bytes, FetchedRecord, FetchResult, HeadersInit, ProduceRecord, ProduceResult } from "./records.js";
export type { ClusterMetadata, NodeInfo, PartitionInfo, TopicInfo } from "./wire.js";
export { murmur2, partitionForKey } from "./partitioner.js";
export { RETRY_POLICY_DEFAULT, type RetryPolicy } from "./retry.js";
export { systemClock } from "./system-clock.js";
export {
  GroupNotEmptyError,
  InvalidArgumentError,
  OffsetOutOfRangeError,
  OutOfOrderSequenceError,
  OverloadedError,
  ProducerFencedError,
  RecordTooLargeError,
  RpcError,
  ShuttingDownError,
  TopicExistsError,
  TRAILER_CODE,
  TRAILER_LEADER_ADDRESS,
  TRAILER_LEADER_ID,
  UnavailableError,
  UnknownMemberError,
  UnknownPartitionError,
  UnknownTopicError,
} from "./errors.js";
export { BrokerError, NotLeaderError, ProposalDroppedError, TimeoutError, type ErrorCode } from "../lib/errors.js";

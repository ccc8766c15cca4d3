/**
 * ControllerFrontend: request validation (INVALID_ARGUMENT with a message naming the field),
 * NOT_LEADER with the leader's address on a non-leader, TOPIC_EXISTS / UNKNOWN_TOPIC, and the
 * happy path. The multi-raft host is a small fake of the three methods the frontend calls; its
 * propose() applies the command to the metadata state like the controller group would.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError } from "../lib/errors.js";
import type { GroupId, LogIndex, NodeId } from "../lib/ids.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import { bootstrapSnapshot } from "../raft/index.js";
import {
  ControllerFrontend,
  DEFAULT_MAX_RECORD_BYTES,
  DEFAULT_RETENTION_MS,
  PARTITIONS_MAX,
  RECORD_BYTES_MAX_LIMIT,
  type CreateTopicSpec,
} from "./frontend.js";
import { CONTROLLER_GROUP, MetadataState, encodeCommand, initialMetadata, type MetadataCommand } from "./metadata.js";

const address = (id: NodeId): string => `10.0.0.${id}:7000`;

/** Stands in for the controller group: status/leader as set, propose() applies at once. */
class FakeControllerRaft {
  role: "leader" | "follower" | "candidate" = "leader";
  lead: NodeId = 1;
  readonly proposals: { group: GroupId; command: MetadataCommand }[] = [];
  /** Runs before the proposal is applied (to simulate a concurrent request winning). */
  beforeApply: (() => void) | undefined;

  constructor(private readonly metadata: MetadataState) {}

  status(group: GroupId): { role: string; lead: NodeId } | undefined {
    return group === CONTROLLER_GROUP ? { role: this.role, lead: this.lead } : undefined;
  }

  leader(group: GroupId): NodeId {
    return group === CONTROLLER_GROUP ? this.lead : 0;
  }

  async propose(group: GroupId, data: Uint8Array, _timeoutMs: number): Promise<LogIndex> {
    this.proposals.push({ group, command: JSON.parse(new TextDecoder().decode(data)) as MetadataCommand });
    await Promise.resolve();
    this.beforeApply?.();
    const index = this.metadata.appliedIndex + 1;
    this.metadata.apply([{ term: 1, index, type: "normal", data }]);
    return index;
  }
}

function setup(nodes = 3): { frontend: ControllerFrontend; raft: FakeControllerRaft; metadata: MetadataState } {
  const ids = Array.from({ length: nodes }, (_, i) => i + 1);
  const metadata = new MetadataState();
  metadata.restore({ metadata: bootstrapSnapshot(ids).metadata, data: initialMetadata(ids.map((id) => ({ id, address: address(id) }))) });
  const raft = new FakeControllerRaft(metadata);
  const frontend = new ControllerFrontend(raft as unknown as MultiRaft, metadata, (id) => metadata.nodes.get(id)?.address, 1000);
  return { frontend, raft, metadata };
}

/** Asserts a BrokerError with `code` whose message matches `message`. */
function isError(code: string, message: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BrokerError, `expected a BrokerError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  };
}

test("createTopic on the leader proposes once and returns the applied topic, with defaults filled in", async () => {
  const { frontend, raft, metadata } = setup();
  const topic = await frontend.createTopic({ name: "orders" });
  assert.equal(raft.proposals.length, 1);
  assert.equal(raft.proposals[0]!.group, CONTROLLER_GROUP);
  assert.deepEqual(raft.proposals[0]!.command, {
    op: "createTopic",
    name: "orders",
    partitions: 1,
    replicationFactor: 3,
    maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
    retentionMs: DEFAULT_RETENTION_MS,
  });
  assert.equal(topic, metadata.topics.get("orders"));
  assert.equal(topic.partitions.length, 1);
});

test("zero means 'use the default' for every numeric field (proto3 cannot tell unset from 0)", async () => {
  const { frontend, raft } = setup(2);
  await frontend.createTopic({ name: "t", partitions: 0, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 });
  assert.deepEqual(raft.proposals[0]!.command, {
    op: "createTopic",
    name: "t",
    partitions: 1,
    replicationFactor: 2, // min(3, nodes)
    maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
    retentionMs: DEFAULT_RETENTION_MS,
  });
});

const invalidSpecs: [string, CreateTopicSpec, RegExp][] = [
  ["empty name", { name: "" }, /topic name "" is not valid/],
  ["name with a space", { name: "my topic" }, /topic name "my topic" is not valid: use 1-249 characters/],
  ["name with a slash", { name: "a/b" }, /topic name "a\/b" is not valid/],
  ["name of 250 characters", { name: "x".repeat(250) }, /topic name "x+" is not valid/],
  ["unicode name", { name: "заказы" }, /topic name "заказы" is not valid/],
  ["name not a string", { name: 42 as unknown as string }, /topic name 42 is not valid/],
  ["negative partitions", { name: "t", partitions: -1 }, /partitions must be an integer from 1 to 10000, got -1/],
  ["fractional partitions", { name: "t", partitions: 1.5 }, /partitions must be an integer .* got 1.5/],
  ["too many partitions", { name: "t", partitions: PARTITIONS_MAX + 1 }, /partitions must be an integer from 1 to 10000, got 10001/],
  ["replication factor above the node count", { name: "t", replicationFactor: 4 }, /replication factor must be from 1 to the number of nodes \(3\), got 4/],
  ["negative replication factor", { name: "t", replicationFactor: -2 }, /replication factor .* got -2/],
  ["fractional replication factor", { name: "t", replicationFactor: 2.5 }, /replication factor .* got 2.5/],
  ["record size above the limit", { name: "t", maxRecordBytes: RECORD_BYTES_MAX_LIMIT + 1 }, new RegExp(`max record bytes must be from 1 to ${RECORD_BYTES_MAX_LIMIT}, got ${RECORD_BYTES_MAX_LIMIT + 1}`)],
  ["negative record size", { name: "t", maxRecordBytes: -1 }, /max record bytes .* got -1/],
  ["fractional record size", { name: "t", maxRecordBytes: 10.5 }, /max record bytes .* got 10.5/],
  ["negative retention", { name: "t", retentionMs: -1 }, /retention ms must be a positive integer, got -1/],
  ["fractional retention", { name: "t", retentionMs: 0.5 }, /retention ms must be a positive integer, got 0.5/],
  ["retention beyond safe integers", { name: "t", retentionMs: 2 ** 60 }, /retention ms must be a positive integer/],
];

for (const [what, spec, message] of invalidSpecs) {
  test(`createTopic rejects ${what} with INVALID_ARGUMENT naming the field, and proposes nothing`, async () => {
    const { frontend, raft } = setup();
    await assert.rejects(frontend.createTopic(spec), isError("INVALID_ARGUMENT", message));
    assert.equal(raft.proposals.length, 0);
  });
}

test("limits at the boundary are accepted", async () => {
  const { frontend, raft } = setup();
  await frontend.createTopic({ name: "a".repeat(249), partitions: PARTITIONS_MAX, replicationFactor: 3, maxRecordBytes: RECORD_BYTES_MAX_LIMIT, retentionMs: 1 });
  await frontend.createTopic({ name: "A-z_0.9", partitions: 1, replicationFactor: 1, maxRecordBytes: 1, retentionMs: Number.MAX_SAFE_INTEGER });
  assert.equal(raft.proposals.length, 2);
});

test("createTopic on a follower answers NOT_LEADER with the leader's id and address, and proposes nothing", async () => {
  const { frontend, raft } = setup();
  raft.role = "follower";
  raft.lead = 2;
  await assert.rejects(frontend.createTopic({ name: "t" }), (e: unknown) => {
    isError("NOT_LEADER", /not the leader of group 0 .*the leader is node 2 at 10\.0\.0\.2:7000/)(e);
    const err = e as BrokerError;
    assert.equal(err.leaderId, 2);
    assert.equal(err.leaderAddress, "10.0.0.2:7000");
    return true;
  });
  assert.equal(raft.proposals.length, 0);
  assert.equal(frontend.leader(), 2);
});

test("with no known leader (an election in progress), NOT_LEADER carries no leader and says to retry", async () => {
  const { frontend, raft } = setup();
  raft.role = "candidate";
  raft.lead = 0;
  await assert.rejects(frontend.createTopic({ name: "t" }), (e: unknown) => {
    isError("NOT_LEADER", /no leader is known yet, retry shortly/)(e);
    assert.equal((e as BrokerError).leaderId, undefined);
    assert.equal((e as BrokerError).leaderAddress, undefined);
    return true;
  });
});

test("createTopic of an existing topic is TOPIC_EXISTS without a proposal", async () => {
  const { frontend, raft } = setup();
  await frontend.createTopic({ name: "t" });
  await assert.rejects(frontend.createTopic({ name: "t", partitions: 4 }), isError("TOPIC_EXISTS", /topic "t" already exists/));
  assert.equal(raft.proposals.length, 1);
});

test("createTopic that loses a race with a concurrent create of the same name is TOPIC_EXISTS", async () => {
  const { frontend, raft, metadata } = setup();
  raft.beforeApply = () => {
    raft.beforeApply = undefined;
    metadata.apply([{ term: 1, index: metadata.appliedIndex + 1, type: "normal", data: encodeCommand({ op: "createTopic", name: "t", partitions: 2, replicationFactor: 1, maxRecordBytes: 10, retentionMs: 10 }) }]);
  };
  await assert.rejects(frontend.createTopic({ name: "t" }), isError("TOPIC_EXISTS", /created concurrently/));
  assert.equal(metadata.topics.get("t")!.partitions.length, 2, "the winner's topic stands");
});

test("deleteTopic validates the name, requires the leader and an existing topic", async () => {
  const { frontend, raft, metadata } = setup();
  await frontend.createTopic({ name: "t" });
  await assert.rejects(frontend.deleteTopic("bad name"), isError("INVALID_ARGUMENT", /topic name "bad name" is not valid/));
  await assert.rejects(frontend.deleteTopic("nope"), isError("UNKNOWN_TOPIC", /topic "nope" does not exist/));
  raft.role = "follower";
  raft.lead = 3;
  await assert.rejects(frontend.deleteTopic("t"), isError("NOT_LEADER", /the leader is node 3 at 10\.0\.0\.3:7000/));
  raft.role = "leader";
  raft.lead = 1;
  await frontend.deleteTopic("t");
  assert.equal(metadata.topics.has("t"), false);
  assert.deepEqual(raft.proposals.at(-1), { group: CONTROLLER_GROUP, command: { op: "deleteTopic", name: "t" } });
});

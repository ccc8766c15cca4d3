/**
 * The group coordinator on an in-process 3-node cluster (memory stores, loopback transport, real
 * controller, partitions and offsets partitions; no gRPC): the offsets topic is created once and
 * hidden; requests to another node are redirected to the coordinator; offset commits go through
 * Raft, never backwards, only from owners; resets need an empty group; the cooperative hand-over
 * works through the coordinator; and after the coordinator's node restarts, the new coordinator
 * has the offsets and knows who owned what. Node randomness comes from GROUPS_TEST_SEED.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError } from "../lib/errors.js";
import { InProcessCluster, retrying, waitFor, type TestNode } from "../broker/testing/in-process-cluster.js";
import { COMPACT_EVERY_ENTRIES, GroupCoordinator, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, type HeartbeatResult } from "./coordinator.js";
import { tpKey, type TopicPartition } from "./assignor.js";
import { GroupCoordinatorState } from "./coordinator-state.js";

const SEED = Number(process.env["GROUPS_TEST_SEED"] ?? 7);
console.log(`group coordinator tests: seed ${SEED} (replay with GROUPS_TEST_SEED=${SEED})`);

function code(expected: string, message?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BrokerError, `expected a BrokerError ${expected}, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

/** The node coordinating `group` (the leader of its offsets partition). */
async function coordinatorOf(c: InProcessCluster, group: string): Promise<TestNode> {
  const topic = await waitFor("the offsets topic", () => c.nodes[0]!.metadata.internalTopics.get(OFFSETS_TOPIC), 10_000);
  const p = topic.partitions[GroupCoordinator.partitionFor(group, topic.partitions.length)]!;
  await waitFor("offsets partition hosted", () => p.replicas.every((id) => c.node(id).partitions.internalState(p.group) !== undefined) || undefined, 10_000);
  return c.leaderOf(p.group);
}

const hb = (node: TestNode, group: string, memberId: string, owned: readonly TopicPartition[], topics = ["orders"]): Promise<HeartbeatResult> =>
  retrying(() => node.coordinator!.heartbeat({ group, memberId, clientId: "test", topics, owned, sessionTimeoutMs: 2_000 }));

describe("group coordinator", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, seed: SEED, groups: true });
    await c.createTopic({ name: "orders", partitions: 4 });
  });
  after(async () => {
    await c.close();
  });

  test("the offsets topic is created once, with 8 partitions on 3 replicas, and kept apart from user topics", async () => {
    const node = await coordinatorOf(c, "any");
    const topic = node.metadata.internalTopics.get(OFFSETS_TOPIC)!;
    assert.equal(topic.partitions.length, OFFSETS_TOPIC_PARTITIONS);
    assert.equal(topic.kind, "group-offsets");
    for (const p of topic.partitions) assert.equal(p.replicas.length, 3);
    assert.ok(!node.metadata.topics.has(OFFSETS_TOPIC), "not a user topic: never listed, produced to or fetched");
    assert.throws(() => node.broker.topic(OFFSETS_TOPIC), code("UNKNOWN_TOPIC"));
    const controller = await c.leaderOf(0);
    await assert.rejects(controller.frontend.createTopic({ name: "__mine" }), code("INVALID_ARGUMENT", /reserved/));
    assert.equal(await controller.frontend.ensureInternalTopic(OFFSETS_TOPIC, "group-offsets", 8), false, "already there");
  });

  test("a node that is not the coordinator redirects with the coordinator's id and address", async () => {
    const coordinator = await coordinatorOf(c, "redirected");
    const other = c.nodes.find((n) => n.id !== coordinator.id)!;
    const p = other.metadata.internalTopics.get(OFFSETS_TOPIC)!.partitions[GroupCoordinator.partitionFor("redirected", 8)]!;
    await waitFor("the other node knows the coordinator", () => other.multiraft.leader(p.group) === coordinator.id || undefined);
    await assert.rejects(other.coordinator!.fetchOffsets("redirected", ["orders"]), (e: unknown) => {
      assert.ok(e instanceof BrokerError && e.code === "NOT_LEADER");
      assert.equal(e.leaderId, coordinator.id);
      assert.equal(e.leaderAddress, coordinator.address);
      return true;
    });
  });

  test("offsets: committed through Raft, never backwards, only by the owner, reset on purpose when the group is empty", async () => {
    const node = await coordinatorOf(c, "billing");
    const co = node.coordinator!;
    // A simple consumer (no member id) may commit while the group has no members.
    const first = await co.commit("billing", "", [{ topic: "orders", partition: 0, offset: 10 }]);
    assert.deepEqual(first.map((o) => o.offset), [10]);
    const lower = await co.commit("billing", "", [{ topic: "orders", partition: 0, offset: 4 }]);
    assert.deepEqual(lower.map((o) => o.offset), [10], "a lower commit is ignored");
    // Every replica applied it.
    const topic = node.metadata.internalTopics.get(OFFSETS_TOPIC)!;
    const p = topic.partitions[GroupCoordinator.partitionFor("billing", 8)]!;
    await waitFor("replicas agree", () =>
      p.replicas.every((id) => {
        const state = c.node(id).partitions.internalState(p.group);
        return state instanceof GroupCoordinatorState && state.committed("billing", { topic: "orders", partition: 0 })?.offset === 10;
      }) || undefined,
    );
    // A member joins: now only owners commit.
    const m = await hb(node, "billing", "", []);
    assert.equal(m.assigned.length, 4);
    await assert.rejects(co.commit("billing", "", [{ topic: "orders", partition: 1, offset: 1 }]), code("UNKNOWN_MEMBER", /live member/));
    await assert.rejects(co.commit("billing", "stranger", [{ topic: "orders", partition: 1, offset: 1 }]), code("UNKNOWN_MEMBER", /not a member/));
    await co.commit("billing", m.memberId, [{ topic: "orders", partition: 1, offset: 7 }]);
    await assert.rejects(co.reset("billing", [{ topic: "orders", partition: 0, offset: 0 }]), code("GROUP_NOT_EMPTY"));
    await co.leave("billing", m.memberId);
    const reset = await co.reset("billing", [{ topic: "orders", partition: 0, offset: 2 }]);
    assert.deepEqual(reset.map((o) => o.offset), [2], "a reset goes backwards");
    const fetched = await co.fetchOffsets("billing", ["orders"]);
    assert.deepEqual(fetched.map((o) => [o.partition, o.offset]), [[0, 2], [1, 7], [2, -1], [3, -1]]);
    await assert.rejects(co.commit("billing", "", [{ topic: "nope", partition: 0, offset: 1 }]), code("UNKNOWN_TOPIC"));
    await assert.rejects(co.commit("billing", "", [{ topic: "orders", partition: 9, offset: 1 }]), code("UNKNOWN_PARTITION"));
    await assert.rejects(co.commit("bad name!", "", [{ topic: "orders", partition: 0, offset: 1 }]), code("INVALID_ARGUMENT"));
  });

  test("two members: the second gets its share only after the first gave it up; describe shows both and the lag", async () => {
    const node = await coordinatorOf(c, "shipping");
    const a1 = await hb(node, "shipping", "", []);
    assert.equal(a1.assigned.length, 4);
    const b1 = await hb(node, "shipping", "", []);
    assert.equal(b1.assigned.length, 0);
    assert.equal(b1.pending.length, 2);
    const a2 = await hb(node, "shipping", a1.memberId, a1.assigned);
    assert.equal(a2.revoke.length, 2);
    const kept = a1.assigned.filter((x) => !a2.revoke.some((r) => tpKey(r) === tpKey(x)));
    const d1 = await node.coordinator!.describe("shipping");
    assert.equal(d1.phase, "rebalancing");
    await node.coordinator!.commit("shipping", a1.memberId, a2.revoke.map((tp) => ({ ...tp, offset: 0 })));
    await hb(node, "shipping", a1.memberId, kept);
    const b2 = await hb(node, "shipping", b1.memberId, []);
    assert.deepEqual(b2.assigned.map(tpKey), b1.pending.map(tpKey));
    const d2 = await node.coordinator!.describe("shipping");
    assert.equal(d2.phase, "stable");
    assert.deepEqual(d2.members.map((m) => m.owned.length), [2, 2]);
    const leader = await c.partitionLeader("orders", a2.revoke[0]!.partition);
    await leader.broker.produce("orders", a2.revoke[0]!.partition, [{ id: "x", key: new Uint8Array(), headers: [], body: new Uint8Array(1), producerTimestampMs: 1 }] as never, 3_000);
    let o = (await node.coordinator!.describe("shipping")).offsets.find((x) => x.partition === a2.revoke[0]!.partition)!;
    for (let i = 0; i < 200 && o.highWatermark < 1; i++) {
      await new Promise((r) => setTimeout(r, 10)); // the coordinator's replica of the partition applies the write
      o = (await node.coordinator!.describe("shipping")).offsets.find((x) => x.partition === a2.revoke[0]!.partition)!;
    }
    assert.equal(o.offset, 0);
    assert.ok(o.highWatermark >= 1 && o.lag === o.highWatermark, `lag = high watermark − committed: ${JSON.stringify(o)}`);
    await node.coordinator!.leave("shipping", a1.memberId);
    await node.coordinator!.leave("shipping", b1.memberId);
    const listed = node.coordinator!.listGroups();
    assert.ok(listed.groups.some((g) => g.group === "shipping"));
    assert.equal(listed.partitions.length, 8, "a node of a 3-node cluster hosts every offsets partition");
  });

  test("after the coordinator's node restarts, the new coordinator has the offsets and the recorded owners", async () => {
    const group = "failover";
    const node = await coordinatorOf(c, group);
    const a = await hb(node, group, "", []);
    assert.equal(a.assigned.length, 4);
    await node.coordinator!.commit(group, a.memberId, [{ topic: "orders", partition: 3, offset: 42 }]);
    await c.restart(node.id);
    const next = await retryingNotLeader(async () => {
      const n = await coordinatorOf(c, group);
      return { n, offsets: await n.coordinator!.fetchOffsets(group, ["orders"]) };
    });
    assert.equal(next.offsets.find((o) => o.partition === 3)?.offset, 42, "the committed offset survived the coordinator's restart");
    // A newcomer gets nothing a's recorded membership still owns...
    const b = await hb(next.n, group, "", []);
    assert.equal(b.assigned.length, 0, "nothing is granted while the recorded owner may be consuming");
    // ...and a, heartbeating to the new coordinator with what it owns, keeps half and gives up half.
    const a2 = await hb(next.n, group, a.memberId, a.assigned);
    assert.equal(a2.assigned.length, 2);
    assert.equal(a2.revoke.length, 2);
  });

  test("offsets partitions compact once they grow, and a restarted replica recovers the offsets from the snapshot", async () => {
    const group = "compacted";
    const node = await coordinatorOf(c, group);
    const p = node.metadata.internalTopics.get(OFFSETS_TOPIC)!.partitions[GroupCoordinator.partitionFor(group, 8)]!;
    for (let round = 0; round < COMPACT_EVERY_ENTRIES / 50 + 2; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => node.coordinator!.commit(group, "", [{ topic: "orders", partition: i % 4, offset: round * 50 + i }])));
    }
    const follower = c.nodes.find((n) => n.id !== node.id && p.replicas.includes(n.id))!;
    await waitFor("a compaction on the follower", () => follower.store.storage(p.group).firstIndex() > 2 || undefined, 10_000);
    const expected = await node.coordinator!.fetchOffsets(group, ["orders"]);
    await c.restart(follower.id);
    const restarted = c.node(follower.id);
    await waitFor("the restarted replica caught up", () => {
      const state = restarted.partitions.internalState(p.group);
      return state instanceof GroupCoordinatorState && expected.every((o) => state.committed(group, o)?.offset === o.offset) || undefined;
    }, 10_000);
  });
});

/** Retries while the coordinator is being elected (NOT_LEADER, UNAVAILABLE, dropped proposals). */
async function retryingNotLeader<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const retriable = e instanceof BrokerError && ["NOT_LEADER", "PROPOSAL_DROPPED", "UNAVAILABLE", "TIMEOUT"].includes(e.code);
      if (!retriable || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

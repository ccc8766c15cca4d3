/**
 * The broker failpoints (lib/failpoints.ts), planted bugs for the chaos tests' negative controls:
 * `broker/dedup-off` appends a retried idempotent batch twice (in the partition state machine and
 * end to end on an in-process cluster, alike on every replica), and `broker/ack-before-quorum`
 * answers a produce that can never commit (the leader cut off from its followers), where the same
 * cluster without it times out.
 *
 * Node randomness (election timeouts) comes from BROKER_TEST_SEED, printed first.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError, TimeoutError } from "../lib/errors.js";
import { parseFailpoints } from "../lib/failpoints.js";
import { CONTROLLER_GROUP } from "../controller/metadata.js";
import { bootstrapSnapshot } from "../raft/index.js";
import { encodeBatch, type BatchProducer, type ProducedRecord } from "../format/index.js";
import { PartitionState } from "./partition.js";
import { producerBatchEntry } from "./testing/entries.js";
import { InProcessCluster, waitFor, type TestNode } from "./testing/in-process-cluster.js";

const SEED = Number(process.env["BROKER_TEST_SEED"] ?? 11);
console.log(`broker failpoint tests: seed ${SEED} (replay with BROKER_TEST_SEED=${SEED})`);

const TIMEOUT_MS = 3_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function rec(id: string): ProducedRecord {
  return { id, key: new Uint8Array(), headers: [], body: enc(`body of ${id}`), producerTimestampMs: 1_000 };
}

function batchOf(ids: readonly string[], producer?: BatchProducer): Uint8Array {
  return encodeBatch(ids.map(rec), 0, producer === undefined ? {} : { producer });
}

async function ids(node: TestNode, topic: string): Promise<string[]> {
  return (await node.broker.fetch(topic, 0, 0, 1 << 24, 0)).records.map((r) => r.id);
}

describe("broker/dedup-off", () => {
  test("the partition state appends a retried batch as new: offsets for both, no duplicate outcome", () => {
    const entries = [producerBatchEntry(2, { producerId: 7, producerEpoch: 0, baseSequence: 0 }, 3), producerBatchEntry(3, { producerId: 7, producerEpoch: 0, baseSequence: 0 }, 3)];
    const normal = new PartitionState(1000);
    const off = new PartitionState(1000, parseFailpoints("broker/dedup-off=on"));
    for (const s of [normal, off]) {
      s.restore(bootstrapSnapshot([1, 2, 3]));
      s.apply(entries);
    }
    assert.equal(normal.outcomeAt(3)?.kind, "duplicate", "the control: deduplicated without the failpoint");
    assert.equal(normal.nextOffset, 3);
    assert.deepEqual(off.outcomeAt(3), { kind: "appended", baseOffset: 3, count: 3, brokerTimestampMs: 1_000 });
    assert.equal(off.nextOffset, 6);
  });

  describe("three nodes, all with dedup-off", () => {
    let c: InProcessCluster;
    before(async () => {
      c = await InProcessCluster.start({ nodes: 3, seed: SEED + 21, failpoints: parseFailpoints("broker/dedup-off=on") });
    });
    after(async () => {
      await c.close();
    });

    test("a retried idempotent batch is appended twice; sequence and epoch checks are off; every replica agrees", async () => {
      const topic = await c.createTopic({ name: "twice", replicationFactor: 3 });
      const group = topic.partitions[0]!.group;
      const f = (await c.leaderOf(CONTROLLER_GROUP)).frontend;
      const old = await f.initProducer("app");
      const fresh = await f.initProducer("app");
      const leader = await c.partitionLeader("twice");
      const batch = batchOf(["a", "b", "c"], { ...fresh, baseSequence: 0 });
      const r1 = await leader.broker.produceBatch("twice", 0, Uint8Array.from(batch), TIMEOUT_MS);
      const r2 = await leader.broker.produceBatch("twice", 0, Uint8Array.from(batch), TIMEOUT_MS);
      assert.deepEqual([r1.baseOffset, r1.count, r1.duplicate], [0, 3, false]);
      assert.deepEqual([r2.baseOffset, r2.count, r2.duplicate], [3, 3, false], "the retry is written again");
      const gap = await leader.broker.produceBatch("twice", 0, batchOf(["gap"], { ...fresh, baseSequence: 9 }), TIMEOUT_MS);
      assert.equal(gap.baseOffset, 6, "a sequence gap is accepted");
      for (const n of c.nodes) await waitFor(`node ${n.id} learns the new epoch`, () => n.metadata.producerEpoch(old.producerId) === fresh.producerEpoch || undefined);
      const zombie = await leader.broker.produceBatch("twice", 0, batchOf(["zombie"], { ...old, baseSequence: 0 }), TIMEOUT_MS);
      assert.equal(zombie.baseOffset, 7, "an older epoch is not fenced");
      assert.deepEqual(await ids(leader, "twice"), ["a", "b", "c", "a", "b", "c", "gap", "zombie"]);
      for (const n of c.nodes) await waitFor(`node ${n.id} applies all`, () => n.partitions.state(group)?.nextOffset === 8 || undefined);
      const layout = (n: TestNode): (number | undefined)[] => Array.from({ length: 8 }, (_, offset) => n.partitions.state(group)!.indexOfOffset(offset));
      for (const n of c.nodes) assert.deepEqual(layout(n), layout(leader), `node ${n.id} gives every record the leader's offset`);
    });
  });
});

describe("broker/ack-before-quorum", () => {
  /** Starts 3 nodes, creates a 3-replica topic, produces one record, then cuts its leader off from both followers. */
  async function cutOffLeader(c: InProcessCluster, name: string): Promise<TestNode> {
    const topic = await c.createTopic({ name, replicationFactor: 3 });
    const leader = await c.partitionLeader(name);
    await leader.broker.produce(name, 0, [rec("first")], TIMEOUT_MS);
    for (const n of c.nodes) await waitFor(`node ${n.id} applies the first record`, () => n.partitions.state(topic.partitions[0]!.group)?.nextOffset === 1 || undefined);
    for (const n of c.nodes) if (n.id !== leader.id) c.hub.setLink(leader.id, n.id, false);
    return leader;
  }

  test("the control: without the failpoint, a leader cut off from its followers cannot answer", async () => {
    const c = await InProcessCluster.start({ nodes: 3, seed: SEED + 31 });
    try {
      const leader = await cutOffLeader(c, "safe");
      await assert.rejects(leader.broker.produce("safe", 0, [rec("never")], 300), (e: unknown) => e instanceof TimeoutError || (e instanceof BrokerError && e.code === "TIMEOUT"));
    } finally {
      for (const a of c.nodes) for (const b of c.nodes) if (a.id < b.id) c.hub.setLink(a.id, b.id, true);
      await c.close();
    }
  });

  test("with it, the leader answers at once with a tentative offset although the batch never commits", async () => {
    const c = await InProcessCluster.start({ nodes: 3, seed: SEED + 41, failpoints: parseFailpoints("broker/ack-before-quorum=on") });
    try {
      const leader = await cutOffLeader(c, "unsafe");
      const group = leader.metadata.topics.get("unsafe")!.partitions[0]!.group;
      // A short proposal timeout: the proposal's later failure must not surface as an unhandled rejection.
      const r = await leader.broker.produce("unsafe", 0, [rec("x"), rec("y")], 200);
      assert.deepEqual([r.baseOffset, r.count, r.duplicate], [1, 2, false]);
      assert.ok(Math.abs(r.brokerTimestampMs - c.clock.wallMs()) < 5_000, "the timestamp the leader stamped");
      await new Promise((resolve) => setTimeout(resolve, 400)); // past the proposal's timeout
      for (const n of c.nodes) assert.equal(n.partitions.state(group)!.nextOffset, 1, `node ${n.id}: the acknowledged records were never committed`);
    } finally {
      for (const a of c.nodes) for (const b of c.nodes) if (a.id < b.id) c.hub.setLink(a.id, b.id, true);
      await c.close();
    }
  });
});

/**
 * PartitionState.offsetForTimestamp (what `raftmq group reset --to-timestamp` resolves through
 * ListOffsets): the first record the leader accepted at or after a time, by broker timestamps, on
 * a one-node in-process cluster whose wall clock the test moves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ProducedRecord } from "./record-batch.js";
import { InProcessCluster } from "./testing/in-process-cluster.js";

const rec = (id: string): ProducedRecord => ({ id, key: new Uint8Array(), headers: [], body: new TextEncoder().encode(id), producerTimestampMs: 1 }) as ProducedRecord;

test("the offset for a timestamp is the first batch accepted at or after it; the high watermark after the last", async () => {
  const c = await InProcessCluster.start({ nodes: 1, seed: 3 });
  try {
    const topic = await c.createTopic({ name: "timed" });
    const node = c.nodes[0]!;
    const a = await node.broker.produce("timed", 0, [rec("a1"), rec("a2")], 3_000);
    c.clock.shiftWall(10_000);
    const b = await node.broker.produce("timed", 0, [rec("b1")], 3_000);
    c.clock.shiftWall(10_000);
    const d = await node.broker.produce("timed", 0, [rec("c1"), rec("c2")], 3_000);
    const state = node.partitions.state(topic.partitions[0]!.group)!;
    assert.equal(state.offsetForTimestamp(0), 0);
    assert.equal(state.offsetForTimestamp(a.brokerTimestampMs), 0);
    assert.equal(state.offsetForTimestamp(a.brokerTimestampMs + 1), b.baseOffset);
    assert.equal(state.offsetForTimestamp(b.brokerTimestampMs), 2);
    assert.equal(state.offsetForTimestamp(d.brokerTimestampMs - 1), d.baseOffset);
    assert.equal(state.offsetForTimestamp(d.brokerTimestampMs + 1), state.nextOffset, "after the last record: the high watermark");
    assert.equal(state.nextOffset, 5);
  } finally {
    await c.close();
  }
});

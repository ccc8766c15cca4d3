/**
 * MetadataState, the controller's state machine: topic creation and placement, deletion,
 * idempotent re-application, group ids that are never reused, snapshots, and tolerance of
 * commands it does not know.
 *
 * Property tests take their seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { LogIndex, NodeId } from "../lib/ids.js";
import { bootstrapSnapshot, encodeConfChange, type Entry } from "../raft/index.js";
import { MetadataState, encodeCommand, initialMetadata, placeReplicas, type MetadataCommand, type NodeRecord } from "./metadata.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_614);
console.log(`metadata property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);

const nodeRecords = (ids: readonly NodeId[]): NodeRecord[] => ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` }));

/** A metadata state restored from the controller's founding snapshot with `ids` as nodes. */
function founded(ids: readonly NodeId[] = [1, 2, 3]): MetadataState {
  const m = new MetadataState();
  m.restore({ metadata: bootstrapSnapshot(ids).metadata, data: initialMetadata(nodeRecords(ids)) });
  return m;
}

/** Applies commands as consecutive entries after the current applied index. */
function applyCommands(m: MetadataState, ...cmds: MetadataCommand[]): void {
  const entries: Entry[] = cmds.map((cmd, k) => ({ term: 1, index: m.appliedIndex + 1 + k, type: "normal", data: encodeCommand(cmd) }));
  m.apply(entries);
}

function create(name: string, partitions = 1, replicationFactor = 3, extra: Partial<MetadataCommand & { op: "createTopic" }> = {}): MetadataCommand {
  return { op: "createTopic", name, partitions, replicationFactor, maxRecordBytes: 1024, retentionMs: 60_000, ...extra };
}

test("createTopic: records the topic with its settings, one partition group per partition, and the creating index", () => {
  const m = founded();
  applyCommands(m, create("orders", 3, 2, { maxRecordBytes: 4096, retentionMs: 1234 }));
  const t = m.topics.get("orders");
  assert.ok(t);
  assert.equal(t.name, "orders");
  assert.equal(t.replicationFactor, 2);
  assert.equal(t.maxRecordBytes, 4096);
  assert.equal(t.retentionMs, 1234);
  assert.equal(t.createdIndex, 2, "the founding snapshot is index 1; the command is index 2");
  assert.deepEqual(t.partitions.map((p) => p.partition), [0, 1, 2]);
  assert.equal(new Set(t.partitions.map((p) => p.group)).size, 3, "distinct groups");
  assert.ok(t.partitions.every((p) => p.group >= 1000), "partition groups never collide with the controller group");
  assert.equal(m.appliedIndex, 2);
  assert.deepEqual(m.allPartitions().map(({ topic, partition }) => [topic.name, partition.partition]), [["orders", 0], ["orders", 1], ["orders", 2]]);
});

test("placeReplicas: consecutive seeds take the next rf nodes, so preferred leaders rotate 1, 2, 3, 1", () => {
  assert.deepEqual([0, 1, 2, 3].map((seed) => placeReplicas([1, 2, 3], 3, seed)), [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3]]);
  assert.deepEqual(placeReplicas([4, 9, 20], 2, 2), [20, 4]);
});

test("property: every partition gets rf distinct replicas from the node set, and preferred leaders are balanced within one", () => {
  const arb = fc
    .uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 9 })
    .chain((ids) => fc.tuple(fc.constant(ids), fc.integer({ min: 1, max: ids.length }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 5 })));
  fc.assert(
    fc.property(arb, ([ids, rf, partitions, earlierTopics]) => {
      const m = founded(ids);
      for (let k = 0; k < earlierTopics; k++) applyCommands(m, create(`earlier-${k}`, 1 + (k % 3), 1));
      applyCommands(m, create("t", partitions, rf));
      const topic = m.topics.get("t")!;
      assert.equal(topic.partitions.length, partitions);
      assert.equal(topic.replicationFactor, rf);
      const leaders = new Map<NodeId, number>(ids.map((id) => [id, 0]));
      for (const p of topic.partitions) {
        assert.equal(p.replicas.length, rf, `partition ${p.partition}: ${p.replicas.join(",")}`);
        assert.equal(new Set(p.replicas).size, rf, `partition ${p.partition} has a repeated replica: ${p.replicas.join(",")}`);
        for (const r of p.replicas) assert.ok(ids.includes(r), `partition ${p.partition}: replica ${r} is not a node`);
        leaders.set(p.replicas[0]!, leaders.get(p.replicas[0]!)! + 1);
      }
      const counts = [...leaders.values()];
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `preferred leaders per node: ${JSON.stringify([...leaders])}`);
    }),
    { seed: SEED, numRuns: 200 },
  );
});

test("property: with rf = n every node is a replica of every partition and leads its share", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 50 }), (n, partitions) => {
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const m = founded(ids);
      applyCommands(m, create("t", partitions, n));
      const topic = m.topics.get("t")!;
      for (const p of topic.partitions) assert.deepEqual([...p.replicas].sort((a, b) => a - b), ids);
      for (const id of ids) {
        const led = topic.partitions.filter((p) => p.replicas[0] === id).length;
        assert.ok(led === Math.floor(partitions / n) || led === Math.ceil(partitions / n), `node ${id} prefers to lead ${led} of ${partitions}`);
      }
    }),
    { seed: SEED, numRuns: 100 },
  );
});

test("a replication factor above the node count is clamped when applied (every replica computes the same)", () => {
  const m = founded([1, 2]);
  applyCommands(m, create("t", 2, 5));
  const t = m.topics.get("t")!;
  assert.equal(t.replicationFactor, 2);
  for (const p of t.partitions) assert.equal(new Set(p.replicas).size, 2);
});

test("deleteTopic removes the topic and its partitions; deleting an unknown topic changes nothing", () => {
  const m = founded();
  let changes = 0;
  m.onChange(() => changes++);
  applyCommands(m, create("a", 2), create("b", 1));
  assert.equal(changes, 1, "one notification per applied batch of entries");
  applyCommands(m, { op: "deleteTopic", name: "a" });
  assert.equal(changes, 2);
  assert.deepEqual([...m.topics.keys()], ["b"]);
  assert.deepEqual(m.allPartitions().map(({ topic }) => topic.name), ["b"]);
  applyCommands(m, { op: "deleteTopic", name: "nope" });
  assert.equal(changes, 2, "no change, no notification");
  assert.equal(m.appliedIndex, 5, "the entry is still applied");
});

test("a duplicate create is a no-op: the first topic stays, and no id or group is consumed", () => {
  const m = founded();
  applyCommands(m, create("a", 2, 3, { retentionMs: 1000 }));
  const before = m.topics.get("a")!;
  let changes = 0;
  m.onChange(() => changes++);
  applyCommands(m, create("a", 5, 1, { retentionMs: 9999 }));
  assert.equal(m.topics.get("a"), before, "unchanged, same object");
  assert.equal(changes, 0);
  applyCommands(m, create("b", 1));
  const b = m.topics.get("b")!;
  assert.equal(b.id, before.id + 1, "the duplicate consumed no topic id");
  assert.equal(b.partitions[0]!.group, before.partitions[1]!.group + 1, "the duplicate consumed no group id");
});

test("group and topic ids are never reused after delete and re-create", () => {
  const m = founded();
  applyCommands(m, create("a", 3));
  const first = m.topics.get("a")!;
  applyCommands(m, { op: "deleteTopic", name: "a" }, create("a", 3));
  const second = m.topics.get("a")!;
  assert.notEqual(second.id, first.id);
  assert.notEqual(second.createdIndex, first.createdIndex);
  const firstGroups = new Set(first.partitions.map((p) => p.group));
  for (const p of second.partitions) assert.ok(!firstGroups.has(p.group), `group ${p.group} reused`);
  assert.ok(Math.min(...second.partitions.map((p) => p.group)) > Math.max(...firstGroups));
});

test("group ids stay unique across a snapshot: a restored replica never hands out a used group", () => {
  const a = founded();
  applyCommands(a, create("x", 4), { op: "deleteTopic", name: "x" });
  const b = new MetadataState();
  b.restore({ metadata: { index: a.appliedIndex, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: a.snapshotData() });
  applyCommands(b, create("x", 1));
  assert.ok(b.topics.get("x")!.partitions[0]!.group >= 1004, `group ${b.topics.get("x")!.partitions[0]!.group} may be a deleted topic's`);
});

test("snapshot round trip: snapshotData → restore preserves nodes, topics and the id counters", () => {
  const a = founded([1, 2, 3, 4]);
  applyCommands(a, create("a", 3, 2), create("b", 2, 4, { maxRecordBytes: 77, retentionMs: 88 }), { op: "deleteTopic", name: "a" }, create("c", 1, 1));
  const b = new MetadataState();
  let notified = 0;
  b.onChange(() => notified++);
  b.restore({ metadata: { index: a.appliedIndex, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data: a.snapshotData() });
  assert.equal(notified, 1, "restore notifies");
  assert.equal(b.appliedIndex, a.appliedIndex);
  assert.deepEqual([...b.nodes.entries()], [...a.nodes.entries()]);
  assert.deepEqual([...b.topics.entries()], [...a.topics.entries()]);
  // The counters survived: both replicas compute the same for the next command.
  applyCommands(a, create("d", 2));
  applyCommands(b, create("d", 2));
  assert.deepEqual(b.topics.get("d"), a.topics.get("d"));
  assert.deepEqual(b.snapshotData(), a.snapshotData());
});

test("property: replicas applying the same commands hold identical state", () => {
  const cmdArb: fc.Arbitrary<MetadataCommand> = fc.oneof(
    fc.record({
      op: fc.constant("createTopic" as const),
      name: fc.constantFrom("a", "b", "c", "d"),
      partitions: fc.integer({ min: 1, max: 6 }),
      replicationFactor: fc.integer({ min: 1, max: 3 }),
      maxRecordBytes: fc.integer({ min: 1, max: 1 << 20 }),
      retentionMs: fc.integer({ min: 1, max: 1 << 30 }),
    }),
    fc.record({ op: fc.constant("deleteTopic" as const), name: fc.constantFrom("a", "b", "c", "d") }),
  );
  fc.assert(
    fc.property(fc.array(cmdArb, { maxLength: 20 }), fc.integer({ min: 0, max: 20 }), (cmds, cut) => {
      const a = founded();
      applyCommands(a, ...cmds);
      // b applies a prefix, snapshots, restores into c, which applies the rest.
      const b = founded();
      applyCommands(b, ...cmds.slice(0, cut));
      const c = new MetadataState();
      c.restore({ metadata: { index: b.appliedIndex, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: b.snapshotData() });
      applyCommands(c, ...cmds.slice(cut));
      assert.deepEqual([...c.topics.entries()], [...a.topics.entries()]);
      const groups = [...a.topics.values()].flatMap((t) => t.partitions.map((p) => p.group));
      assert.equal(new Set(groups).size, groups.length, "no two partitions share a group");
    }),
    { seed: SEED, numRuns: 150 },
  );
});

test("an unknown command (from a newer version) is ignored but applied; no-ops and conf entries too", () => {
  const m = founded();
  applyCommands(m, create("a", 1));
  const before = m.snapshotData();
  let changes = 0;
  m.onChange(() => changes++);
  const unknown = new TextEncoder().encode(JSON.stringify({ op: "renameTopic", from: "a", to: "b" }));
  const entries: Entry[] = [
    { term: 1, index: 3 as LogIndex, type: "normal", data: unknown },
    { term: 1, index: 4 as LogIndex, type: "normal", data: new Uint8Array() },
    { term: 1, index: 5 as LogIndex, type: "conf", data: encodeConfChange({ type: "addLearner", nodeId: 4 }) },
  ];
  m.apply(entries);
  assert.equal(m.appliedIndex, 5);
  assert.deepEqual(m.snapshotData(), before);
  assert.equal(changes, 0);
});

test("initProducer: anonymous inits get fresh ids; a name keeps its id and bumps its epoch; all of it survives a snapshot", () => {
  const a = founded();
  applyCommands(a, { op: "initProducer", name: "" }, { op: "initProducer", name: "svc" }, { op: "initProducer", name: "" }, { op: "initProducer", name: "svc" });
  const first = a.appliedIndex - 3;
  assert.deepEqual([0, 1, 2, 3].map((k) => a.initResult(first + k)), [{ id: 1, epoch: 0 }, { id: 2, epoch: 0 }, { id: 3, epoch: 0 }, { id: 2, epoch: 1 }]);
  assert.deepEqual(a.producers.get("svc"), { name: "svc", id: 2, epoch: 1, initIndex: first + 3 });
  assert.equal(a.producers.size, 1, "anonymous producers are not recorded");
  assert.equal(a.producerEpoch(2), 1);
  assert.equal(a.producerEpoch(1), undefined);
  const b = new MetadataState();
  b.restore({ metadata: { index: a.appliedIndex, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: a.snapshotData() });
  assert.deepEqual(b.snapshotData(), a.snapshotData());
  applyCommands(b, { op: "initProducer", name: "svc" }, { op: "initProducer", name: "" });
  assert.deepEqual([b.initResult(b.appliedIndex - 1), b.initResult(b.appliedIndex)], [{ id: 2, epoch: 2 }, { id: 4, epoch: 0 }], "ids are never reused after a restore");
});

test("a snapshot image written before idempotent producers restores with no producers", () => {
  const old = new TextEncoder().encode(JSON.stringify({ nodes: nodeRecords([1, 2, 3]), topics: [], nextTopicId: 1, nextGroup: 1000 }));
  const m = new MetadataState();
  m.restore({ metadata: { index: 5, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: old });
  applyCommands(m, { op: "initProducer", name: "x" });
  assert.deepEqual(m.initResult(m.appliedIndex), { id: 1, epoch: 0 });
});

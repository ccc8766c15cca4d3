/**
 * The gRPC handlers without a network: each handler is called with a request object shaped like
 * @grpc/proto-loader's output, against an in-process single-node cluster. Checks request
 * validation, defaults, the wire shape of answers, and that failures become statuses with trailers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { InProcessCluster } from "../broker/testing/in-process-cluster.js";
import { brokerServiceImplementation } from "./broker-service.js";
import { TRAILER_CODE } from "./status.js";
import { silentLogger } from "../lib/logger.js";
import { CODEC_GZIP, encodeBatch, readBatchHeader } from "../format/index.js";

const SEED = Number(process.env["BROKER_TEST_SEED"] ?? 11);
console.log(`broker-service tests: seed ${SEED} (replay with BROKER_TEST_SEED=${SEED})`);

type Outcome = { err: Partial<ServiceError> | null; res: Record<string, unknown> | undefined };
type Impl = Record<string, (call: { request: unknown }, cb: (err: Partial<ServiceError> | null, res?: Record<string, unknown>) => void) => void>;

function wireRecord(id: string, body: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, key: Buffer.alloc(0), headers: [], body: Buffer.from(body), producerTimestampMs: 5, ...extra };
}

const codeTrailer = (md: Metadata | undefined): string | undefined => md?.get(TRAILER_CODE)[0]?.toString();

describe("broker service handlers", () => {
  let c: InProcessCluster;
  let accepting = true;
  let impl: Impl;
  const call = (method: string, request: unknown): Promise<Outcome> =>
    new Promise((resolve) => impl[method]!({ request }, (err, res) => resolve({ err, res })));
  /** Calls and expects a failure with `grpcStatus` and trailer `code`. */
  const fails = async (method: string, request: unknown, grpcStatus: status, code: string, message?: RegExp): Promise<void> => {
    const { err } = await call(method, request);
    assert.ok(err, `${method} succeeded`);
    assert.equal(codeTrailer(err.metadata), code, err.details);
    assert.equal(err.code, grpcStatus, err.details);
    if (message !== undefined) assert.match(err.details ?? "", message);
  };

  before(async () => {
    c = await InProcessCluster.start({ nodes: 1, seed: SEED });
    const n = c.nodes[0]!;
    impl = brokerServiceImplementation({
      clusterId: "test",
      nodeId: n.id,
      metadata: n.metadata,
      frontend: n.frontend,
      broker: n.broker,
      controllerVoters: () => [1],
      accepting: () => accepting,
      log: silentLogger,
    }) as unknown as Impl;
    await c.leaderOf(0);
  });
  after(async () => {
    await c.close();
  });

  test("CreateTopic answers with the topic and its partitions; proto3 zeros take the defaults", async () => {
    const { err, res } = await call("CreateTopic", { name: "svc", partitions: 2, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 });
    assert.equal(err, null, err?.details);
    const topic = res!["topic"] as { name: string; replicationFactor: number; maxRecordBytes: number; partitions: { partition: number; replicas: number[] }[] };
    assert.equal(topic.name, "svc");
    assert.equal(topic.replicationFactor, 1);
    assert.equal(topic.maxRecordBytes, 1024 * 1024);
    assert.deepEqual(topic.partitions.map((p) => [p.partition, p.replicas]), [[0, [1]], [1, [1]]]);
    await c.partitionLeader("svc", 0);
    await c.partitionLeader("svc", 1);
  });

  test("CreateTopic errors map to statuses: bad name INVALID_ARGUMENT, existing ALREADY_EXISTS", async () => {
    await fails("CreateTopic", { name: "no spaces", partitions: 0, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /topic name/);
    await fails("CreateTopic", { name: "svc", partitions: 0, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 }, status.ALREADY_EXISTS, "TOPIC_EXISTS");
  });

  test("Produce of a client-built batch, Fetch of raw batches, record fields, and idempotent records over the wire", async () => {
    await call("CreateTopic", { name: "wire-batch", partitions: 1, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 });
    await c.partitionLeader("wire-batch");
    const batch = Buffer.from(encodeBatch([{ id: "b1", key: new Uint8Array(), headers: [], body: Buffer.from("x".repeat(300)), producerTimestampMs: 1, correlationId: "c", replyTo: "r", contentType: "t", ttlMs: 60_000, priority: 2 }], 0, { codec: CODEC_GZIP }));
    const produced = await call("Produce", { topic: "wire-batch", partition: 0, records: [], timeoutMs: 0, batch, producerId: 0, producerEpoch: 0, baseSequence: 0 });
    assert.equal(produced.err, null, produced.err?.details);
    assert.deepEqual([produced.res!["baseOffset"], produced.res!["count"], produced.res!["duplicate"]], [0, 1, false]);
    const raw = await call("Fetch", { topic: "wire-batch", partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, rawBatches: true, includeExpired: false });
    const batches = raw.res!["batches"] as { baseOffset: number; data: Buffer }[];
    assert.deepEqual(batches.map((b) => [b.baseOffset, readBatchHeader(b.data)!.codec]), [[0, CODEC_GZIP]]);
    assert.ok(Number(raw.res!["brokerTimeMs"]) > 1_600_000_000_000);
    const decoded = await call("Fetch", { topic: "wire-batch", partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, rawBatches: false, includeExpired: false });
    const r = (decoded.res!["records"] as Record<string, unknown>[])[0]!;
    assert.deepEqual([r["correlationId"], r["replyTo"], r["contentType"], r["ttlMs"], r["priority"], r["expired"]], ["c", "r", "t", 60_000, 2, false]);

    await fails("Produce", { topic: "wire-batch", partition: 0, records: [wireRecord("a", "b")], timeoutMs: 0, batch }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /records or a batch, not both/);
    await fails("Produce", { topic: "wire-batch", partition: 0, records: [], timeoutMs: 0, batch: Buffer.from([2, 1, 0]) }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /malformed record batch/);
    await fails("Produce", { topic: "wire-batch", partition: 0, records: [wireRecord("a", "b", { priority: 10 })], timeoutMs: 0 }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /priority/);

    const session = await call("InitProducer", { producerName: "" });
    const producerId = session.res!["producerId"] as number;
    const records = { topic: "wire-batch", partition: 0, records: [wireRecord("i1", "x"), wireRecord("i2", "y")], timeoutMs: 0, producerId, producerEpoch: 0, baseSequence: 0 };
    const first = await call("Produce", records);
    const retry = await call("Produce", records);
    assert.deepEqual([first.res!["baseOffset"], first.res!["duplicate"]], [1, false]);
    assert.deepEqual([retry.res!["baseOffset"], retry.res!["duplicate"]], [1, true]);
    await fails("Produce", { ...records, baseSequence: 5 }, status.ABORTED, "OUT_OF_ORDER_SEQUENCE", /expected sequence 2, got 5/);
    await fails("InitProducer", { producerName: "x".repeat(250) }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /producer name/);
  });

  test("Produce then Fetch round-trip in wire shapes; an empty id gets a generated one", async () => {
    const produced = await call("Produce", {
      topic: "svc",
      partition: 0,
      records: [wireRecord("a", "one", { key: Buffer.from("k"), headers: [{ key: "h", value: Buffer.from("v") }] }), wireRecord("", "two")],
      timeoutMs: 0,
    });
    assert.equal(produced.err, null, produced.err?.details);
    assert.equal(produced.res!["baseOffset"], 0);
    assert.equal(produced.res!["count"], 2);
    const fetched = await call("Fetch", { topic: "svc", partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0 });
    assert.equal(fetched.err, null, fetched.err?.details);
    const records = fetched.res!["records"] as { id: string; body: Buffer; key: Buffer; headers: { key: string; value: Buffer }[]; offset: number; producerTimestampMs: number; brokerTimestampMs: number }[];
    assert.deepEqual(records.map((r) => [r.offset, r.body.toString()]), [[0, "one"], [1, "two"]]);
    assert.equal(records[0]!.id, "a");
    assert.match(records[1]!.id, /^[0-9a-f-]{36}$/, "a UUID was generated for the empty id");
    assert.equal(records[0]!.key.toString(), "k");
    assert.deepEqual(records[0]!.headers.map((h) => [h.key, h.value.toString()]), [["h", "v"]]);
    assert.equal(records[0]!.producerTimestampMs, 5);
    assert.ok(records[0]!.brokerTimestampMs > 0);
    assert.ok(Buffer.isBuffer(records[0]!.body), "bytes fields are Buffers for the encoder");
    assert.equal(fetched.res!["highWatermark"], 2);
    assert.equal(fetched.res!["nextOffset"], 2);
  });

  test("Produce validates records: id length, producer timestamp, empty header keys", async () => {
    const produce = (r: Record<string, unknown>) => ({ topic: "svc", partition: 0, records: [r], timeoutMs: 0 });
    await fails("Produce", produce(wireRecord("x".repeat(257), "b")), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /record 0: id is 257 characters; at most 256/);
    await fails("Produce", produce(wireRecord("a", "b", { producerTimestampMs: -1 })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /producer_timestamp_ms/);
    await fails("Produce", produce(wireRecord("a", "b", { headers: [{ key: "", value: Buffer.alloc(0) }] })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /header keys must not be empty/);
    await fails("Produce", { topic: "svc", partition: 0, records: [], timeoutMs: 0 }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", /at least one record/);
  });

  test("Produce with a header key too long for the batch format is INVALID_ARGUMENT, not INTERNAL", async () => {
    const r = wireRecord("a", "b", { headers: [{ key: "k".repeat(70_000), value: Buffer.alloc(0) }] });
    await fails("Produce", { topic: "svc", partition: 0, records: [r], timeoutMs: 0 }, status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
  });

  test("unknown topic and partition are NOT_FOUND; a bad offset is OUT_OF_RANGE", async () => {
    await fails("Produce", { topic: "nope", partition: 0, records: [wireRecord("a", "b")], timeoutMs: 0 }, status.NOT_FOUND, "UNKNOWN_TOPIC");
    await fails("Fetch", { topic: "svc", partition: 9, offset: 0, maxBytes: 0, maxWaitMs: 0 }, status.NOT_FOUND, "UNKNOWN_PARTITION");
    await fails("Fetch", { topic: "svc", partition: 0, offset: 99, maxBytes: 0, maxWaitMs: 0 }, status.OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE");
    await fails("DescribeTopic", { name: "nope" }, status.NOT_FOUND, "UNKNOWN_TOPIC");
    await fails("Metadata", { topics: ["nope"] }, status.NOT_FOUND, "UNKNOWN_TOPIC");
  });

  test("Metadata lists nodes, the controller leader and topics", async () => {
    const { err, res } = await call("Metadata", { topics: [] });
    assert.equal(err, null, err?.details);
    assert.equal(res!["clusterId"], "test");
    assert.equal(res!["controllerLeader"], 1);
    assert.deepEqual(res!["nodes"], [{ id: 1, address: "127.0.0.1:7001", controller: true }]);
    assert.ok((res!["topics"] as { name: string }[]).some((t) => t.name === "svc"));
  });

  test("DeleteTopic removes the topic; then it is NOT_FOUND", async () => {
    await call("CreateTopic", { name: "gone", partitions: 1, replicationFactor: 0, maxRecordBytes: 0, retentionMs: 0 });
    const { err } = await call("DeleteTopic", { name: "gone" });
    assert.equal(err, null, err?.details);
    await fails("DeleteTopic", { name: "gone" }, status.NOT_FOUND, "UNKNOWN_TOPIC");
  });

  test("while the node shuts down every call is UNAVAILABLE with SHUTTING_DOWN", async () => {
    accepting = false;
    try {
      await fails("ListTopics", {}, status.UNAVAILABLE, "SHUTTING_DOWN", /shutting down/);
      await fails("Produce", { topic: "svc", partition: 0, records: [wireRecord("a", "b")], timeoutMs: 0 }, status.UNAVAILABLE, "SHUTTING_DOWN");
    } finally {
      accepting = true;
    }
  });
});

/**
 * GrpcTransport on loopback: real gRPC servers on 127.0.0.1 (port 0), ManualClocks so that the
 * reconnect backoff only elapses when a test says so, and bounded polling instead of sleeps.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import type { GroupId, NodeId } from "../lib/ids.js";
import { SeededRandom } from "../lib/random.js";
import type { GroupMessage } from "../multiraft/ports.js";
import { message } from "../raft/index.js";
import { decodeAccepted, encodeFrame, frameToObject, SNAPSHOT_CHUNK_OVERHEAD_BYTES } from "./codec.js";
import {
  append,
  bindLoopback,
  CLUSTER,
  connectAll,
  heartbeat,
  receivedFrom,
  settle,
  snap,
  startNode,
  unreachableGroups,
  waitFor,
  type TestNode,
  type TestNodeOptions,
} from "./testing/loopback.js";
import { openRawStream, startRecordingPeer } from "./testing/recording-peer.js";

const MiB = 1024 * 1024;

/** Starts test nodes that are closed when the test ends. */
async function nodes(t: TestContext, ...options: TestNodeOptions[]): Promise<TestNode[]> {
  const started = await Promise.all(options.map((o) => startNode(o)));
  t.after(() => Promise.all(started.map((n) => n.close())));
  return started;
}

/** A deterministic mix of message types for many groups, from `from` to `to`. */
function traffic(from: NodeId, to: NodeId, batches: number, perBatch: number, seed: number): GroupMessage[][] {
  const random = new SeededRandom(seed);
  const out: GroupMessage[][] = [];
  for (let b = 0; b < batches; b++) {
    const batch: GroupMessage[] = [];
    for (let i = 0; i < perBatch; i++) {
      const group = random.int(200);
      const kind = random.int(4);
      if (kind === 0) batch.push(heartbeat(group, from, to, 3, b * 100 + i));
      else if (kind === 1) batch.push(append(group, from, to, b * 10 + i, [new Uint8Array([b, i, group & 255])]));
      else if (kind === 2) batch.push({ group, message: message({ type: "heartbeatResp", from, to, term: 3, context: `r${b}` }) });
      else batch.push({ group, message: message({ type: "appResp", from, to, term: 3, index: b * 10 + i, reject: random.chance(0.2) }) });
    }
    out.push(batch);
  }
  return out;
}

/** Sends batches, several send() calls per event-loop turn, a turn between groups of three. */
async function sendAll(node: TestNode, to: NodeId, batches: readonly GroupMessage[][]): Promise<void> {
  for (let i = 0; i < batches.length; i++) {
    node.transport.send(to, batches[i]!);
    if (i % 3 === 2) await settle(1);
  }
}

test("two transports exchange the messages of many groups, in order, both ways", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2 });
  connectAll([a!, b!]);
  const ab = traffic(1, 2, 60, 25, 1);
  const ba = traffic(2, 1, 60, 25, 2);
  await Promise.all([sendAll(a!, 2, ab), sendAll(b!, 1, ba)]);
  await waitFor(() => receivedFrom(b!, 1).length === 1500 && receivedFrom(a!, 2).length === 1500, "1500 messages each way");
  assert.deepEqual(receivedFrom(b!, 1), ab.flat());
  assert.deepEqual(receivedFrom(a!, 2), ba.flat());
  assert.deepEqual([a!.unreachable, b!.unreachable], [[], []]);
  assert.equal(a!.transport.linkState(2), "up");
});

test("three transports, all to all: every receiver sees each sender's messages in send order", async (t) => {
  const all = await nodes(t, { id: 1 }, { id: 2 }, { id: 3 });
  connectAll(all);
  const sent = new Map<string, GroupMessage[][]>();
  for (const from of all) for (const to of all) if (from !== to) sent.set(`${from.id}>${to.id}`, traffic(from.id, to.id, 20, 40, from.id * 10 + to.id));
  await Promise.all([...sent].map(([key, batches]) => sendAll(all[Number(key[0]) - 1]!, Number(key[2]), batches)));
  await waitFor(() => all.every((n) => n.received.reduce((s, r) => s + r.messages.length, 0) === 1600), "800 messages from each peer");
  for (const [key, batches] of sent) assert.deepEqual(receivedFrom(all[Number(key[2]) - 1]!, Number(key[0])), batches.flat(), key);
});

test("one event-loop turn of sends is one frame, and heartbeats travel in the compact field", async (t) => {
  const peer = await startRecordingPeer(2);
  t.after(() => peer.close());
  const [a] = await nodes(t, { id: 1 });
  a!.transport.setPeer(2, peer.address);
  const beats = Array.from({ length: 1000 }, (_, g) => heartbeat(g, 1, 2, 5, 77));
  a!.transport.send(2, beats.slice(0, 400));
  a!.transport.send(2, beats.slice(400, 900));
  a!.transport.send(2, beats.slice(900));
  await waitFor(() => peer.frames.length === 2, "the hello and one frame");
  const frame = frameToObject(peer.frames[1]!) as { fromNode: number; clusterId: string; items: { group: number; kind: string }[] };
  assert.equal(frame.fromNode, 1);
  assert.equal(frame.clusterId, CLUSTER);
  assert.equal(frame.items.length, 1000);
  assert.ok(frame.items.every((item, i) => item.kind === "heartbeat" && item.group === i));
  assert.ok(peer.frames[1]!.byteLength < 13 * 1000, `${peer.frames[1]!.byteLength} bytes for 1000 heartbeats`);
  assert.equal((frameToObject(peer.frames[0]!) as { items: unknown[] }).items.length, 0, "the hello frame is empty");

  a!.transport.send(2, [heartbeat(1, 1, 2)]);
  await settle();
  a!.transport.send(2, [heartbeat(2, 1, 2)]);
  await waitFor(() => peer.frames.length === 4, "one frame per turn");
});

test("an empty send is a keep-alive: an empty frame, delivered as an empty list, unless messages go out in the same turn", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2 });
  connectAll([a!, b!]);
  a!.transport.send(2, []);
  await waitFor(() => b!.received.length === 1, "the keep-alive");
  assert.deepEqual(b!.received, [{ from: 1, messages: [] }], "the keep-alive is delivered (the hello before it is not)");

  a!.transport.send(2, []);
  a!.transport.send(2, [heartbeat(3, 1, 2)]);
  await waitFor(() => b!.received.length === 2, "the next frame");
  await settle();
  assert.deepEqual(b!.received.slice(1), [{ from: 1, messages: [heartbeat(3, 1, 2)] }], "the heartbeat's frame stands in for the keep-alive");

  a!.transport.send(9, []); // an unknown peer: nothing to send, nothing to report
  await settle();
  assert.deepEqual(a!.unreachable, []);
});

test("malformed and oversize frames are dropped with a log line; the stream stays open", async (t) => {
  const [b] = await nodes(t, { id: 2, limits: { frameBytesMax: 64 * 1024, queueBytesMax: 64 * 1024 }, serverReceiveBytesMax: MiB });
  const { client, call } = openRawStream(b!.address);
  t.after(() => client.close());
  const replies: Buffer[] = [];
  call.on("data", (r: Buffer) => replies.push(r));
  call.on("error", () => {});
  call.write(Buffer.from([0xff, 0xff, 0xff])); // not protobuf
  call.write(encodeFrame({ from: 0, to: 2, clusterId: CLUSTER }, [])); // sender 0
  call.write(encodeFrame({ from: 1, to: 2, clusterId: CLUSTER }, [append(5, 1, 2, 0, [new Uint8Array(100 * 1024)])])); // 100 KiB > 64 KiB
  call.write(encodeFrame({ from: 1, to: 2, clusterId: CLUSTER }, [heartbeat(9, 1, 2, 4, 8)]));
  await waitFor(() => b!.received.length === 1, "the valid frame");
  assert.deepEqual(b!.received, [{ from: 1, messages: [heartbeat(9, 1, 2, 4, 8)] }]);
  assert.equal(b!.logger.find("dropped malformed frame").length, 2);
  assert.equal(b!.logger.find("dropped oversize frame").length, 1);
  await waitFor(() => replies.length === 1, "StreamAccepted");
  assert.deepEqual(decodeAccepted(replies[0]!), { ok: true, value: { nodeId: 2, clusterId: CLUSTER } });
  call.end();
});

test("a frame from another cluster, or for another node, ends the stream with FAILED_PRECONDITION; a change of sender with INVALID_ARGUMENT", async (t) => {
  const [b] = await nodes(t, { id: 2 });
  for (const [ids, expected] of [
    [{ from: 1, to: 2, clusterId: "other" }, /frame from node 1 of cluster "other" rejected: node 2 is in cluster "test-cluster"/],
    [{ from: 1, to: 7, clusterId: CLUSTER }, /frame for node 7 rejected: this is node 2/],
  ] as const) {
    const { client, call } = openRawStream(b!.address);
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    call.on("data", () => {});
    call.write(encodeFrame(ids, [heartbeat(1, ids.from, ids.to)]));
    const s = await status;
    client.close();
    assert.equal(s.code, grpc.status.FAILED_PRECONDITION);
    assert.match(s.details, expected);
  }
  assert.deepEqual(b!.received, []);

  // A stream belongs to the node that opened it: a frame naming another sender ends it.
  const { client, call } = openRawStream(b!.address);
  t.after(() => client.close());
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  call.on("data", () => {});
  call.write(encodeFrame({ from: 1, to: 2, clusterId: CLUSTER }, [heartbeat(1, 1, 2)]));
  call.write(encodeFrame({ from: 3, to: 2, clusterId: CLUSTER }, [heartbeat(2, 3, 2)]));
  const s = await status;
  assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
  assert.match(s.details, /frame from node 3 on the stream of node 1/);
  assert.deepEqual(b!.received, [{ from: 1, messages: [heartbeat(1, 1, 2)] }]);
});

test("transports of different clusters refuse each other; the sender reports the groups unreachable", async (t) => {
  const [a, b] = await nodes(t, { id: 1, clusterId: "east" }, { id: 2, clusterId: "west" });
  a!.transport.setPeer(2, b!.address);
  a!.transport.send(2, [heartbeat(4, 1, 2), append(6, 1, 2, 3, [new Uint8Array([1])])]);
  await waitFor(() => unreachableGroups(a!, 2).size === 2, "groups 4 and 6 reported");
  assert.deepEqual(unreachableGroups(a!, 2), new Set([4, 6]));
  assert.equal(a!.transport.linkState(2), "backoff");
  assert.deepEqual(b!.received, []);
  const [line] = a!.logger.find("cannot reach peer");
  assert.equal(line?.level, "error");
  assert.match(String(line?.fields["reason"]), /FAILED_PRECONDITION: frame from node 1 of cluster "east" rejected/);
});

test("after a peer's server stops, sends are reported unreachable; once it is back, later sends are delivered", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2 });
  connectAll([a!, b!]);
  a!.transport.send(2, [heartbeat(1, 1, 2)]);
  await waitFor(() => receivedFrom(b!, 1).length === 1, "the first heartbeat");

  await b!.close();
  await waitFor(() => a!.transport.linkState(2) === "backoff", "the link to notice");
  a!.transport.send(2, [heartbeat(2, 1, 2), heartbeat(3, 1, 2)]);
  await waitFor(() => unreachableGroups(a!, 2).has(3), "sends while down reported");
  assert.ok(unreachableGroups(a!, 2).has(2));

  const [b2] = await nodes(t, { id: 2, port: b!.port });
  a!.clock.advance(a!.transport.limits.backoffMaxMs);
  assert.equal(a!.transport.linkState(2), "idle", "the backoff has elapsed");
  a!.transport.send(2, [heartbeat(4, 1, 2), heartbeat(5, 1, 2)]);
  await waitFor(() => receivedFrom(b2!, 1).length === 2, "sends after the restart");
  assert.deepEqual(receivedFrom(b2!, 1).map((gm) => gm.group), [4, 5]);
  assert.equal(a!.transport.linkState(2), "up");
});

test("the reconnect backoff doubles per failure, within [d/2, d], and resets on success", async (t) => {
  const dead = new grpc.Server();
  const port = await bindLoopback(dead);
  dead.forceShutdown();
  const [a] = await nodes(t, { id: 1, limits: { backoffBaseMs: 100, backoffMaxMs: 400 } });
  a!.transport.setPeer(2, `127.0.0.1:${port}`);
  for (const ceiling of [100, 200, 400, 400]) {
    a!.transport.send(2, [heartbeat(1, 1, 2)]);
    await waitFor(() => a!.transport.linkState(2) === "backoff", "a failed attempt");
    a!.clock.advance(ceiling / 2 - 1);
    assert.equal(a!.transport.linkState(2), "backoff", `still backing off before ${ceiling / 2} ms`);
    a!.clock.advance(ceiling / 2 + 1);
    assert.equal(a!.transport.linkState(2), "idle", `retrying by ${ceiling} ms`);
  }
  const failures = a!.logger.lines.filter((l) => l.message === "cannot reach peer");
  assert.deepEqual(failures.map((l) => l.fields["failures"]), [1, 2, 3, 4]);
  assert.deepEqual(failures.map((l) => l.level), ["warn", "debug", "debug", "debug"], "only the first failure of a series is a warning");

  const [b] = await nodes(t, { id: 2, port });
  a!.transport.send(2, [heartbeat(2, 1, 2)]);
  await waitFor(() => receivedFrom(b!, 1).length === 1, "delivery once the peer is up");
  await b!.close();
  await waitFor(() => a!.transport.linkState(2) === "backoff", "the stream to end");
  a!.clock.advance(100);
  assert.equal(a!.transport.linkState(2), "idle", "an accepted stream reset the backoff to its base");
});

test("a 5 MiB snapshot travels in 1 MiB chunks, is reassembled, and is reported ok", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2 });
  connectAll([a!, b!]);
  const data = Uint8Array.from({ length: 5 * MiB }, (_, i) => (i * 31 + (i >> 12)) & 255);
  const gm = snap(12, 1, 2, data);
  a!.transport.send(2, [heartbeat(11, 1, 2), gm, heartbeat(13, 1, 2)]);
  await waitFor(() => a!.snapshots.length === 1 && receivedFrom(b!, 1).length === 3, "the snapshot status and delivery", 15_000);
  assert.deepEqual(a!.snapshots, [{ to: 2, group: 12, ok: true }]);
  const got = receivedFrom(b!, 1);
  // Heartbeats go on the stream, the snapshot on its own call: only their own orders are kept.
  assert.deepEqual(got.filter((m) => m.message.type === "heartbeat").map((m) => m.group), [11, 13]);
  assert.deepEqual(got.find((m) => m.message.type === "snap"), gm);

  const peer = await startRecordingPeer(3);
  t.after(() => peer.close());
  a!.transport.setPeer(3, peer.address);
  a!.transport.send(3, [snap(12, 1, 3, data)]);
  await waitFor(() => a!.snapshots.length === 2, "the second snapshot status", 15_000);
  assert.equal(a!.snapshots[1]!.ok, true);
  assert.equal(peer.snapshotChunks.length, 1 + 5, "a header chunk and five data chunks");
  for (const c of peer.snapshotChunks.slice(1)) assert.ok(c.byteLength <= MiB + SNAPSHOT_CHUNK_OVERHEAD_BYTES);
});

test("a snapshot to a dead peer is reported failed", async (t) => {
  const dead = new grpc.Server();
  const port = await bindLoopback(dead);
  dead.forceShutdown();
  const [a] = await nodes(t, { id: 1 });
  a!.transport.setPeer(2, `127.0.0.1:${port}`);
  a!.transport.send(2, [snap(8, 1, 2, new Uint8Array(3 * MiB))]);
  await waitFor(() => a!.snapshots.length === 1, "the snapshot status");
  assert.deepEqual(a!.snapshots, [{ to: 2, group: 8, ok: false }]);
  assert.equal(a!.logger.find("snapshot failed").length, 1);
  // Once the link is known down, a snapshot fails at once, without a call.
  a!.transport.send(2, [heartbeat(1, 1, 2)]);
  await waitFor(() => a!.transport.linkState(2) === "backoff", "the link to fail");
  a!.transport.send(2, [snap(9, 1, 2, new Uint8Array(10))]);
  await waitFor(() => a!.snapshots.length === 2, "the second status");
  assert.deepEqual(a!.snapshots[1], { to: 2, group: 9, ok: false });
});

test("a receiver refuses a snapshot over snapshotBytesMax, and the sender reports it failed", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2, limits: { snapshotBytesMax: MiB } });
  connectAll([a!, b!]);
  a!.transport.send(2, [snap(3, 1, 2, new Uint8Array(2 * MiB))]);
  await waitFor(() => a!.snapshots.length === 1, "the snapshot status");
  assert.deepEqual(a!.snapshots, [{ to: 2, group: 3, ok: false }]);
  assert.match(String(b!.logger.find("refused snapshot")[0]?.fields["details"]), /exceeds snapshotBytesMax/);
  assert.deepEqual(b!.received, []);
});

test("a message larger than a frame is dropped and reported; the rest of its batch is delivered", async (t) => {
  const [a, b] = await nodes(t, { id: 1, limits: { frameBytesMax: 64 * 1024, queueBytesMax: MiB } }, { id: 2 });
  connectAll([a!, b!]);
  const big = append(7, 1, 2, 10, [new Uint8Array(40 * 1024), new Uint8Array(40 * 1024)]);
  a!.transport.send(2, [heartbeat(6, 1, 2), big, heartbeat(8, 1, 2)]);
  await waitFor(() => receivedFrom(b!, 1).length === 2 && a!.unreachable.length === 1, "delivery and the report");
  assert.deepEqual(receivedFrom(b!, 1).map((gm) => gm.group), [6, 8]);
  assert.deepEqual(a!.unreachable, [{ to: 2, groups: [7] }]);
  assert.equal(a!.logger.find("dropped message larger than a frame")[0]?.fields["group"], 7);
  // Many messages that together exceed a frame are split over several frames, in order.
  const many = Array.from({ length: 6 }, (_, i) => append(20 + i, 1, 2, 0, [new Uint8Array(30 * 1024)]));
  a!.transport.send(2, many);
  await waitFor(() => receivedFrom(b!, 1).length === 8, "the six appends");
  assert.deepEqual(receivedFrom(b!, 1).slice(2), many);
});

test("a full peer queue drops new messages and reports their groups", async (t) => {
  const [a, b] = await nodes(t, { id: 1, limits: { queueMessagesMax: 10 } }, { id: 2 });
  connectAll([a!, b!]);
  // The link is idle: the batch waits in the queue while the stream connects.
  a!.transport.send(2, Array.from({ length: 15 }, (_, g) => heartbeat(g, 1, 2)));
  await waitFor(() => receivedFrom(b!, 1).length === 10 && a!.unreachable.length === 1, "ten delivered, five reported");
  assert.deepEqual(receivedFrom(b!, 1).map((gm) => gm.group), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(a!.unreachable, [{ to: 2, groups: [10, 11, 12, 13, 14] }]);
  assert.equal(a!.logger.find("peer queue full").length, 1);
});

test("setPeer moves a peer to a new address; unknown and removed peers are reported unreachable", async (t) => {
  const [a, b, c] = await nodes(t, { id: 1 }, { id: 2 }, { id: 3 });
  a!.transport.setPeer(2, c!.address); // a stale address: node 3 lives there
  a!.transport.send(2, [heartbeat(1, 1, 2)]);
  await waitFor(() => a!.unreachable.length === 1, "the stale address refused");
  assert.match(String(a!.logger.find("cannot reach peer")[0]?.fields["reason"]), /frame for node 2 rejected: this is node 3/);
  a!.transport.setPeer(2, b!.address);
  assert.equal(a!.transport.linkState(2), "idle", "a new address starts afresh, without waiting for the backoff");
  a!.transport.send(2, [heartbeat(2, 1, 2)]);
  await waitFor(() => receivedFrom(b!, 1).length === 1, "delivery at the new address");

  a!.transport.removePeer(2);
  assert.equal(a!.transport.linkState(2), undefined);
  a!.transport.send(2, [heartbeat(3, 1, 2), snap(4, 1, 2, new Uint8Array(1))]);
  a!.transport.send(9, [heartbeat(5, 1, 9)]);
  await waitFor(() => a!.unreachable.length === 3 && a!.snapshots.length === 1, "reports for unknown peers");
  assert.deepEqual(a!.unreachable.slice(1), [{ to: 2, groups: [3] }, { to: 9, groups: [5] }]);
  assert.deepEqual(a!.snapshots, [{ to: 2, group: 4, ok: false }]);
  a!.transport.setPeer(1, "127.0.0.1:1"); // this node's own entry in a cluster map is ignored
  assert.equal(a!.transport.linkState(1), undefined);
});

test("handlers never run inside send(): the host may send again from a handler", async (t) => {
  const [a] = await nodes(t, { id: 1 });
  let inSend = false;
  const calls: GroupId[][] = [];
  a!.transport.onUnreachable((_to, groups) => {
    assert.equal(inSend, false);
    calls.push([...groups]);
    if (calls.length === 1) a!.transport.send(5, [heartbeat(99, 1, 5)]);
  });
  inSend = true;
  a!.transport.send(5, [heartbeat(1, 1, 5), heartbeat(1, 1, 5), heartbeat(2, 1, 5)]);
  inSend = false;
  await waitFor(() => calls.length === 2, "two reports");
  assert.deepEqual(calls, [[1, 2], [99]]);
});

test("close() ends streams and snapshot calls promptly; peers see the stream end; later sends are ignored", async (t) => {
  const [a, b] = await nodes(t, { id: 1 }, { id: 2 });
  connectAll([a!, b!]);
  a!.transport.send(2, [heartbeat(1, 1, 2)]);
  b!.transport.send(1, [heartbeat(1, 2, 1)]);
  await waitFor(() => receivedFrom(b!, 1).length === 1 && receivedFrom(a!, 2).length === 1, "both streams up");
  a!.transport.send(2, [snap(3, 1, 2, new Uint8Array(20 * MiB))]);
  const started = Date.now();
  await a!.transport.close();
  assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
  a!.transport.send(2, [heartbeat(2, 1, 2)]);
  await waitFor(() => b!.transport.linkState(1) === "backoff", "b to see its stream to a end");
  await settle();
  assert.equal(a!.transport.linkState(2), "closed");
  assert.deepEqual(a!.unreachable, []);
  assert.deepEqual(a!.snapshots, [], "no handler runs after close()");
});

test("the limits are checked at construction, naming the option", async () => {
  const { GrpcTransport } = await import("./grpc-transport.js");
  const { ManualClock } = await import("../lib/clock.js");
  const { silentLogger } = await import("../lib/logger.js");
  const build = (limits: object) =>
    new GrpcTransport({ nodeId: 1, clusterId: "c", peers: new Map(), clock: new ManualClock(), random: new SeededRandom(1), logger: silentLogger, limits });
  assert.throws(() => build({ snapshotChunkBytes: 2 * MiB }), /snapshotChunkBytes must be at most 1048576/);
  assert.throws(() => build({ frameBytesMax: 64 * 1024, snapshotChunkBytes: MiB }), /snapshotChunkBytes plus 16 bytes of framing must fit frameBytesMax/);
  assert.equal(build({ frameBytesMax: 64 * 1024 }).limits.snapshotChunkBytes, 64 * 1024 - 16, "the default chunk fits a small frame");
  assert.throws(() => build({ queueBytesMax: 1024 }), /queueBytesMax must be at least frameBytesMax/);
  assert.throws(() => build({ backoffBaseMs: 5000 }), /backoffBaseMs must not exceed backoffMaxMs/);
  assert.throws(() => build({ framesInflightMax: 0 }), /framesInflightMax must be a positive integer/);
});

/**
 * The wire codec: every message type round-trips, heartbeats use the compact records, size bounds
 * hold, and malformed input is rejected with a reason instead of throwing. The property tests take
 * their seed from FC_SEED, else a fixed default; it is printed either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { loadSync } from "@grpc/proto-loader";
import type { GroupId, NodeId } from "../lib/ids.js";
import type { GroupMessage } from "../multiraft/ports.js";
import { message, type Entry, type Message, type MessageType } from "../raft/index.js";
import {
  decodeAccepted,
  decodeFrame,
  encodeAccepted,
  encodeFrame,
  encodeSnapshotChunks,
  frameOverheadBytes,
  frameToObject,
  itemBytesMax,
  RAFT_PROTO_PATH,
  SnapshotAssembler,
  type PeerIds,
} from "./codec.js";

const SEED = Number(process.env["FC_SEED"] ?? 20_250_611);
console.log(`codec property seed: ${SEED} (set FC_SEED=<seed> to replay another)`);

const IDS: PeerIds = { from: 1, to: 2, clusterId: "c1" };
const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs);

function roundTrip(messages: readonly GroupMessage[], ids: PeerIds = IDS): readonly GroupMessage[] {
  const decoded = decodeFrame(encodeFrame(ids, messages));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  assert.equal(decoded.value.from, ids.from);
  assert.equal(decoded.value.to, ids.to);
  assert.equal(decoded.value.clusterId, ids.clusterId);
  return decoded.value.messages;
}

function snapshotRoundTrip(gm: GroupMessage, chunkBytes: number, ids: PeerIds = IDS): GroupMessage {
  const assembler = new SnapshotAssembler(1 << 30);
  for (const chunk of encodeSnapshotChunks(ids, gm, chunkBytes)) {
    const r = assembler.accept(chunk);
    assert.ok(r.ok, r.ok ? "" : r.error);
  }
  const done = assembler.finish();
  assert.ok(done.ok, done.ok ? "" : done.error);
  return done.value;
}

const ENTRIES: Entry[] = [
  { term: 2, index: 8, type: "normal", data: bytes(1, 2, 3) },
  { term: 3, index: 9, type: "conf", data: new TextEncoder().encode('{"type":"addVoter","nodeId":3}') },
  { term: 3, index: 10, type: "normal", data: new Uint8Array(0) },
];

/** One message of every type, with every field its type uses set to something non-zero. */
const EVERY_TYPE: Record<Exclude<MessageType, "snap">, Message> = {
  app: message({ type: "app", from: 1, to: 2, term: 3, logTerm: 2, index: 7, entries: ENTRIES, commit: 6 }),
  appResp: message({ type: "appResp", from: 1, to: 2, term: 3, index: 5, reject: true, rejectHint: 4, logTerm: 2, commit: 3 }),
  vote: message({ type: "vote", from: 1, to: 2, term: 4, logTerm: 3, index: 10, context: "transfer" }),
  voteResp: message({ type: "voteResp", from: 1, to: 2, term: 4, reject: true }),
  preVote: message({ type: "preVote", from: 1, to: 2, term: 5, logTerm: 3, index: 10 }),
  preVoteResp: message({ type: "preVoteResp", from: 1, to: 2, term: 5 }),
  heartbeat: message({ type: "heartbeat", from: 1, to: 2, term: 3, commit: 9, context: "read-7", quiesce: true }),
  heartbeatResp: message({ type: "heartbeatResp", from: 1, to: 2, term: 3, commit: 8, context: "read-7" }),
  timeoutNow: message({ type: "timeoutNow", from: 1, to: 2, term: 3 }),
  readIndex: message({ type: "readIndex", from: 1, to: 2, term: 3, context: "ctx" }),
  readIndexResp: message({ type: "readIndexResp", from: 1, to: 2, term: 3, index: 42, context: "ctx" }),
};

test("every message type round-trips through one frame, in order, with group ids", () => {
  const sent = Object.values(EVERY_TYPE).map((m, i): GroupMessage => ({ group: 1000 + i, message: m }));
  const got = roundTrip(sent);
  assert.deepEqual(got, sent);
  assert.ok(got[0]!.message.entries[0]!.data instanceof Uint8Array);
});

test("a snap message round-trips through chunks (metadata, conf state, data, message fields)", () => {
  const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256);
  const gm: GroupMessage = {
    group: 77,
    message: message({
      type: "snap",
      from: 1,
      to: 2,
      term: 9,
      snapshot: { metadata: { index: 500, term: 8, confState: { voters: [1, 2, 3], learners: [4] } }, data },
    }),
  };
  const chunks = [...encodeSnapshotChunks(IDS, gm, 4096)];
  assert.equal(chunks.length, 1 + 3, "a header chunk, then ceil(10000 / 4096) data chunks");
  assert.deepEqual(snapshotRoundTrip(gm, 4096), gm);
  const empty = { ...gm, message: { ...gm.message, snapshot: { ...gm.message.snapshot!, data: new Uint8Array(0) } } };
  assert.deepEqual(snapshotRoundTrip(empty, 4096), empty, "an empty snapshot is a header only");
});

test("heartbeats and responses use the compact records; one with extra fields falls back to a full message", () => {
  const beats = Array.from({ length: 1000 }, (_, g) => ({ group: g, message: message({ type: "heartbeat", from: 1, to: 2, term: 7, commit: 123_456 }) }));
  const frame = encodeFrame(IDS, beats);
  const raw = frameToObject(frame) as { items: { kind: string }[] };
  assert.ok(raw.items.every((item) => item.kind === "heartbeat"));
  const perBeat = frame.byteLength / beats.length;
  assert.ok(perBeat <= 13, `a coalesced heartbeat costs ${perBeat} bytes`);
  // The same heartbeats as full messages (as a peer could send them) decode the same but cost more.
  const full = rawFrame({ items: beats.map((b) => ({ group: b.group, message: { type: "MESSAGE_TYPE_HEARTBEAT", term: 7, commit: 123_456 } })) });
  assert.ok(frame.byteLength < full.byteLength, `compact ${frame.byteLength} bytes, full ${full.byteLength}`);
  assert.deepEqual(roundTrip(beats), beats);
  const decodedFull = decodeFrame(full);
  assert.ok(decodedFull.ok);
  assert.deepEqual(decodedFull.value.messages, beats);

  const odd: GroupMessage = { group: 1, message: message({ type: "heartbeat", from: 1, to: 2, term: 7, logTerm: 1 }) };
  const resp: GroupMessage = { group: 2, message: EVERY_TYPE.heartbeatResp };
  const mixed = frameToObject(encodeFrame(IDS, [odd, resp])) as { items: { kind: string }[] };
  assert.deepEqual(mixed.items.map((i) => i.kind), ["message", "heartbeatResponse"]);
  assert.deepEqual(roundTrip([odd, resp]), [odd, resp]);
});

test("a quiesce heartbeat stays compact (2 bytes more); a heartbeat from a node that predates the flag decodes as not quiescing", () => {
  const plain = { group: 5, message: message({ type: "heartbeat", from: 1, to: 2, term: 7, commit: 123_456 }) };
  const quiesce = { group: 5, message: { ...plain.message, quiesce: true } };
  const raw = frameToObject(encodeFrame(IDS, [quiesce])) as { items: { kind: string; heartbeat: { quiesce: boolean } }[] };
  assert.equal(raw.items[0]!.kind, "heartbeat");
  assert.equal(raw.items[0]!.heartbeat.quiesce, true);
  assert.equal(encodeFrame(IDS, [quiesce]).byteLength, encodeFrame(IDS, [plain]).byteLength + 2);
  assert.deepEqual(roundTrip([quiesce, plain]), [quiesce, plain]);
  // An older encoder knows neither field: its frames carry none, and both decode as false.
  const old = decodeFrame(rawFrame({ items: [{ group: 5, heartbeat: { term: 7, commit: 123_456 } }, { group: 6, message: { type: "MESSAGE_TYPE_HEARTBEAT", term: 7 } }] }));
  assert.ok(old.ok);
  assert.deepEqual(old.value.messages.map((gm) => gm.message.quiesce), [false, false]);
  // A heartbeat response has no quiesce field in its compact record: one that sets the flag travels in full.
  const resp = { group: 5, message: message({ type: "heartbeatResp", from: 1, to: 2, term: 7, quiesce: true }) };
  assert.equal((frameToObject(encodeFrame(IDS, [resp])) as { items: { kind: string }[] }).items[0]!.kind, "message");
  assert.deepEqual(roundTrip([resp]), [resp]);
});

test("decoded entry data is copied out of the frame buffer", () => {
  const frame = encodeFrame(IDS, [{ group: 1, message: EVERY_TYPE.app }]);
  const decoded = decodeFrame(frame);
  assert.ok(decoded.ok);
  const data = decoded.value.messages[0]!.message.entries[0]!.data;
  frame.fill(0);
  assert.deepEqual(data, bytes(1, 2, 3));
  assert.ok(data.buffer.byteLength === data.byteLength, "the entry owns its own small buffer");
});

test("the stream reply round-trips and is checked", () => {
  assert.deepEqual(decodeAccepted(encodeAccepted(5, "c1")), { ok: true, value: { nodeId: 5, clusterId: "c1" } });
  assert.equal(decodeAccepted(encodeAccepted(0, "c1")).ok, false, "node id 0 is not a node");
});

// ------------------------------------------------------------------ property tests

const MAX_ID = Number.MAX_SAFE_INTEGER;
const uint = fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: MAX_ID }));
const nodeIdArb = fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: MAX_ID }));
const entryArb = fc.record({ term: uint, type: fc.constantFrom("normal" as const, "conf" as const), data: fc.uint8Array({ maxLength: 64 }) });
const FRAME_TYPES = Object.keys(EVERY_TYPE) as Exclude<MessageType, "snap">[];

function messageArb(from: NodeId, to: NodeId): fc.Arbitrary<Message> {
  const full = fc
    .record({
      type: fc.constantFrom(...FRAME_TYPES),
      term: uint,
      logTerm: uint,
      index: fc.integer({ min: 0, max: 2 ** 52 }),
      entries: fc.array(entryArb, { maxLength: 4 }),
      commit: uint,
      reject: fc.boolean(),
      rejectHint: uint,
      context: fc.string({ maxLength: 12, unit: "grapheme" }),
      quiesce: fc.boolean(),
    })
    .map((r) => {
      const entries = r.type === "app" ? r.entries.map((e, i): Entry => ({ ...e, index: r.index + 1 + i })) : [];
      return message({ ...r, from, to, entries });
    });
  const compact = fc
    .record({ type: fc.constantFrom("heartbeat" as const, "heartbeatResp" as const), term: uint, commit: uint, context: fc.string({ maxLength: 8 }), quiesce: fc.boolean() })
    .map((r) => message({ ...r, from, to }));
  return fc.oneof(full, compact);
}

const frameArb = fc
  .record({ from: nodeIdArb, to: nodeIdArb, clusterId: fc.string({ minLength: 1, maxLength: 20 }) })
  .chain((ids) =>
    fc.record({
      ids: fc.constant(ids),
      // fc.record builds null-prototype objects; GroupMessages are plain ones.
      messages: fc.array(fc.tuple(uint, messageArb(ids.from, ids.to)).map(([group, m]): GroupMessage => ({ group, message: m })), { maxLength: 30 }),
    }),
  );

test(`property: any frame round-trips, and its size stays within the bounds the transport sizes frames by (seed ${SEED})`, () => {
  fc.assert(
    fc.property(frameArb, ({ ids, messages }) => {
      const frame = encodeFrame(ids, messages);
      assert.deepEqual(roundTrip(messages, ids), messages);
      const bound = frameOverheadBytes(ids.clusterId) + messages.reduce((sum, gm) => sum + itemBytesMax(gm), 0);
      assert.ok(frame.byteLength <= bound, `frame of ${frame.byteLength} bytes, bound ${bound}`);
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test(`property: any snapshot round-trips through any chunk size (seed ${SEED})`, () => {
  const snapArb = fc.record({
    group: uint,
    term: uint,
    index: uint,
    snapTerm: uint,
    voters: fc.array(nodeIdArb, { maxLength: 5 }),
    learners: fc.array(nodeIdArb, { maxLength: 3 }),
    data: fc.uint8Array({ maxLength: 3000 }),
    chunkBytes: fc.integer({ min: 1, max: 4000 }),
  });
  fc.assert(
    fc.property(snapArb, (s) => {
      const metadata = { index: s.index, term: s.snapTerm, confState: { voters: s.voters, learners: s.learners } };
      const gm: GroupMessage = { group: s.group, message: message({ type: "snap", from: 1, to: 2, term: s.term, snapshot: { metadata, data: s.data } }) };
      assert.deepEqual(snapshotRoundTrip(gm, s.chunkBytes), gm);
    }),
    { seed: SEED, numRuns: 200 },
  );
});

test(`property: arbitrary bytes never throw; they decode to a checked frame or an error (seed ${SEED})`, () => {
  const valid = encodeFrame(IDS, Object.values(EVERY_TYPE).map((m, i) => ({ group: i, message: m })));
  const mutated = fc.record({ at: fc.nat(valid.byteLength - 1), value: fc.nat(255), cut: fc.nat(valid.byteLength) }).map(({ at, value, cut }) => {
    const copy = Buffer.from(valid);
    copy[at] = value;
    return copy.subarray(0, cut);
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), mutated), (buf) => {
      const r = decodeFrame(buf);
      if (!r.ok) return assert.match(r.error, /^malformed frame: /);
      assert.ok(r.value.from > 0 && r.value.to > 0);
      for (const gm of r.value.messages) assert.ok(Number.isSafeInteger(gm.group) && gm.message.type !== "snap");
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

// ------------------------------------------------------------------ malformed input

/** The proto-loader serializer for frames, to build frames the raft-side encoder never would. */
const RAW_STREAM = (loadSync(RAFT_PROTO_PATH, { longs: Number, enums: String, defaults: true, oneofs: true })["raftmq.raft.v1.RaftPeer"] as unknown as Record<
  string,
  { requestSerialize: (o: object) => Buffer }
>)["Stream"]!;

/** A valid frame's raw object with some fields replaced, encoded. */
function rawFrame(overrides: Record<string, unknown>): Buffer {
  const valid = frameToObject(encodeFrame(IDS, [{ group: 1, message: EVERY_TYPE.app }])) as Record<string, unknown>;
  return RAW_STREAM.requestSerialize({ ...valid, ...overrides });
}

function app(over: Record<string, unknown>): Record<string, unknown> {
  return { group: 1, message: { type: "MESSAGE_TYPE_APP", term: 1, index: 7, entries: [{ term: 1, index: 8, type: "ENTRY_TYPE_NORMAL" }], ...over } };
}

test("malformed frames are rejected with a reason, never thrown", () => {
  const cases: [string, Buffer, RegExp][] = [
    ["truncated bytes", encodeFrame(IDS, [{ group: 1, message: EVERY_TYPE.app }]).subarray(0, 20), /malformed frame/],
    ["garbage", Buffer.from([0xff, 0xff, 0xff, 0xff]), /malformed frame/],
    ["sender 0", rawFrame({ fromNode: 0 }), /fromNode is 0/],
    ["unsafe integer", rawFrame({ toNode: 2 ** 60 }), /toNode is not a safe unsigned integer/],
    ["item without a message", rawFrame({ items: [{ group: 4 }] }), /group 4 carries no message/],
    ["unknown message type", rawFrame({ items: [{ group: 1, message: { type: 99 } }] }), /unknown message type 99/],
    ["unspecified message type", rawFrame({ items: [{ group: 1, message: { type: "MESSAGE_TYPE_UNSPECIFIED" } }] }), /unknown message type/],
    ["snap inside a frame", rawFrame({ items: [{ group: 1, message: { type: "MESSAGE_TYPE_SNAP" } }] }), /snap is not allowed/],
    ["unknown entry type", rawFrame({ items: [app({ entries: [{ term: 1, index: 8, type: 7 }] })] }), /unknown entry type/],
    ["gap in entry indexes", rawFrame({ items: [app({ entries: [{ term: 1, index: 9, type: "ENTRY_TYPE_NORMAL" }] })] }), /index 9 where 8/],
    ["entries on a vote", rawFrame({ items: [app({ type: "MESSAGE_TYPE_VOTE" })] }), /vote message carries entries/],
  ];
  for (const [name, buf, reason] of cases) {
    const r = decodeFrame(buf);
    assert.equal(r.ok, false, name);
    assert.match(r.ok ? "" : r.error, reason, name);
  }
});

test("snapshot reassembly rejects missing, surplus, misplaced and oversize data", () => {
  const data = new Uint8Array(100).fill(9);
  const gm: GroupMessage = { group: 3, message: message({ type: "snap", from: 1, to: 2, term: 2, snapshot: { metadata: { index: 5, term: 2, confState: { voters: [1, 2], learners: [] } }, data } }) };
  const [header, first, second] = [...encodeSnapshotChunks(IDS, gm, 60)] as [Buffer, Buffer, Buffer];

  const short = new SnapshotAssembler(1000);
  short.accept(header);
  short.accept(first);
  assert.match(failure(short.finish()), /received 60 of 100 bytes/);

  const surplus = new SnapshotAssembler(1000);
  for (const c of [header, first, second]) surplus.accept(c);
  assert.match(failure(surplus.accept(second)), /more than the announced 100 bytes/);

  const twoHeaders = new SnapshotAssembler(1000);
  twoHeaders.accept(header);
  assert.match(failure(twoHeaders.accept(header)), /a second header/);

  const headless = new SnapshotAssembler(1000);
  assert.match(failure(headless.accept(first)), /header is missing/);
  assert.match(failure(new SnapshotAssembler(1000).finish()), /no header chunk/);

  const tooLarge = new SnapshotAssembler(99).accept(header);
  assert.ok(!tooLarge.ok && "tooLarge" in tooLarge && tooLarge.tooLarge, "the size is checked from the header, before any data");
});

function failure(r: { ok: boolean; error?: string }): string {
  assert.equal(r.ok, false);
  return r.error ?? "";
}

test("itemBytesMax grows with entry data and context; oversize is visible before encoding", () => {
  const small = itemBytesMax({ group: 1, message: EVERY_TYPE.app });
  const big = itemBytesMax({ group: 1 as GroupId, message: { ...EVERY_TYPE.app, entries: [{ ...ENTRIES[0]!, data: new Uint8Array(1 << 20) }] } });
  assert.ok(big >= 1 << 20 && big < small + (1 << 20));
});

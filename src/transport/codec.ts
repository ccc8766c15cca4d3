/**
 * The translation between raft Messages and the wire format of protos/raft.proto. This is the
 * only file that sees both protobuf objects and raft messages: the rest of the transport moves
 * opaque Buffers and raft messages.
 *
 * Decoding never throws. Every decode function returns a {@link Decoded} result, and everything a
 * peer sends is checked (known enums, safe integers, node ids not 0, consecutive entry indexes,
 * sizes), so that a malformed frame is dropped with a log line instead of reaching the Raft core.
 * Decoded entries and snapshots own their bytes (they are copied out of the receive buffer), so
 * a retained entry never pins a whole frame in memory.
 */
import { loadSync, type MessageTypeDefinition } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import type { GroupId, NodeId } from "../lib/ids.js";
import type { GroupMessage } from "../multiraft/ports.js";
import { message, type Entry, type EntryType, type Message, type MessageType, type Snapshot } from "../raft/index.js";

/** The proto file, resolved from this module (dist/src/transport/codec.js → protos/raft.proto). */
export const RAFT_PROTO_PATH = fileURLToPath(new URL("../../../protos/raft.proto", import.meta.url));

const PACKAGE = "raftmq.raft.v1";
const LOADER_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true } as const;

interface MethodCodec {
  readonly path: string;
  readonly requestSerialize: (value: object) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => unknown;
  readonly responseSerialize: (value: object) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => unknown;
}

function loadMethods(): { stream: MethodCodec; installSnapshot: MethodCodec } {
  const definition = loadSync(RAFT_PROTO_PATH, LOADER_OPTIONS);
  const service = definition[`${PACKAGE}.RaftPeer`] as unknown as Record<string, MethodCodec | undefined>;
  const stream = service["Stream"];
  const installSnapshot = service["InstallSnapshot"];
  if (stream === undefined || installSnapshot === undefined || definition[`${PACKAGE}.Frame`] === undefined) {
    throw new Error(`${RAFT_PROTO_PATH} does not define service ${PACKAGE}.RaftPeer with Stream and InstallSnapshot`);
  }
  return { stream, installSnapshot };
}

const METHODS = loadMethods();

/** The gRPC method paths of the peer service (the transport registers them with pass-through serializers). */
export const PEER_METHOD_PATHS = {
  stream: METHODS.stream.path,
  installSnapshot: METHODS.installSnapshot.path,
} as const;

/** The result of decoding peer input: a value, or why the input was rejected. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** Who sends a frame or snapshot to whom, in which cluster. */
export interface PeerIds {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly clusterId: string;
}

/** A decoded frame: its sender, receiver and cluster, and the messages of all groups in order. */
export interface DecodedFrame extends PeerIds {
  readonly messages: readonly GroupMessage[];
}

// ------------------------------------------------------------------ sizes

/** An upper bound on the encoded size of a frame without items, plus the cluster id's UTF-8 bytes. */
export const FRAME_OVERHEAD_BYTES = 32;
/** Upper bounds used by {@link itemBytesMax}: varints of ids are at most 10 bytes, lengths at most 5. */
const COMPACT_ITEM_BYTES_MAX = 64;
const FULL_ITEM_BYTES_MAX = 96;
const ENTRY_OVERHEAD_BYTES_MAX = 40;
/** An upper bound on the encoded size of a snapshot data chunk beyond its data. */
export const SNAPSHOT_CHUNK_OVERHEAD_BYTES = 16;

/**
 * An upper bound on the encoded size of one message inside a frame. The transport sizes frames and
 * queues with it, so a frame built from messages whose bounds fit never exceeds the frame limit.
 */
export function itemBytesMax(gm: GroupMessage): number {
  const m = gm.message;
  const context = Buffer.byteLength(m.context, "utf8");
  if (isCompact(m)) return COMPACT_ITEM_BYTES_MAX + context;
  let bytes = FULL_ITEM_BYTES_MAX + context;
  for (const e of m.entries) bytes += ENTRY_OVERHEAD_BYTES_MAX + e.data.byteLength;
  return bytes;
}

/** An upper bound on the encoded size of a frame carrying no items. */
export function frameOverheadBytes(clusterId: string): number {
  return FRAME_OVERHEAD_BYTES + Buffer.byteLength(clusterId, "utf8");
}

// ------------------------------------------------------------------ enums

const MESSAGE_TYPES: Readonly<Record<MessageType, string>> = {
  app: "MESSAGE_TYPE_APP",
  appResp: "MESSAGE_TYPE_APP_RESP",
  vote: "MESSAGE_TYPE_VOTE",
  voteResp: "MESSAGE_TYPE_VOTE_RESP",
  preVote: "MESSAGE_TYPE_PRE_VOTE",
  preVoteResp: "MESSAGE_TYPE_PRE_VOTE_RESP",
  snap: "MESSAGE_TYPE_SNAP",
  heartbeat: "MESSAGE_TYPE_HEARTBEAT",
  heartbeatResp: "MESSAGE_TYPE_HEARTBEAT_RESP",
  timeoutNow: "MESSAGE_TYPE_TIMEOUT_NOW",
  readIndex: "MESSAGE_TYPE_READ_INDEX",
  readIndexResp: "MESSAGE_TYPE_READ_INDEX_RESP",
};
const MESSAGE_TYPE_OF_WIRE = new Map(Object.entries(MESSAGE_TYPES).map(([k, v]) => [v, k as MessageType]));

const ENTRY_TYPES: Readonly<Record<EntryType, string>> = { normal: "ENTRY_TYPE_NORMAL", conf: "ENTRY_TYPE_CONF" };
const ENTRY_TYPE_OF_WIRE = new Map(Object.entries(ENTRY_TYPES).map(([k, v]) => [v, k as EntryType]));

// ------------------------------------------------------------------ encoding

/**
 * Whether a message travels as a compact heartbeat record: a heartbeat that carries nothing beyond
 * term, commit, context and the quiesce flag, or a heartbeat response that carries nothing beyond
 * term, commit and context (otherwise it travels in full).
 */
export function isCompact(m: Message): boolean {
  return (
    (m.type === "heartbeat" || (m.type === "heartbeatResp" && !m.quiesce)) &&
    m.logTerm === 0 &&
    m.index === 0 &&
    m.entries.length === 0 &&
    !m.reject &&
    m.rejectHint === 0 &&
    m.snapshot === undefined
  );
}

// protobufjs writes every field that is set, even to its zero value; leaving zeros unset keeps
// them off the wire (proto3 decodes a missing field as zero).
function nz<T extends number | string | boolean>(v: T): T | undefined {
  return v === 0 || v === "" || v === false ? undefined : v;
}

function encodeEntry(e: Entry): object {
  return { term: nz(e.term), index: nz(e.index), type: ENTRY_TYPES[e.type], data: e.data.byteLength === 0 ? undefined : e.data };
}

function encodeMessage(m: Message): object {
  return {
    type: MESSAGE_TYPES[m.type],
    term: nz(m.term),
    logTerm: nz(m.logTerm),
    index: nz(m.index),
    entries: m.entries.map(encodeEntry),
    commit: nz(m.commit),
    reject: nz(m.reject),
    rejectHint: nz(m.rejectHint),
    context: nz(m.context),
    quiesce: nz(m.quiesce),
  };
}

function encodeItem(gm: GroupMessage): object {
  const m = gm.message;
  const group = nz(gm.group);
  if (!isCompact(m)) return { group, message: encodeMessage(m) };
  const record = { term: nz(m.term), commit: nz(m.commit), context: nz(m.context) };
  return m.type === "heartbeat" ? { group, heartbeat: { ...record, quiesce: nz(m.quiesce) } } : { group, heartbeatResponse: record };
}

/**
 * Encodes one frame. `messages` must not contain snapshots (they travel via InstallSnapshot); an
 * empty list makes the hello frame that opens a stream.
 */
export function encodeFrame(ids: PeerIds, messages: readonly GroupMessage[]): Buffer {
  return METHODS.stream.requestSerialize({
    fromNode: ids.from,
    toNode: ids.to,
    clusterId: ids.clusterId,
    items: messages.map(encodeItem),
  });
}

/** Encodes the receiver's one reply on a stream. */
export function encodeAccepted(nodeId: NodeId, clusterId: string): Buffer {
  return METHODS.stream.responseSerialize({ nodeId, clusterId });
}

/** Encodes the reply to a complete snapshot. */
export function encodeSnapshotReply(receivedBytes: number): Buffer {
  return METHODS.installSnapshot.responseSerialize({ receivedBytes });
}

/**
 * The chunks of one snapshot message, lazily: first the header, then the data in pieces of at most
 * `chunkBytes` (the data is not copied until a chunk is encoded).
 */
export function* encodeSnapshotChunks(ids: PeerIds, gm: GroupMessage, chunkBytes: number): Generator<Buffer> {
  const snapshot = gm.message.snapshot;
  if (gm.message.type !== "snap" || snapshot === undefined) throw new TypeError("encodeSnapshotChunks: not a snap message with a snapshot");
  if (!(chunkBytes > 0)) throw new RangeError(`encodeSnapshotChunks: chunkBytes must be positive, got ${chunkBytes}`);
  yield METHODS.installSnapshot.requestSerialize({ header: snapshotHeader(ids, gm.group, gm.message, snapshot) });
  for (let at = 0; at < snapshot.data.byteLength; at += chunkBytes) {
    yield METHODS.installSnapshot.requestSerialize({ data: snapshot.data.subarray(at, at + chunkBytes) });
  }
}

function snapshotHeader(ids: PeerIds, group: GroupId, m: Message, snapshot: Snapshot): object {
  const { metadata } = snapshot;
  return {
    fromNode: ids.from,
    toNode: ids.to,
    clusterId: ids.clusterId,
    group: nz(group),
    message: encodeMessage(m),
    metadata: {
      index: nz(metadata.index),
      term: nz(metadata.term),
      confState: { voters: metadata.confState.voters, learners: metadata.confState.learners },
    },
    dataBytes: nz(snapshot.data.byteLength),
  };
}

// ------------------------------------------------------------------ decoding

/** Thrown inside this file only, by the field readers; the decode functions turn it into a result. */
class Malformed extends Error {}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null) throw new Malformed(`${what} is missing`);
  return v as Obj;
}

function uint(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Malformed(`${key} is not a safe unsigned integer: ${String(v)}`);
  return v;
}

function nodeId(o: Obj, key: string): NodeId {
  const id = uint(o, key);
  if (id === 0) throw new Malformed(`${key} is 0`);
  return id;
}

function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new Malformed(`${key} is not a string`);
  return v;
}

function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new Malformed(`${key} is not a boolean`);
  return v;
}

function list(o: Obj, key: string): readonly unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Malformed(`${key} is not a list`);
  return v;
}

/** Copies bytes out of the receive buffer (see the file comment). */
function ownedBytes(o: Obj, key: string): Uint8Array {
  const v = o[key];
  if (v === undefined || v === null) return new Uint8Array(0);
  if (!(v instanceof Uint8Array)) throw new Malformed(`${key} is not bytes`);
  return new Uint8Array(v);
}

function decodeEntry(v: unknown, expectedIndex: number): Entry {
  const o = obj(v, "entry");
  const type = ENTRY_TYPE_OF_WIRE.get(o["type"] as string);
  if (type === undefined) throw new Malformed(`unknown entry type ${String(o["type"])}`);
  const index = uint(o, "index");
  if (index !== expectedIndex) throw new Malformed(`entry index ${index} where ${expectedIndex} was expected`);
  return { term: uint(o, "term"), index, type, data: ownedBytes(o, "data") };
}

function decodeFullMessage(v: unknown, ids: PeerIds, allowSnap: boolean): Message {
  const o = obj(v, "message");
  const type = MESSAGE_TYPE_OF_WIRE.get(o["type"] as string);
  if (type === undefined) throw new Malformed(`unknown message type ${String(o["type"])}`);
  if ((type === "snap") !== allowSnap) throw new Malformed(`message type ${type} is not allowed here`);
  const index = uint(o, "index");
  const rawEntries = list(o, "entries");
  if (rawEntries.length > 0 && type !== "app") throw new Malformed(`${type} message carries entries`);
  if (index + rawEntries.length > Number.MAX_SAFE_INTEGER) throw new Malformed("entry indexes overflow");
  const entries = rawEntries.map((e, i) => decodeEntry(e, index + 1 + i));
  return message({
    type,
    from: ids.from,
    to: ids.to,
    term: uint(o, "term"),
    logTerm: uint(o, "logTerm"),
    index,
    entries,
    commit: uint(o, "commit"),
    reject: bool(o, "reject"),
    rejectHint: uint(o, "rejectHint"),
    context: str(o, "context"),
    quiesce: bool(o, "quiesce"),
  });
}

function decodeCompact(type: "heartbeat" | "heartbeatResp", v: unknown, ids: PeerIds): Message {
  const o = obj(v, type);
  const quiesce = type === "heartbeat" && bool(o, "quiesce");
  return message({ type, from: ids.from, to: ids.to, term: uint(o, "term"), commit: uint(o, "commit"), context: str(o, "context"), quiesce });
}

function decodeItem(v: unknown, ids: PeerIds): GroupMessage {
  const o = obj(v, "item");
  const group = uint(o, "group");
  switch (o["kind"]) {
    case "message":
      return { group, message: decodeFullMessage(o["message"], ids, false) };
    case "heartbeat":
      return { group, message: decodeCompact("heartbeat", o["heartbeat"], ids) };
    case "heartbeatResponse":
      return { group, message: decodeCompact("heartbeatResp", o["heartbeatResponse"], ids) };
    default:
      throw new Malformed(`item of group ${group} carries no message`);
  }
}

function decodePeerIds(o: Obj): PeerIds {
  return { from: nodeId(o, "fromNode"), to: nodeId(o, "toNode"), clusterId: str(o, "clusterId") };
}

function decoded<T>(what: string, decode: () => T): Decoded<T> {
  try {
    return { ok: true, value: decode() };
  } catch (err) {
    // protobufjs throws plain Errors on truncated or mistyped input; ours are Malformed.
    const reason = err instanceof Error ? err.message : String(err);
    return { ok: false, error: `malformed ${what}: ${reason}` };
  }
}

/** Decodes and checks one frame. The messages' `from`/`to` are the frame's sender and receiver. */
export function decodeFrame(bytes: Buffer): Decoded<DecodedFrame> {
  return decoded("frame", () => {
    const o = obj(METHODS.stream.requestDeserialize(bytes), "frame");
    const ids = decodePeerIds(o);
    return { ...ids, messages: list(o, "items").map((item) => decodeItem(item, ids)) };
  });
}

/** Decodes the receiver's reply on a stream. */
export function decodeAccepted(bytes: Buffer): Decoded<{ readonly nodeId: NodeId; readonly clusterId: string }> {
  return decoded("stream reply", () => {
    const o = obj(METHODS.stream.responseDeserialize(bytes), "stream reply");
    return { nodeId: nodeId(o, "nodeId"), clusterId: str(o, "clusterId") };
  });
}

/** Decodes the reply to a snapshot. */
export function decodeSnapshotReply(bytes: Buffer): Decoded<{ readonly receivedBytes: number }> {
  return decoded("snapshot reply", () => ({ receivedBytes: uint(obj(METHODS.installSnapshot.responseDeserialize(bytes), "reply"), "receivedBytes") }));
}

/** The raw protobuf object of a frame, for tests and debugging only; throws on malformed input. */
export function frameToObject(bytes: Buffer): unknown {
  return METHODS.stream.requestDeserialize(bytes);
}

// ------------------------------------------------------------------ snapshot reassembly

/** What the header chunk of a snapshot says, available once the first chunk has arrived. */
export interface SnapshotHeaderInfo extends PeerIds {
  readonly group: GroupId;
  readonly dataBytes: number;
}

/** Why reassembly failed: the input is malformed, or the snapshot is larger than allowed. */
export type AssemblyError = { readonly ok: false; readonly error: string; readonly tooLarge: boolean };

interface PendingSnapshot {
  readonly info: SnapshotHeaderInfo;
  readonly message: Message;
  readonly metadata: Snapshot["metadata"];
  readonly data: Uint8Array;
}

/**
 * Reassembles the chunks of one InstallSnapshot call into a `snap` message. Feed every chunk to
 * `accept()` in order, then call `finish()` when the call ends. The data buffer is allocated once,
 * from the header's size, which is checked against `snapshotBytesMax` first.
 */
export class SnapshotAssembler {
  private pending: PendingSnapshot | undefined;
  private receivedBytes = 0;

  constructor(private readonly snapshotBytesMax: number) {}

  /** Takes the next chunk; returns the header info for the first one, undefined for data chunks. */
  accept(chunk: Buffer): Decoded<SnapshotHeaderInfo | undefined> | AssemblyError {
    const result = decoded("snapshot chunk", () => obj(METHODS.installSnapshot.requestDeserialize(chunk), "chunk"));
    if (!result.ok) return { ...result, tooLarge: false };
    const o = result.value;
    if (this.pending === undefined) return this.acceptHeader(o["header"]);
    if (o["header"] !== null && o["header"] !== undefined) return malformedChunk("a second header");
    return this.acceptData(o["data"]);
  }

  /** The `snap` message, once every byte announced by the header has arrived. */
  finish(): Decoded<GroupMessage> {
    const p = this.pending;
    if (p === undefined) return { ok: false, error: "malformed snapshot: no header chunk" };
    if (this.receivedBytes !== p.info.dataBytes) {
      return { ok: false, error: `malformed snapshot: received ${this.receivedBytes} of ${p.info.dataBytes} bytes` };
    }
    const snapshot: Snapshot = { metadata: p.metadata, data: p.data };
    return { ok: true, value: { group: p.info.group, message: { ...p.message, snapshot } } };
  }

  /** The data bytes received so far. */
  get received(): number {
    return this.receivedBytes;
  }

  private acceptHeader(v: unknown): Decoded<SnapshotHeaderInfo> | AssemblyError {
    const header = decoded("snapshot header", () => decodeSnapshotHeader(v));
    if (!header.ok) return { ...header, tooLarge: false };
    const { info } = header.value;
    if (info.dataBytes > this.snapshotBytesMax) {
      return { ok: false, error: `snapshot of ${info.dataBytes} bytes exceeds snapshotBytesMax ${this.snapshotBytesMax}`, tooLarge: true };
    }
    this.pending = { ...header.value, data: new Uint8Array(info.dataBytes) };
    return { ok: true, value: info };
  }

  private acceptData(v: unknown): Decoded<undefined> | AssemblyError {
    const p = this.pending!;
    if (!(v instanceof Uint8Array)) return malformedChunk("a chunk without data");
    if (this.receivedBytes + v.byteLength > p.info.dataBytes) return malformedChunk(`more than the announced ${p.info.dataBytes} bytes`);
    p.data.set(v, this.receivedBytes);
    this.receivedBytes += v.byteLength;
    return { ok: true, value: undefined };
  }
}

function malformedChunk(what: string): AssemblyError {
  return { ok: false, error: `malformed snapshot: ${what}`, tooLarge: false };
}

function decodeSnapshotHeader(v: unknown): Omit<PendingSnapshot, "data"> {
  const o = obj(v, "header");
  const ids = decodePeerIds(o);
  const info: SnapshotHeaderInfo = { ...ids, group: uint(o, "group"), dataBytes: uint(o, "dataBytes") };
  const m = obj(o["metadata"], "metadata");
  const conf = obj(m["confState"], "confState");
  const metadata = {
    index: uint(m, "index"),
    term: uint(m, "term"),
    confState: { voters: nodeIds(conf, "voters"), learners: nodeIds(conf, "learners") },
  };
  return { info, message: decodeFullMessage(o["message"], ids, true), metadata };
}

function nodeIds(o: Obj, key: string): NodeId[] {
  return list(o, key).map((id, i) => nodeId({ [`${key}[${i}]`]: id }, `${key}[${i}]`));
}

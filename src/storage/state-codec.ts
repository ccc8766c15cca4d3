/**
 * Stored forms of the records besides entries (see keys.ts for where each lives). Every record
 * ends with a CRC-32C of the bytes before it, except term runs (8-byte terms, checked against the
 * entries themselves when the store opens) and the identity (JSON, checked field by field).
 *
 * hard state:        version u8 | term u64 | vote u32 | commit u64 | crc u32
 * log end:           version u8 | lastIndex u64 | crc u32
 * snapshot metadata: version u8 | index u64 | term u64 | dataBytes u64 | dataCrc u32 |
 *                    voterCount u32 | voters u32… | learnerCount u32 | learners u32… | crc u32
 * snapshot data:     the bytes as given (their CRC is in the metadata)
 * term run:          term u64
 */
import type { GroupId, NodeId } from "../lib/ids.js";
import type { HardState, SnapshotMetadata } from "../raft/index.js";
import { checksum } from "./entry-codec.js";
import { StorageCorruptionError } from "./errors.js";
import { readU64, writeU64 } from "./keys.js";

const FORMAT_VERSION = 1;

/** Snapshot metadata as stored: the core's metadata plus the size and checksum of the data. */
export interface StoredSnapshotMeta {
  readonly metadata: SnapshotMetadata;
  readonly dataBytes: number;
  readonly dataCrc: number;
}

export function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.alloc(25);
  b[0] = FORMAT_VERSION;
  writeU64(b, 1, hs.term);
  b.writeUInt32BE(hs.vote, 9);
  writeU64(b, 13, hs.commit);
  return sealed(b);
}

export function decodeHardState(group: GroupId, value: Buffer): HardState {
  checkSealed(group, 0, value, 25, "hard state");
  const term = readU64(value, 1);
  const commit = readU64(value, 13);
  if (term === undefined || commit === undefined) throw new StorageCorruptionError(group, 0, "hard state holds an out-of-range number");
  return { term, vote: value.readUInt32BE(9), commit };
}

/** The log end record: the last index, written with every change of it. */
export function encodeLogEnd(lastIndex: number): Buffer {
  const b = Buffer.alloc(13);
  b[0] = FORMAT_VERSION;
  writeU64(b, 1, lastIndex);
  return sealed(b);
}

export function decodeLogEnd(group: GroupId, value: Buffer): number {
  checkSealed(group, 0, value, 13, "log end");
  const last = readU64(value, 1);
  if (last === undefined) throw new StorageCorruptionError(group, 0, "log end holds an out-of-range number");
  return last;
}

export function encodeSnapshotMeta(meta: StoredSnapshotMeta): Buffer {
  const { voters, learners } = meta.metadata.confState;
  const b = Buffer.alloc(1 + 8 + 8 + 8 + 4 + 4 + 4 * voters.length + 4 + 4 * learners.length + 4);
  b[0] = FORMAT_VERSION;
  writeU64(b, 1, meta.metadata.index);
  writeU64(b, 9, meta.metadata.term);
  writeU64(b, 17, meta.dataBytes);
  b.writeUInt32BE(meta.dataCrc, 25);
  let at = writeIds(b, 29, voters);
  at = writeIds(b, at, learners);
  return sealed(b);
}

export function decodeSnapshotMeta(group: GroupId, value: Buffer): StoredSnapshotMeta {
  checkSealed(group, 0, value, undefined, "snapshot metadata");
  const index = readU64(value, 1);
  const term = readU64(value, 9);
  const dataBytes = readU64(value, 17);
  if (index === undefined || term === undefined || dataBytes === undefined) {
    throw new StorageCorruptionError(group, 0, "snapshot metadata holds an out-of-range number");
  }
  const voters = readIds(group, value, 29);
  const learners = readIds(group, value, voters.end);
  if (learners.end !== value.length - 4) throw new StorageCorruptionError(group, index, "snapshot metadata has trailing bytes");
  return { metadata: { index, term, confState: { voters: voters.ids, learners: learners.ids } }, dataBytes, dataCrc: value.readUInt32BE(25) };
}

export function encodeTermRun(term: number): Buffer {
  const b = Buffer.alloc(8);
  writeU64(b, 0, term);
  return b;
}

export function decodeTermRun(group: GroupId, start: number, value: Buffer): number {
  const term = value.length === 8 ? readU64(value, 0) : undefined;
  if (term === undefined) throw new StorageCorruptionError(group, start, "term run value is malformed");
  return term;
}

/** Who a data directory belongs to. */
export interface NodeIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
}

export function encodeIdentity(id: NodeIdentity): Buffer {
  return Buffer.from(JSON.stringify({ format: FORMAT_VERSION, clusterId: id.clusterId, nodeId: id.nodeId }), "utf8");
}

/** The stored identity and its format version, or a description of what is wrong with it. */
export function decodeIdentity(value: Buffer): { identity: NodeIdentity; format: number } | { malformed: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString("utf8"));
  } catch {
    return { malformed: "identity record is not JSON" };
  }
  const { format, clusterId, nodeId } = (parsed ?? {}) as { format?: unknown; clusterId?: unknown; nodeId?: unknown };
  if (typeof format !== "number" || typeof clusterId !== "string" || typeof nodeId !== "number") {
    return { malformed: "identity record lacks format, clusterId or nodeId" };
  }
  return { identity: { clusterId, nodeId }, format };
}

/** The storage format version this code reads and writes. */
export const STORAGE_FORMAT_VERSION = FORMAT_VERSION;

function writeIds(b: Buffer, at: number, ids: readonly number[]): number {
  b.writeUInt32BE(ids.length, at);
  ids.forEach((id, i) => b.writeUInt32BE(id, at + 4 + 4 * i));
  return at + 4 + 4 * ids.length;
}

function readIds(group: GroupId, b: Buffer, at: number): { ids: NodeId[]; end: number } {
  if (at + 4 > b.length - 4) throw new StorageCorruptionError(group, 0, "snapshot metadata is truncated");
  const n = b.readUInt32BE(at);
  const end = at + 4 + 4 * n;
  if (end > b.length - 4) throw new StorageCorruptionError(group, 0, "snapshot metadata is truncated");
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(b.readUInt32BE(at + 4 + 4 * i));
  return { ids, end };
}

/** Fills the last 4 bytes with the CRC-32C of the bytes before them. */
function sealed(b: Buffer): Buffer {
  b.writeUInt32BE(checksum(b.subarray(0, b.length - 4)), b.length - 4);
  return b;
}

function checkSealed(group: GroupId, index: number, value: Buffer, bytes: number | undefined, what: string): void {
  if (value.length < 5 || (bytes !== undefined && value.length !== bytes)) {
    throw new StorageCorruptionError(group, index, `${what} has ${value.length} bytes`);
  }
  if (value[0] !== FORMAT_VERSION) throw new StorageCorruptionError(group, index, `${what} has unknown format version ${value[0]}`);
  const stored = value.readUInt32BE(value.length - 4);
  if (stored !== checksum(value.subarray(0, value.length - 4))) throw new StorageCorruptionError(group, index, `${what} checksum mismatch`);
}

/**
 * The binary key layout of the RocksDB database. Keys sort bytewise, so every number is big-endian
 * and a group's keys are contiguous, in this order:
 *
 * | key                                        | value                                   |
 * | ------------------------------------------ | --------------------------------------- |
 * | 0x01 "identity"                            | node identity (cluster id, node id, format) |
 * | 0x01 "sync-mark"                           | empty; written to force an fsync         |
 * | 0x02 group:u32 0x00                        | drop marker: the group is being deleted  |
 * | 0x02 group:u32 0x01                        | hard state                              |
 * | 0x02 group:u32 0x02                        | log end: the last index, to detect a truncated log |
 * | 0x02 group:u32 0x03                        | snapshot metadata                       |
 * | 0x02 group:u32 0x04                        | snapshot data                           |
 * | 0x02 group:u32 0x05 start:u64              | term run: entries from `start` have this term until the next run |
 * | 0x02 group:u32 0x06 index:u64              | log entry                               |
 *
 * A u64 holds any non-negative safe integer (below 2^53); decoding a larger one is corruption.
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex } from "../lib/ids.js";
import type { KeyRange } from "./engine.js";

const NODE_PREFIX = 0x01;
const GROUP_PREFIX = 0x02;
const GROUP_END = 0x03;

/** The kinds of per-group keys, in their sort order. */
export const GroupKeyKind = {
  dropMarker: 0x00,
  hardState: 0x01,
  logEnd: 0x02,
  snapshotMeta: 0x03,
  snapshotData: 0x04,
  termRun: 0x05,
  entry: 0x06,
} as const;
export type GroupKeyKind = (typeof GroupKeyKind)[keyof typeof GroupKeyKind];

const GROUP_KEY_BYTES = 1 + 4 + 1;
const INDEXED_KEY_BYTES = GROUP_KEY_BYTES + 8;
const GROUP_ID_MAX = 0xffff_ffff;

/** The key of a node-wide metadata record. */
export function nodeMetaKey(name: "identity" | "sync-mark"): Buffer {
  return Buffer.concat([Buffer.of(NODE_PREFIX), Buffer.from(name, "ascii")]);
}

/** The range of all node-wide metadata keys. */
export function nodeMetaRange(): KeyRange {
  return { gte: Buffer.of(NODE_PREFIX), lt: Buffer.of(GROUP_PREFIX) };
}

/** The range of every group's keys. */
export function allGroupsRange(): KeyRange {
  return { gte: Buffer.of(GROUP_PREFIX), lt: Buffer.of(GROUP_END) };
}

/** The range of all keys of one group. */
export function groupRange(group: GroupId): KeyRange {
  const lt = group === GROUP_ID_MAX ? Buffer.of(GROUP_END) : groupPrefix(group + 1);
  return { gte: groupPrefix(group), lt };
}

function groupPrefix(group: GroupId): Buffer {
  assert(Number.isInteger(group) && group >= 0 && group <= GROUP_ID_MAX, () => `group id ${group} is not a u32`);
  const b = Buffer.alloc(5);
  b[0] = GROUP_PREFIX;
  b.writeUInt32BE(group, 1);
  return b;
}

/** The key of a per-group record without an index: drop marker, hard state, log end, snapshot metadata or data. */
export function groupKey(group: GroupId, kind: GroupKeyKind): Buffer {
  const b = Buffer.alloc(GROUP_KEY_BYTES);
  groupPrefix(group).copy(b);
  b[5] = kind;
  return b;
}

/** The key of the entry at `index`. */
export function entryKey(group: GroupId, index: LogIndex): Buffer {
  return indexedKey(group, GroupKeyKind.entry, index);
}

/** The key of the term run starting at `start`. */
export function termRunKey(group: GroupId, start: LogIndex): Buffer {
  return indexedKey(group, GroupKeyKind.termRun, start);
}

/** Entry keys with index in [lo, hi). */
export function entryRange(group: GroupId, lo: LogIndex, hi: LogIndex): KeyRange {
  return { gte: entryKey(group, lo), lt: entryKey(group, hi) };
}

/** All entry keys of a group (indexes [0, 2^53)). */
export function allEntriesRange(group: GroupId): KeyRange {
  return { gte: entryKey(group, 0), lt: groupKey(group, (GroupKeyKind.entry + 1) as GroupKeyKind) };
}

function indexedKey(group: GroupId, kind: GroupKeyKind, index: number): Buffer {
  const b = Buffer.alloc(INDEXED_KEY_BYTES);
  groupPrefix(group).copy(b);
  b[5] = kind;
  writeU64(b, GROUP_KEY_BYTES, index);
  return b;
}

/** A decoded per-group key; `index` is the entry index or term run start (0 for the others). */
export interface ParsedGroupKey {
  readonly group: GroupId;
  readonly kind: GroupKeyKind;
  readonly index: LogIndex;
}

/** Decodes a key from {@link allGroupsRange}, or returns undefined if it is not a valid one. */
export function parseGroupKey(key: Buffer): ParsedGroupKey | undefined {
  if (key.length < GROUP_KEY_BYTES || key[0] !== GROUP_PREFIX) return undefined;
  const group = key.readUInt32BE(1);
  const kind = key[5]!;
  if (kind > GroupKeyKind.entry) return undefined;
  const indexed = kind === GroupKeyKind.entry || kind === GroupKeyKind.termRun;
  if (key.length !== (indexed ? INDEXED_KEY_BYTES : GROUP_KEY_BYTES)) return undefined;
  const index = indexed ? readU64(key, GROUP_KEY_BYTES) : 0;
  if (index === undefined) return undefined;
  return { group, kind: kind as GroupKeyKind, index };
}

/** Writes a non-negative safe integer as 8 big-endian bytes. */
export function writeU64(b: Buffer, offset: number, n: number): void {
  assert(Number.isSafeInteger(n) && n >= 0, () => `${n} is not a u64 safe integer`);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

/** Reads 8 big-endian bytes; undefined if the value is not a safe integer (corrupt data). */
export function readU64(b: Buffer, offset: number): number | undefined {
  const hi = b.readUInt32BE(offset);
  if (hi >= 2 ** 21) return undefined;
  return hi * 2 ** 32 + b.readUInt32BE(offset + 4);
}

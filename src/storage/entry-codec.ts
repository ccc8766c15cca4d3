/**
 * The stored form of a log entry. The index lives in the key; the value is
 *
 * | offset | bytes | field                                                        |
 * | ------ | ----- | ------------------------------------------------------------ |
 * | 0      | 1     | format version (1)                                           |
 * | 1      | 1     | type: 0 normal, 1 conf                                       |
 * | 2      | 8     | term, u64 big-endian                                         |
 * | 10     | 4     | CRC-32C over index (u64 BE), term (u64 BE), type (u8), data  |
 * | 14     | n     | data                                                         |
 *
 * The checksum covers the index from the key, so a value stored under the wrong key fails too.
 *
 * CRC-32C comes from `@node-rs/crc32`: a maintained napi-rs package whose prebuilt binaries ship
 * inside registry packages (optional dependencies per platform, no download at install time) and
 * that uses the SSE4.2/ARMv8 CRC instructions — several GB/s, so checksumming every entry on open
 * and on every read costs little. `sse4_crc32` needs a native build at install time and `crc-32`
 * is pure JavaScript and an order of magnitude slower on large payloads.
 */
import { crc32c } from "@node-rs/crc32";
import type { GroupId, LogIndex } from "../lib/ids.js";
import type { Entry, EntryType } from "../raft/index.js";
import { StorageCorruptionError } from "./errors.js";
import { readU64, writeU64 } from "./keys.js";

const FORMAT_VERSION = 1;
const HEADER_BYTES = 14;
const CRC_OFFSET = 10;

const TYPE_CODES: Record<EntryType, number> = { normal: 0, conf: 1 };
const TYPES_BY_CODE: readonly EntryType[] = ["normal", "conf"];

/** The stored value of an entry (the index goes into the key). */
export function encodeEntry(e: Entry): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES + e.data.byteLength);
  b[0] = FORMAT_VERSION;
  b[1] = TYPE_CODES[e.type];
  writeU64(b, 2, e.term);
  b.writeUInt32BE(entryChecksum(e.index, e.term, TYPE_CODES[e.type], e.data), CRC_OFFSET);
  b.set(e.data, HEADER_BYTES);
  return b;
}

/**
 * Decodes the value stored under entry key `index` and verifies its checksum. Throws
 * {@link StorageCorruptionError} naming the group and index when the value is damaged. The
 * returned data is a view into `value`, not a copy.
 */
export function decodeEntry(group: GroupId, index: LogIndex, value: Buffer): Entry {
  if (value.length < HEADER_BYTES) throw new StorageCorruptionError(group, index, `entry value has ${value.length} bytes, fewer than its header`);
  if (value[0] !== FORMAT_VERSION) throw new StorageCorruptionError(group, index, `entry has unknown format version ${value[0]}`);
  const typeCode = value[1]!;
  const type = TYPES_BY_CODE[typeCode];
  if (type === undefined) throw new StorageCorruptionError(group, index, `entry has unknown type ${typeCode}`);
  const term = readU64(value, 2);
  if (term === undefined) throw new StorageCorruptionError(group, index, "entry term is out of range");
  const data = new Uint8Array(value.buffer, value.byteOffset + HEADER_BYTES, value.length - HEADER_BYTES);
  const stored = value.readUInt32BE(CRC_OFFSET);
  const actual = entryChecksum(index, term, typeCode, data);
  if (stored !== actual) {
    throw new StorageCorruptionError(group, index, `entry checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})`);
  }
  return { index, term, type, data };
}

function entryChecksum(index: LogIndex, term: number, typeCode: number, data: Uint8Array): number {
  const header = Buffer.allocUnsafe(17);
  writeU64(header, 0, index);
  writeU64(header, 8, term);
  header[16] = typeCode;
  return crc32c(data, crc32c(header));
}

/** CRC-32C of arbitrary bytes (snapshot data, metadata records). */
export function checksum(data: Uint8Array): number {
  return crc32c(data);
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

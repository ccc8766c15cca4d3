/**
 * The compression codecs of record batches. A producer compresses the records section of a batch
 * once; the leader stores it as received; consumers decompress it. Every decompression is bounded
 * by the uncompressed size the batch header declares, so a small hostile payload can never expand
 * into a large allocation (a "zip bomb"): it fails instead.
 *
 *   codec  name   format
 *   0      none   the records as they are
 *   1      gzip   RFC 1952 gzip member (node:zlib)
 *   2      lz4    LZ4 block format preceded by the uncompressed size as u32 little-endian
 *                 (lz4_flex's "size prepended" form; the `lz4-napi` package, napi-rs prebuilt
 *                 binaries per platform, nothing downloaded or compiled at install time)
 *
 * zstd is not offered: node:zlib has it only from Node 22.15, and the npm zstd bindings either
 * download binaries at install time or need a compiler.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { compressSync as lz4CompressSync, uncompressSync as lz4UncompressSync } from "lz4-napi";

export const CODEC_NONE = 0;
export const CODEC_GZIP = 1;
export const CODEC_LZ4 = 2;

export type CompressionName = "none" | "gzip" | "lz4";

export const CODEC_OF: Readonly<Record<CompressionName, number>> = { none: CODEC_NONE, gzip: CODEC_GZIP, lz4: CODEC_LZ4 };
export const CODEC_NAMES: readonly CompressionName[] = ["none", "gzip", "lz4"];

/** Whether `codec` is one this version can read. */
export function isKnownCodec(codec: number): boolean {
  return codec === CODEC_NONE || codec === CODEC_GZIP || codec === CODEC_LZ4;
}

/** A malformed or undecodable batch: the message says what is wrong. */
export class BatchFormatError extends Error {
  override readonly name = "BatchFormatError";
}

/** Compresses `data` with `codec`. */
export function compress(codec: number, data: Uint8Array): Buffer {
  const buf = asBuffer(data);
  switch (codec) {
    case CODEC_NONE:
      return buf;
    case CODEC_GZIP:
      // Level 6 (zlib's default) is within a few percent of 9 at a fraction of the time.
      return gzipSync(buf, { level: 6 });
    case CODEC_LZ4:
      return lz4CompressSync(buf);
    default:
      throw new BatchFormatError(`unknown compression codec ${codec}`);
  }
}

/**
 * Decompresses `data` that must expand to exactly `uncompressedBytes`; throws BatchFormatError on
 * anything else (corrupt input, a different size) without allocating beyond that size.
 */
export function decompress(codec: number, data: Uint8Array, uncompressedBytes: number): Buffer {
  const buf = asBuffer(data);
  let out: Buffer;
  try {
    out = decompressBounded(codec, buf, uncompressedBytes);
  } catch (e) {
    if (e instanceof BatchFormatError) throw e;
    throw new BatchFormatError(`the ${codecName(codec)} payload does not decompress: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (out.byteLength !== uncompressedBytes) {
    throw new BatchFormatError(`the ${codecName(codec)} payload decompresses to ${out.byteLength} bytes; the header declares ${uncompressedBytes}`);
  }
  return out;
}

function decompressBounded(codec: number, buf: Buffer, uncompressedBytes: number): Buffer {
  switch (codec) {
    case CODEC_NONE:
      return buf;
    case CODEC_GZIP:
      // One byte of slack so that "longer than declared" is detected rather than truncated.
      return gunzipSync(buf, { maxOutputLength: Math.max(1, uncompressedBytes + 1) });
    case CODEC_LZ4: {
      if (buf.byteLength < 4) throw new BatchFormatError(`the lz4 payload is ${buf.byteLength} bytes, shorter than its size prefix`);
      const declared = buf.readUInt32LE(0);
      if (declared !== uncompressedBytes) throw new BatchFormatError(`the lz4 payload's size prefix says ${declared} bytes; the header declares ${uncompressedBytes}`);
      return lz4UncompressSync(buf);
    }
    default:
      throw new BatchFormatError(`unknown compression codec ${codec}`);
  }
}

export function codecName(codec: number): string {
  return CODEC_NAMES[codec] ?? `codec ${codec}`;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

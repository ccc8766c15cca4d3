/**
 * Record bodies: random bytes, so neither a compressor nor a deduplicating store could shrink
 * them. A pool of distinct bodies is made once, before the measurement (crypto.randomBytes costs
 * CPU the load generator should not spend while measuring), and handed out in turn; the pool is
 * larger than any one batch, so no batch holds the same body twice.
 */
import { randomBytes } from "node:crypto";

/** Distinct bodies at most, and bytes in the pool at most (so 64 KiB records get fewer bodies). */
const POOL_BODIES_MAX = 4096;
const POOL_BYTES_MAX = 64 * 1024 * 1024;

export class PayloadPool {
  private readonly bodies: Buffer[];
  private next = 0;

  constructor(readonly recordBytes: number) {
    const count = Math.max(16, Math.min(POOL_BODIES_MAX, Math.floor(POOL_BYTES_MAX / recordBytes)));
    const all = randomBytes(count * recordBytes);
    this.bodies = Array.from({ length: count }, (_, i) => all.subarray(i * recordBytes, (i + 1) * recordBytes));
  }

  /** The next body, in turn. */
  take(): Buffer {
    const body = this.bodies[this.next]!;
    this.next = (this.next + 1) % this.bodies.length;
    return body;
  }
}

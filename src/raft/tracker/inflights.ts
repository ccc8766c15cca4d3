/**
 * The append messages a leader has sent to one follower and not yet seen acknowledged, bounded
 * in count and in bytes. A ring buffer of (last index, bytes) pairs in sending order.
 */
import { assert } from "../../lib/assert.js";
import type { LogIndex } from "../../lib/ids.js";

export class Inflights {
  private start = 0;
  private count = 0;
  private bytes = 0;
  // Grown lazily up to `maxCount`, so idle followers cost little memory.
  private indexes: LogIndex[] = [];
  private sizes: number[] = [];

  constructor(private readonly maxCount: number, private readonly maxBytes: number) {}

  /** Records a message carrying entries up to `index` and `bytes` of payload. */
  add(index: LogIndex, bytes: number): void {
    assert(!this.full(), "cannot add into a full inflights");
    let next = this.start + this.count;
    if (next >= this.maxCount) next -= this.maxCount;
    if (next >= this.indexes.length) {
      assert(next === this.indexes.length, "inflights ring grows one slot at a time");
      this.indexes.push(index);
      this.sizes.push(bytes);
    } else {
      this.indexes[next] = index;
      this.sizes[next] = bytes;
    }
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `to` (the follower acknowledged up to `to`). */
  freeLE(to: LogIndex): void {
    if (this.count === 0 || to < this.indexes[this.start]!) return;
    let idx = this.start;
    let i = 0;
    let freedBytes = 0;
    for (; i < this.count; i++) {
      if (to < this.indexes[idx]!) break;
      freedBytes += this.sizes[idx]!;
      idx++;
      if (idx >= this.maxCount) idx -= this.maxCount;
    }
    this.count -= i;
    this.bytes -= freedBytes;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest message (its acknowledgement may have been lost): lets a stalled window move. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  /** Whether no more messages may be sent: the count or the byte budget is used up. */
  full(): boolean {
    return this.count === this.maxCount || (this.maxBytes !== 0 && this.bytes >= this.maxBytes);
  }

  get length(): number {
    return this.count;
  }

  get inflightBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
    this.indexes = [];
    this.sizes = [];
  }
}

/**
 * Which partition a record goes to. A record with a key goes to
 * `(murmur2(key) & 0x7fffffff) % partitions`, exactly Apache Kafka's default partitioner
 * (Utils.murmur2 with seed 0x9747b28c, then Utils.toPositive), so keyed records land on the same
 * partitions as with Kafka clients and records of one key keep their order. Records without a
 * key (or with an empty key: proto3 cannot tell them apart) go round-robin, per topic.
 */

const MURMUR2_SEED = 0x9747b28c;
const MURMUR2_M = 0x5bd1e995;

/** Kafka's murmur2 of `data`, as a signed 32-bit integer (the Java client's value). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (MURMUR2_SEED ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, MURMUR2_M);
    k ^= k >>> 24;
    k = Math.imul(k, MURMUR2_M);
    h = Math.imul(h, MURMUR2_M) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, MURMUR2_M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, MURMUR2_M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition of a keyed record: Kafka's `toPositive(murmur2(key)) % partitions`. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** Picks partitions: by key hash when the record has a key, else round-robin per topic. */
export class Partitioner {
  private readonly next = new Map<string, number>();

  /** The partition for a record of `topic` with `key` (empty or absent: round-robin). */
  partition(topic: string, key: Uint8Array | undefined, partitions: number): number {
    if (key !== undefined && key.length > 0) return partitionForKey(key, partitions);
    const n = this.next.get(topic) ?? 0;
    this.next.set(topic, (n + 1) % partitions);
    return n % partitions;
  }
}

/**
 * A seeded, deterministic random source. Production code receives one instead of calling
 * `Math.random()`, so that a simulation replays exactly from its seed.
 *
 * The generator is xoshiro128** seeded through splitmix32; `fork()` derives an independent
 * stream, so that adding a consumer of randomness in one place does not shift every other stream.
 */
export interface Random {
  /** A uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number;
  /** An integer in [0, bound). `bound` must be a positive integer no larger than 2^32. */
  int(bound: number): number;
  /** An integer in [lo, hi], both inclusive. */
  intBetween(lo: number, hi: number): number;
  /** A float in [0, 1). */
  float(): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** An independent generator derived from this one. */
  fork(): Random;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128** — small state, fast, good statistical quality for simulation. */
export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const next = splitmix32(seed);
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  int(bound: number): number {
    if (!Number.isInteger(bound) || bound <= 0 || bound > 2 ** 32) {
      throw new RangeError(`Random.int: bound must be an integer in [1, 2^32], got ${bound}`);
    }
    // Rejection sampling removes modulo bias.
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % bound;
    }
  }

  intBetween(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`Random.intBetween: hi (${hi}) < lo (${lo})`);
    return lo + this.int(hi - lo + 1);
  }

  float(): number {
    return this.nextUint32() / 2 ** 32;
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  fork(): Random {
    return new SeededRandom(this.nextUint32() ^ 0x5bd1e995);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

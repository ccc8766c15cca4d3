/**
 * The simulation trace: one event per line (virtual time, node, what happened) and a stable hash
 * of the whole sequence.
 *
 * Hashing must be cheap because every delivered message is an event, so an event is hashed as a
 * few 32-bit words (time, node, event code, up to four numeric fields) with a two-lane FNV-1a; the
 * readable line is formatted only when the trace records lines (replaying a failure, `--verbose`).
 * The hash therefore covers exactly the events the lines show, field for field.
 */

const FNV_OFFSET_A = 0x811c9dc5;
const FNV_OFFSET_B = 0x01000193 ^ 0x5bd1e995;
const FNV_PRIME = 0x01000193;
const FNV_PRIME_B = 0x01000199;

/** A 64-bit FNV-1a-style hash kept as two independent 32-bit lanes. Deterministic across runs and platforms. */
export class Fnv64 {
  private a = FNV_OFFSET_A;
  private b = FNV_OFFSET_B;

  /** Mixes one 32-bit word (as four bytes, little-endian). Non-integers are truncated. */
  word(x: number): this {
    let a = this.a;
    let b = this.b;
    for (let k = 0; k < 4; k++) {
      const byte = (x >>> (k * 8)) & 0xff;
      a = Math.imul(a ^ byte, FNV_PRIME);
      b = Math.imul(b ^ byte, FNV_PRIME_B);
    }
    this.a = a >>> 0;
    this.b = b >>> 0;
    return this;
  }

  /** Mixes every UTF-16 code unit of `s`, then its length. */
  string(s: string): this {
    for (let i = 0; i < s.length; i++) this.word(s.charCodeAt(i));
    return this.word(s.length);
  }

  /** The hash as 16 lowercase hex digits. */
  hex(): string {
    return this.a.toString(16).padStart(8, "0") + this.b.toString(16).padStart(8, "0");
  }
}

/** The 64-bit hash of a string, as 16 hex digits. */
export function hashString(s: string): string {
  return new Fnv64().string(s).hex();
}

/** Event codes; the numeric value is what the hash sees, so never renumber (append new ones). */
export const EventCode = {
  step: 1,
  deliver: 2,
  drop: 3,
  duplicate: 4,
  delay: 5,
  reorder: 6,
  partition: 7,
  heal: 8,
  crash: 9,
  restart: 10,
  role: 11,
  hardState: 12,
  append: 13,
  apply: 14,
  snapshotRestore: 15,
  snapshotTaken: 16,
  propose: 17,
  confChange: 18,
  transfer: 19,
  read: 20,
  readServed: 21,
  decommission: 22,
  start: 23,
  weather: 24,
  liveness: 25,
  reportUnreachable: 26,
  reportSnapshot: 27,
  campaign: 28,
  wake: 29,
} as const;
/** One of the {@link EventCode} values. */
export type EventCode = (typeof EventCode)[keyof typeof EventCode];

const CODE_NAMES = new Map<number, string>(Object.entries(EventCode).map(([name, code]) => [code, name]));

/**
 * Collects the events of one run. Call {@link event} for everything that happens; it always
 * updates the hash and, when recording, also keeps the formatted line.
 */
export class Trace {
  private readonly fnv = new Fnv64();
  private count = 0;
  /** The formatted lines, or undefined when not recording. */
  readonly lines: string[] | undefined;

  constructor(record: boolean) {
    this.lines = record ? [] : undefined;
  }

  /** Whether lines are being kept (callers may skip building expensive details otherwise). */
  get recording(): boolean {
    return this.lines !== undefined;
  }

  /**
   * Records one event at virtual time `timeMs` on `node` (0 = the simulator itself). The numeric
   * fields `a..d` enter the hash; `detail` (a string or a thunk) only enters the readable line.
   */
  event(timeMs: number, node: number, code: EventCode, a = 0, b = 0, c = 0, d = 0, detail?: string | (() => string)): void {
    this.count++;
    this.fnv.word(timeMs).word(node).word(code).word(a).word(b).word(c).word(d);
    if (this.lines === undefined) return;
    const text = typeof detail === "function" ? detail() : (detail ?? `${a} ${b} ${c} ${d}`);
    const who = node === 0 ? "sim" : `n${node}`;
    this.lines.push(`${formatTime(timeMs)} ${who.padEnd(3)} ${CODE_NAMES.get(code) ?? code} ${text}`);
  }

  /** Number of events so far. */
  get events(): number {
    return this.count;
  }

  /** The hash of all events so far (16 hex digits). */
  hash(): string {
    return this.fnv.hex();
  }
}

/** Virtual milliseconds as seconds with millisecond precision, fixed width: `   1.234s`. */
export function formatTime(ms: number): string {
  return `${(ms / 1000).toFixed(3).padStart(8)}s`;
}

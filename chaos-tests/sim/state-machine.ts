/**
 * The simulated state machine: the sequence of applied entries, each kept as a fingerprint
 * (`term/type/text`). Normal entries carry proposal strings like `p17`; empty ones are the
 * leaders' no-ops; conf entries carry their JSON. A snapshot is this sequence encoded as JSON, so
 * the checker can compare a restored snapshot entry by entry with what every node applied.
 */
import type { LogIndex } from "../../src/lib/ids.js";
import type { Entry, Snapshot } from "../../src/raft/index.js";

/** The pseudo entry type of a bootstrap snapshot's founding membership (see {@link StateMachine.decode}). */
export const BOOTSTRAP = "bootstrap";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const textCache = new WeakMap<Uint8Array, string>();

/** The entry data as text (cached per buffer; buffers are shared between nodes in the simulator). */
export function entryText(data: Uint8Array): string {
  if (data.byteLength === 0) return "";
  let t = textCache.get(data);
  if (t === undefined) {
    t = decoder.decode(data);
    textCache.set(data, t);
  }
  return t;
}

/** The identity of an entry's contents, term included: `3/normal/p17`. */
export function fingerprint(e: Entry): string {
  return `${e.term}/${e.type}/${entryText(e.data)}`;
}

/** The proposal payload of a normal entry, or undefined for no-ops and conf entries. */
export function proposalOf(e: Entry): string | undefined {
  return e.type === "normal" && e.data.byteLength > 0 ? entryText(e.data) : undefined;
}

/** Encodes a proposal payload. */
export function encodeProposal(text: string): Uint8Array {
  return encoder.encode(text);
}

interface Encoded {
  readonly index: number;
  readonly fps: string[];
}

/** The applied entries of one node, as fingerprints (see the module comment). */
export class StateMachine {
  // fps[i - 1] is the fingerprint of the entry applied at index i.
  private readonly fps: string[];

  private constructor(fps: string[]) {
    this.fps = fps;
  }

  /** An empty state machine (nothing applied). */
  static empty(): StateMachine {
    return new StateMachine([]);
  }

  /**
   * Restores from a snapshot. Empty data is a group's bootstrap snapshot: nothing applied but the
   * founding membership, which counts as one entry, {@link BOOTSTRAP} at the snapshot's index.
   */
  static decode(snap: Snapshot): StateMachine {
    const { index, term } = snap.metadata;
    if (snap.data.byteLength === 0) {
      if (index > 1) throw new Error(`bootstrap snapshot at index ${index}: expected 0 or 1`);
      return new StateMachine(index === 0 ? [] : [`${term}/${BOOTSTRAP}/`]);
    }
    const parsed = JSON.parse(decoder.decode(snap.data)) as Encoded;
    if (!Array.isArray(parsed.fps) || parsed.fps.length !== parsed.index) {
      throw new Error(`corrupt state machine snapshot: index ${parsed.index}, ${parsed.fps?.length} entries`);
    }
    return new StateMachine(parsed.fps);
  }

  /** The index of the last applied entry. */
  get appliedIndex(): LogIndex {
    return this.fps.length;
  }

  /** Applies the next entry. The caller has checked that `e.index === appliedIndex + 1`. */
  apply(e: Entry): string {
    const fp = fingerprint(e);
    this.fps.push(fp);
    return fp;
  }

  /** The fingerprint applied at index `i`, if applied. */
  fingerprintAt(i: LogIndex): string | undefined {
    return this.fps[i - 1];
  }

  /** Snapshot data for the current applied index. */
  encode(): Uint8Array {
    const e: Encoded = { index: this.fps.length, fps: this.fps };
    return encoder.encode(JSON.stringify(e));
  }
}

/**
 * Small helpers for scripted scenario tests of the core, on top of {@link Harness}: building logs
 * from a list of terms, holding back messages to release them one by one (to observe pipelining
 * and flow control), recording every Ready, and reading a node's log back out of its storage.
 * Production code never imports this.
 */
import type { LogIndex, NodeId, Term } from "../../lib/ids.js";
import type { Entry, HardState, Message } from "../messages.js";
import type { Ready } from "../ready.js";
import { MemoryStorage } from "../storage.js";
import { Harness, bytes, storageAtZero, type HarnessNode } from "./harness.js";

/**
 * Entries with consecutive indexes from `first`, one per term given:
 * `entriesOf(3, [2, 2, 5])` → (3,t2) (4,t2) (5,t5). Data is "e<index>" unless `data` says otherwise.
 */
export function entriesOf(first: LogIndex, terms: readonly Term[], data?: (index: LogIndex) => Uint8Array): Entry[] {
  return terms.map((term, i) => {
    const index = first + i;
    return { term, index, type: "normal" as const, data: data === undefined ? bytes(`e${index}`) : data(index) };
  });
}

/**
 * A storage for a member of `voters` that already holds `terms` from index 1 (on a
 * {@link storageAtZero}) and `hardState`. Not to be mixed with bootstrapped nodes, whose index 1
 * is their membership snapshot.
 */
export function storageWithLog(voters: readonly NodeId[], terms: readonly Term[], hardState: HardState): MemoryStorage {
  const s = storageAtZero(voters);
  s.append(entriesOf(1, terms));
  s.setHardState(hardState);
  return s;
}

/** The (index, term) pairs stored in `storage`, from its first index to its last. */
export function storedLog(storage: MemoryStorage): { index: LogIndex; term: Term }[] {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  if (last < first) return [];
  return storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER).map((e) => ({ index: e.index, term: e.term }));
}

/** The terms stored in `storage` from its first index, e.g. [1, 1, 3]. */
export function storedTerms(storage: MemoryStorage): Term[] {
  return storedLog(storage).map((e) => e.term);
}

/**
 * Holds back the messages matching `match` instead of delivering them (installs `h.filter`;
 * `h.heal()` removes it). Held messages can then be released one at a time, in order.
 */
export class Held {
  readonly messages: Message[] = [];

  constructor(private readonly h: Harness, private readonly match: (m: Message) => boolean) {
    h.filter = (m) => {
      if (!this.match(m)) return true;
      this.messages.push(m);
      return false;
    };
  }

  /** Held messages matching `pred` (default: all), without releasing them. */
  peek(pred: (m: Message) => boolean = () => true): Message[] {
    return this.messages.filter(pred);
  }

  /** Delivers the held messages matching `pred` in the order they were sent, then stabilizes. Returns how many. */
  release(pred: (m: Message) => boolean = () => true): number {
    const out = this.take(pred);
    for (const m of out) this.h.get(m.to).node.step(m);
    this.h.stabilize();
    return out.length;
  }

  /** Discards the held messages matching `pred` (they are lost). Returns how many. */
  drop(pred: (m: Message) => boolean = () => true): number {
    return this.take(pred).length;
  }

  private take(pred: (m: Message) => boolean): Message[] {
    const out: Message[] = [];
    for (let i = 0; i < this.messages.length; ) {
      const m = this.messages[i]!;
      if (pred(m)) {
        out.push(m);
        this.messages.splice(i, 1);
      } else i++;
    }
    return out;
  }
}

/** Appends carrying at least one entry, from `from` to `to`. */
export function isAppendWithEntries(from: NodeId, to: NodeId): (m: Message) => boolean {
  return (m) => m.type === "app" && m.from === from && m.to === to && m.entries.length > 0;
}

export interface RecordedReady {
  readonly id: NodeId;
  readonly ready: Ready;
}

/** A {@link Harness} that records every Ready it processes, in order, for assertions. */
export class RecordingHarness extends Harness {
  readonly readies: RecordedReady[] = [];

  override add(id: NodeId, storage: MemoryStorage): HarnessNode {
    const hn = super.add(id, storage);
    const node = hn.node;
    const ready = node.ready.bind(node);
    node.ready = () => {
      const rd = ready();
      this.readies.push({ id, ready: rd });
      return rd;
    };
    return hn;
  }

  /** The Readies of node `id` recorded so far. */
  readiesOf(id: NodeId): Ready[] {
    return this.readies.filter((r) => r.id === id).map((r) => r.ready);
  }
}

/**
 * Campaigns on `id` until it leads (a node may first have to learn the current term from the
 * rejections). Throws after `tries` attempts so that a scenario that cannot elect `id` fails loudly.
 */
export function electUntilLeader(h: Harness, id: NodeId, tries = 5): void {
  for (let i = 0; i < tries; i++) {
    h.elect(id);
    if (h.get(id).node.status().role === "leader") return;
  }
  throw new Error(`node ${id} did not become leader in ${tries} campaigns`);
}

/** Ticks the given nodes (default all) one at a time until `done()` holds; throws after `maxTicks`. Returns the ticks used. */
export function tickUntil(h: Harness, done: () => boolean, maxTicks = 200, only?: readonly NodeId[]): number {
  for (let t = 0; t < maxTicks; t++) {
    if (done()) return t;
    h.tick(1, only);
  }
  if (done()) return maxTicks;
  throw new Error(`condition not reached within ${maxTicks} ticks`);
}

/**
 * Small helpers for scripted scenario tests of leadership in the core (elections, PreVote,
 * CheckQuorum, transfer, reads): crafted logs, learner clusters, driving a lone RawNode by hand,
 * and waiting on the harness with a bound. Production code never imports this.
 */
import type { NodeId, Term } from "../../lib/ids.js";
import type { Random } from "../../lib/random.js";
import type { RaftConfig } from "../config.js";
import type { Entry, HardState, Message, MessageType } from "../messages.js";
import type { Ready } from "../ready.js";
import { RawNode } from "../raw-node.js";
import { MemoryStorage } from "../storage.js";
import { Harness, storageAtZero, type HarnessNode } from "./harness.js";

/**
 * Replaces node `id` of `h` with one whose log holds one (empty) entry per element of `terms` from
 * index 1 (on a {@link storageAtZero}), none committed unless said. Give every node of `h` a log
 * this way: the harness's bootstrapped nodes hold a snapshot at index 1 instead.
 */
export function giveLog(h: Harness, id: NodeId, voters: readonly number[], terms: readonly Term[], hardState: Partial<HardState> = {}): HarnessNode {
  const s = storageAtZero(voters);
  const entries: Entry[] = terms.map((term, i) => ({ term, index: i + 1, type: "normal", data: new Uint8Array() }));
  s.append(entries);
  const lastTerm = terms[terms.length - 1] ?? 0;
  s.setHardState({ term: hardState.term ?? lastTerm, vote: hardState.vote ?? 0, commit: hardState.commit ?? 0 });
  return h.add(id, s);
}

/** A harness whose members are `voters` plus `learners`, every node knowing the same membership. */
export function learnerHarness(voters: readonly number[], learners: readonly number[], options: Partial<RaftConfig> = {}, seed = 1): Harness {
  const h = new Harness(voters, options, seed);
  for (const id of [...voters, ...learners]) h.add(id, MemoryStorage.bootstrap(voters, learners));
  return h;
}

/** One RawNode driven by hand: each `handle()` persists a Ready to the storage and advances. */
export class LoneNode {
  readonly node: RawNode;
  constructor(readonly storage: MemoryStorage, config: Omit<RaftConfig, "storage">) {
    this.node = new RawNode({ ...config, storage });
  }

  /** Processes one Ready like a host would (persist, then hand back), or returns undefined if none. */
  handle(): Ready | undefined {
    if (!this.node.hasReady()) return undefined;
    const rd = this.node.ready();
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    this.node.advance();
    return rd;
  }

  /** Messages of the next Ready (empty if there is none). */
  messages(): readonly Message[] {
    return this.handle()?.messages ?? [];
  }
}

/**
 * Ticks a lone node of a 3-voter group (its peers never answer) until it sends its first
 * election message; returns how many ticks that took, i.e. its randomized election timeout.
 */
export function ticksUntilCampaign(random: Random, electionTicks: number, maxTicks = 10 * electionTicks): number {
  const lone = new LoneNode(MemoryStorage.bootstrap([1, 2, 3]), { id: 1, random, electionTicks });
  for (let t = 1; t <= maxTicks; t++) {
    lone.node.tick();
    if (lone.messages().some((m) => m.type === "preVote" || m.type === "vote")) return t;
  }
  throw new Error(`node did not campaign within ${maxTicks} ticks`);
}

/**
 * The successive election timeouts of a lone candidate (PreVote off, so every campaign resets
 * the timer): the tick counts between its `count` first vote rounds.
 */
export function successiveTimeouts(random: Random, electionTicks: number, count: number): number[] {
  const lone = new LoneNode(MemoryStorage.bootstrap([1, 2, 3]), { id: 1, random, electionTicks, preVote: false });
  const out: number[] = [];
  let since = 0;
  for (let t = 0; out.length < count; t++) {
    if (t > 10 * electionTicks * count) throw new Error("node stopped campaigning");
    lone.node.tick();
    since++;
    if (lone.messages().some((m) => m.type === "vote")) {
      out.push(since);
      since = 0;
    }
  }
  return out;
}

/** Ticks (all nodes, or `only`) until `done()` holds; returns the ticks taken. Throws after `maxTicks`. */
export function tickUntil(h: Harness, done: () => boolean, maxTicks: number, only?: readonly NodeId[]): number {
  for (let t = 0; t <= maxTicks; t++) {
    if (done()) return t;
    if (t < maxTicks) h.tick(1, only);
  }
  throw new Error(`condition not reached within ${maxTicks} ticks`);
}

/** Messages delivered so far of one of `types`. */
export function deliveredOf(h: Harness, ...types: MessageType[]): Message[] {
  return h.delivered.filter((m) => types.includes(m.type));
}

/** "role@term" of each node, for compact assertions. */
export function roles(h: Harness): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [id, hn] of h.nodes) {
    const s = hn.node.status();
    out[id] = `${s.role}@${s.term}`;
  }
  return out;
}

/** Every node's view of the leader (0 = none). */
export function leads(h: Harness): Record<number, NodeId> {
  const out: Record<number, NodeId> = {};
  for (const [id, hn] of h.nodes) out[id] = hn.node.status().lead;
  return out;
}

/** Records every Ready of the harness, with the node that handed it out. */
export function recordReadies(h: Harness): { id: NodeId; rd: Ready }[] {
  const log: { id: NodeId; rd: Ready }[] = [];
  const prev = h.onReady;
  h.onReady = (hn, rd) => {
    prev(hn, rd);
    log.push({ id: hn.id, rd });
  };
  return log;
}

/**
 * The sticky partition assignor of consumer groups: which live member consumes which partition.
 * Pure: members, partition counts and the previous assignment in, the new assignment out; no
 * clock, no randomness, the same output for the same input on every node.
 *
 * Rules, in priority order:
 *   1. Valid: every partition of a topic that at least one member subscribes to goes to exactly
 *      one member that subscribes to it; nothing else is assigned.
 *   2. Sticky: a member keeps the partitions it had (`previous`) unless it must give some up to
 *      balance the group; a partition moves only from a member above its share to one below it.
 *   3. Balanced: no partition can move from a member with c partitions to another member that
 *      subscribes to its topic and has c - 2 or fewer. When every member subscribes to the same
 *      topics this means the counts differ by at most one.
 *
 * How: keep each member's valid previous partitions (a partition claimed twice stays with the
 * member first by id); place the unowned ones, most constrained first, each on the eligible member
 * with the fewest partitions; then, while some member has two more than an eligible other, move
 * one partition from the fullest member to the emptiest eligible one. Taking from the top and
 * giving to the bottom is water-filling: with equal subscriptions the members with the most
 * previous partitions keep the extra ones, so the number of partitions that change owner is the
 * minimum any balanced assignment needs. Worked example, 7 partitions, C joins:
 *
 *   previous              A: 0 1 2 3   B: 4 5 6
 *   A has 4, C 0: move    A: 0 1 2     B: 4 5 6     C: 3
 *   A has 3, C 1: move    A: 0 1       B: 4 5 6     C: 2 3
 *   counts 2 3 2: done    2 partitions moved, the fewest that balances the group
 *
 * The coordinator (coordinator.ts) feeds back the previous *target* assignment, not what members
 * currently own, so that a partition being handed over cooperatively (revoked but not yet
 * granted) does not bounce back and forth between recomputations.
 */

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface AssignorMember {
  readonly id: string;
  /** The topics the member subscribes to. */
  readonly topics: readonly string[];
}

export interface AssignorInput {
  readonly members: readonly AssignorMember[];
  /** Partition count of each existing topic; topics absent here have no partitions (yet). */
  readonly partitionCounts: ReadonlyMap<string, number>;
  /** The previous assignment (member id → partitions); may name departed members and stale partitions. */
  readonly previous: ReadonlyMap<string, readonly TopicPartition[]>;
}

/** member id → its partitions, sorted by topic then partition; every input member has an entry. */
export type Assignment = Map<string, TopicPartition[]>;

/** A partition's stable string key; topic names never contain "/" (frontend.ts TOPIC_NAME_PATTERN). */
export function tpKey(tp: TopicPartition): string {
  return `${tp.topic}/${tp.partition}`;
}

export function parseTpKey(key: string): TopicPartition {
  const at = key.lastIndexOf("/");
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) };
}

export function compareTp(a: TopicPartition, b: TopicPartition): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
}

interface Slot {
  readonly id: string;
  readonly topics: ReadonlySet<string>;
  /** Partition keys, in the order they were kept or added. */
  readonly owned: Set<string>;
}

/** Computes the assignment (see the module comment for the rules). */
export function assign(input: AssignorInput): Assignment {
  const slots = [...input.members]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m): Slot => ({ id: m.id, topics: new Set(m.topics), owned: new Set() }));
  const universe = partitionsOf(slots, input.partitionCounts);
  const taken = keepPrevious(slots, universe, input.previous);
  placeUnowned(slots, universe, taken);
  rebalance(slots);
  const out: Assignment = new Map();
  for (const s of slots) out.set(s.id, [...s.owned].map(parseTpKey).sort(compareTp));
  return out;
}

/** Every partition of every subscribed topic, by key. */
function partitionsOf(slots: readonly Slot[], counts: ReadonlyMap<string, number>): Map<string, TopicPartition> {
  const topics = new Set<string>();
  for (const s of slots) for (const t of s.topics) topics.add(t);
  const out = new Map<string, TopicPartition>();
  for (const topic of [...topics].sort()) {
    const n = counts.get(topic) ?? 0;
    for (let partition = 0; partition < n; partition++) out.set(tpKey({ topic, partition }), { topic, partition });
  }
  return out;
}

/** Gives each member back its still-valid previous partitions; returns the keys now taken. */
function keepPrevious(slots: readonly Slot[], universe: ReadonlyMap<string, TopicPartition>, previous: AssignorInput["previous"]): Set<string> {
  const taken = new Set<string>();
  for (const s of slots) {
    const prev = [...(previous.get(s.id) ?? [])].sort(compareTp);
    for (const tp of prev) {
      const key = tpKey(tp);
      if (!universe.has(key) || taken.has(key) || !s.topics.has(tp.topic)) continue;
      s.owned.add(key);
      taken.add(key);
    }
  }
  return taken;
}

/** Places every partition nobody kept, most constrained first, on the eligible member with the fewest. */
function placeUnowned(slots: readonly Slot[], universe: ReadonlyMap<string, TopicPartition>, taken: ReadonlySet<string>): void {
  const eligibleCount = new Map<string, number>();
  for (const s of slots) for (const t of s.topics) eligibleCount.set(t, (eligibleCount.get(t) ?? 0) + 1);
  const unowned = [...universe.entries()].filter(([key]) => !taken.has(key));
  unowned.sort(([, a], [, b]) => (eligibleCount.get(a.topic) ?? 0) - (eligibleCount.get(b.topic) ?? 0) || compareTp(a, b));
  for (const [key, tp] of unowned) {
    let best: Slot | undefined;
    for (const s of slots) if (s.topics.has(tp.topic) && (best === undefined || s.owned.size < best.owned.size)) best = s;
    best?.owned.add(key);
  }
}

/** Moves one partition at a time from the fullest member to the emptiest eligible one while they differ by two or more. */
function rebalance(slots: readonly Slot[]): void {
  // Each move lowers the sum of squared counts, so this ends; the bound only guards against a bug.
  const movesMax = slots.reduce((n, s) => n + s.owned.size, 0) * Math.max(1, slots.length);
  for (let moves = 0; moves <= movesMax; moves++) {
    if (!moveOne(slots)) return;
  }
  throw new Error("assignor: rebalancing did not converge");
}

function moveOne(slots: readonly Slot[]): boolean {
  // Stable sorts: ties keep id order, so the result is deterministic.
  const desc = [...slots].sort((a, b) => b.owned.size - a.owned.size);
  const asc = [...slots].sort((a, b) => a.owned.size - b.owned.size);
  for (const from of desc) {
    for (const to of asc) {
      if (to.owned.size + 2 > from.owned.size) break;
      const key = lastEligible(from, to);
      if (key === undefined) continue;
      from.owned.delete(key);
      to.owned.add(key);
      return true;
    }
  }
  return false;
}

/** The most recently added partition of `from` whose topic `to` subscribes to. */
function lastEligible(from: Slot, to: Slot): string | undefined {
  const keys = [...from.owned];
  for (let i = keys.length - 1; i >= 0; i--) {
    if (to.topics.has(parseTpKey(keys[i]!).topic)) return keys[i];
  }
  return undefined;
}

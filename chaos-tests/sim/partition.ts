/**
 * Network partitions as sets of blocked directed links.
 *
 *  - symmetric: sides A and B cannot reach each other in either direction;
 *  - oneWay:    A's messages do not reach B, but B's reach A (a leader that can send heartbeats
 *               and never hears answers, or the reverse);
 *  - bridge:    A and B cannot reach each other, but both reach one bridge node, which therefore
 *               sees two "majorities" (the classic pre-vote / check-quorum stress case).
 *
 * Sides are chosen from a bit mask over the sorted node ids, so a schedule step names a partition
 * by numbers that stay meaningful while fast-check shrinks the schedule.
 */
import type { NodeId } from "../../src/lib/ids.js";

/** The three partition shapes (see the module comment). */
export type PartitionShape = "symmetric" | "oneWay" | "bridge";

/** A planned partition: who is on which side and which directed links it blocks. */
export interface Partition {
  readonly shape: PartitionShape;
  readonly sideA: readonly NodeId[];
  readonly sideB: readonly NodeId[];
  /** bridge only: the node both sides reach. */
  readonly bridge: NodeId | undefined;
  /** Directed links `from → to` that drop messages, encoded by {@link linkKey}. */
  readonly blocked: ReadonlySet<number>;
}

/** The key of the directed link from → to. Node ids stay below 2^16 in the simulator. */
export function linkKey(from: NodeId, to: NodeId): number {
  return from * 65536 + to;
}

/**
 * Plans a partition of `ids` (at least two; three for a bridge). Bit i of `mask` puts the i-th
 * smallest id on side B. `focus` (e.g. the current leader) is forced onto side A, or made the
 * bridge. Both sides are always non-empty.
 */
export function planPartition(shape: PartitionShape, ids: readonly NodeId[], mask: number, focus?: NodeId): Partition | undefined {
  const sorted = [...ids].sort((x, y) => x - y);
  if (sorted.length < (shape === "bridge" ? 3 : 2)) return undefined;
  let bridge: NodeId | undefined;
  let rest = sorted;
  if (shape === "bridge") {
    bridge = focus !== undefined && sorted.includes(focus) ? focus : sorted[mask % sorted.length]!;
    rest = sorted.filter((id) => id !== bridge);
  }
  const { a, b } = split(rest, mask, shape === "bridge" ? undefined : focus);
  const blocked = new Set<number>();
  for (const x of a) {
    for (const y of b) {
      blocked.add(linkKey(x, y));
      if (shape !== "oneWay") blocked.add(linkKey(y, x));
    }
  }
  return { shape, sideA: a, sideB: b, bridge, blocked };
}

function split(ids: readonly NodeId[], mask: number, focus: NodeId | undefined): { a: NodeId[]; b: NodeId[] } {
  const a: NodeId[] = [];
  const b: NodeId[] = [];
  ids.forEach((id, i) => {
    if (id !== focus && ((mask >>> (i % 30)) & 1) === 1) b.push(id);
    else a.push(id);
  });
  if (b.length === 0) b.push(a.pop()!);
  if (a.length === 0) a.push(b.shift()!);
  if (focus !== undefined && b.includes(focus)) {
    // Only reachable when focus was moved to make B non-empty: swap it with A's element.
    b.splice(b.indexOf(focus), 1, a.shift()!);
    a.unshift(focus);
  }
  return { a, b };
}

/** A one-line description: `symmetric [1,2] | [3]`, `bridge [1] <3> [2,4]`. */
export function describePartition(p: Partition): string {
  const mid = p.shape === "bridge" ? ` <${p.bridge}> ` : p.shape === "oneWay" ? " -/-> " : " | ";
  return `${p.shape} [${p.sideA.join(",")}]${mid}[${p.sideB.join(",")}]`;
}

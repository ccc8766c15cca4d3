/**
 * Majority arithmetic over one voter set (raftmq uses single-server membership changes, so there
 * is never more than one majority configuration in force).
 */
import type { LogIndex, NodeId } from "../../lib/ids.js";

export type VoteResult = "won" | "lost" | "pending";

/** The size of a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index that a majority of voters has acknowledged.
 *
 *   voters' acked indexes  [7, 5, 9]  → sorted desc [9, 7, 5] → majority 2 → 7
 */
export function committedIndex(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => LogIndex): LogIndex {
  if (voters.size === 0) return Number.MAX_SAFE_INTEGER; // no voters: nothing constrains (never happens in a valid group)
  const values: number[] = [];
  for (const id of voters) values.push(acked(id));
  values.sort((a, b) => b - a);
  return values[majority(values.length) - 1]!;
}

/** Tallies votes: won with a majority of grants, lost once a majority can no longer be reached. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(voters.size);
  if (granted >= q) return "won";
  if (voters.size - rejected < q) return "lost";
  return "pending";
}

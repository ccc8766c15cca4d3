/**
 * Coverage counters: how often each kind of fault or feature actually happened in a run (not
 * merely how often a schedule asked for it: a crash of an already-crashed node, or a proposal to a
 * leader that does not exist, does not count). The tests assert that every counter is non-zero
 * over the generated schedules, so a generator change that stops producing a fault is noticed.
 */

/** Every counter, in report order. */
export const COVERAGE_KEYS = [
  "leaderElected",
  "proposalAccepted",
  "proposalRejectedByNonLeader",
  "proposalApplied",
  "messageDropped",
  "messageDuplicated",
  "messageDelayed",
  "messagesReordered",
  "partitionSymmetric",
  "partitionOneWay",
  "partitionBridge",
  "messageBlockedByPartition",
  "heal",
  "crash",
  "crashWithUnpersistedState",
  "restart",
  "snapshotTaken",
  "snapshotSent",
  "snapshotInstalled",
  "learnerAdded",
  "learnerPromoted",
  "nodeRemoved",
  "leaderRemoved",
  "transferRequested",
  "transferCompleted",
  "readRequested",
  "readServed",
  "sentBeforeWrite",
  "ackBeforeLeaderWrite",
  "oldTermAckAboveCommit",
  "unsyncedWrite",
  "unsyncedWriteLost",
  "voteGrantInPersistedTerm",
  "crashAfterVoteGrant",
  "campaignForced",
  "leaderChurn",
  "hostSimple",
  "hostMultiraft",
  "groupQuiesced",
  "wokenBySilentLeader",
] as const;

/** One coverage counter's name. */
export type CoverageKey = (typeof COVERAGE_KEYS)[number];
/** All coverage counters of a run or a sweep. */
export type Coverage = Record<CoverageKey, number>;

/** A coverage record with every counter at zero. */
export function emptyCoverage(): Coverage {
  const c = {} as Coverage;
  for (const k of COVERAGE_KEYS) c[k] = 0;
  return c;
}

/** Adds `from` into `into`. */
export function addCoverage(into: Coverage, from: Coverage): void {
  for (const k of COVERAGE_KEYS) into[k] += from[k];
}

/** The counters as `name=count` pairs, several per line. */
export function formatCoverage(c: Coverage): string {
  const parts = COVERAGE_KEYS.map((k) => `${k}=${c[k]}`);
  const lines: string[] = [];
  for (let i = 0; i < parts.length; i += 5) lines.push("  " + parts.slice(i, i + 5).join(" "));
  return lines.join("\n");
}

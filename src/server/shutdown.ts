/** Graceful shutdown: hand every leadership of this node to the most caught-up other voter. */
import type { Clock } from "../lib/clock.js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { MultiRaft } from "../multiraft/multiraft.js";

const POLL_MS = 20;

/**
 * Asks every group led here to transfer leadership and waits (bounded by `deadlineMs` on the
 * monotonic clock) until none is led here any more. Groups without another voter stay.
 */
export async function handOffLeaderships(multiraft: MultiRaft, clock: Clock, deadlineMs: number, log: Logger): Promise<void> {
  let asked = 0;
  for (const group of multiraft.groupIds()) {
    const target = bestTransferee(multiraft, group);
    if (target === undefined) continue;
    multiraft.transferLeadership(group, target);
    asked++;
  }
  if (asked === 0) return;
  log.info({ groups: asked }, "transferring leaderships before shutdown");
  while (clock.monotonicMs() < deadlineMs) {
    const still = multiraft.groupIds().filter((g) => bestTransferee(multiraft, g) !== undefined);
    if (still.length === 0) return;
    // Re-ask: a transfer is abandoned after an election timeout.
    for (const g of still) multiraft.transferLeadership(g, bestTransferee(multiraft, g)!);
    await new Promise<void>((resolve) => clock.setTimer(POLL_MS, resolve));
  }
  log.warn({}, "some leaderships were not transferred before the shutdown deadline");
}

/** The voter with the highest match, if this node leads `group` and has another voter. */
function bestTransferee(multiraft: MultiRaft, group: number): NodeId | undefined {
  const status = multiraft.status(group);
  if (status?.role !== "leader" || status.progress === undefined) return undefined;
  let best: NodeId | undefined;
  let bestMatch = -1;
  for (const [id, pr] of status.progress) {
    if (id === status.id || pr.isLearner) continue;
    if (pr.match > bestMatch) {
      best = id;
      bestMatch = pr.match;
    }
  }
  return best;
}

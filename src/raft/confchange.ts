/**
 * Single-server membership changes as pure functions of the membership, shared by the core and
 * by state machines that must know the membership at any index (to build snapshots there).
 */
import type { ConfChange, ConfState } from "./messages.js";

/**
 * Whether `cc` applies to `cs`: adding a voter that is not one (a learner is promoted), adding a
 * learner that is not a member (voters are never demoted), removing a member without removing the
 * last voter. A node that knows no membership yet applies nothing.
 */
export function isValidConfChange(cs: ConfState, cc: ConfChange): boolean {
  if (!Number.isInteger(cc.nodeId) || cc.nodeId <= 0) return false;
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case "addVoter":
      return !isVoter;
    case "addLearner":
      return !isVoter && !isLearner;
    case "removeNode":
      return (isVoter && cs.voters.length > 1) || isLearner;
  }
}

/** The membership after `cc`, or undefined if `cc` does not apply (see {@link isValidConfChange}). */
export function nextConfState(cs: ConfState, cc: ConfChange): ConfState | undefined {
  if ((cs.voters.length === 0 && cs.learners.length === 0) || !isValidConfChange(cs, cc)) return undefined;
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  if (cc.type === "addVoter") voters.push(cc.nodeId);
  else if (cc.type === "addLearner") learners.push(cc.nodeId);
  return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
}

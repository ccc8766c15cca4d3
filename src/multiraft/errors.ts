/** The errors a proposal or read can end with, re-exported for the host's callers. */
import { NotLeaderError, ProposalDroppedError, TimeoutError } from "../lib/errors.js";
import type { GroupId } from "../lib/ids.js";

export { NotLeaderError, ProposalDroppedError };

/** A proposal or read that did not settle in time; it may still commit. */
export class ProposalTimeoutError extends TimeoutError {
  constructor(readonly group: GroupId, timeoutMs: number) {
    super(`the request to group ${group}`, timeoutMs);
    this.name = "ProposalTimeoutError";
  }
}

export type ProposalError = NotLeaderError | ProposalDroppedError | ProposalTimeoutError;

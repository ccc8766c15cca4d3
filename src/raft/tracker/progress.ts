/**
 * A leader's view of one follower's log (thesis §3.5 nextIndex/matchIndex), with the flow-control
 * state that decides how aggressively to send:
 *
 *  - `probe`: we do not know where the follower's log matches; send one append per heartbeat
 *    interval and wait for the answer (a rejection moves `next` back, fast, by term).
 *  - `replicate`: the logs match up to `match`; stream appends optimistically (`next` runs ahead),
 *    at most `maxInflightMsgs` messages / `maxInflightBytes` bytes unacknowledged.
 *  - `snapshot`: the follower needs entries we compacted; a snapshot is on its way, send nothing
 *    else until the host reports its outcome or the follower acknowledges it.
 */
import type { LogIndex } from "../../lib/ids.js";
import { Inflights } from "./inflights.js";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  // Invariant: match < next.
  match: LogIndex;
  next: LogIndex;
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = true;
  /** In snapshot state: a whole election timeout passed without news of the snapshot. */
  snapshotStale = false;
  /** In probe state: an append is out; wait for its answer or the next heartbeat answer. */
  probeSent = false;
  /**
   * The highest commit index the follower reported knowing (in its append and heartbeat
   * answers). A leader quiesces only once every follower knows its commit.
   */
  commitAcked: LogIndex = 0;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: LogIndex, maxInflightMsgs: number, maxInflightBytes: number, isLearner: boolean) {
    this.match = 0;
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotStale = false;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot; probe from there.
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that an append with `entries` entries ending at `lastIndex` and `bytes` of payload was sent. */
  sentEntries(entries: number, lastIndex: LogIndex, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
      // An empty append in replicate state is a commit update; it does not pause the stream.
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** The follower acknowledged up to `n`. Returns whether `match` moved. */
  maybeUpdate(n: LogIndex): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is the highest index where the logs
   * may match. Returns false if the rejection is stale (answers an append we no longer care about).
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends to this follower is paused by flow control. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}

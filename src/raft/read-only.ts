/**
 * ReadIndex bookkeeping on the leader (thesis §6.4). A read request records the commit index at
 * the time it arrived; the leader then confirms it is still the leader by a heartbeat round
 * carrying the request's context. Once a quorum acknowledges that heartbeat, the request and every
 * request queued before it are safe to serve at their recorded index.
 */
import type { LogIndex, NodeId } from "../lib/ids.js";

export interface ReadRequest {
  readonly context: string;
  readonly index: LogIndex;
  /** The node that asked (the leader itself for local reads). */
  readonly from: NodeId;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadRequest>();
  private queue: string[] = [];

  /** Queues a request unless one with the same context is already pending. */
  add(context: string, index: LogIndex, from: NodeId, self: NodeId): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { context, index, from, acks: new Set([self]) });
    this.queue.push(context);
  }

  /** Records a heartbeat acknowledgement; returns the acks for that context, or undefined if unknown. */
  recvAck(from: NodeId, context: string): ReadonlySet<NodeId> | undefined {
    const req = this.pending.get(context);
    if (req === undefined) return undefined;
    req.acks.add(from);
    return req.acks;
  }

  /** Removes and returns the requests up to and including `context`, in arrival order. */
  advance(context: string): ReadRequest[] {
    const at = this.queue.indexOf(context);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1).map((c) => this.pending.get(c)!);
    for (const c of this.queue.slice(0, at + 1)) this.pending.delete(c);
    this.queue = this.queue.slice(at + 1);
    return done;
  }

  /** The context of the newest pending request, to ride on the next heartbeat. */
  lastPendingContext(): string {
    return this.queue.length === 0 ? "" : this.queue[this.queue.length - 1]!;
  }

  get size(): number {
    return this.queue.length;
  }

  clear(): void {
    this.pending.clear();
    this.queue = [];
  }
}

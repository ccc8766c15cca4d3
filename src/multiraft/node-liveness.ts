/**
 * Node liveness for quiesced groups (see multiraft.ts): which peers need a keep-alive at a tick,
 * and which peers have just fallen silent. Counted in ticks and free of I/O, so that the
 * simulator (chaos-tests/sim) runs the same code as the host.
 *
 *   tick   heard from 2?   2's silence   tick() says
 *    10    yes (frame)          0        keep-alive to 2 if nothing was sent to it since tick 9
 *    11    no                   1
 *    ..
 *    21    no                  11        2 fell silent (11 > silenceTicks = 10): wake its groups
 *    22    yes                  0        (onHeard reports that 2 is back)
 */
import type { NodeId } from "../lib/ids.js";

interface PeerState {
  /** The tick at which the peer was last heard from (or, before that, first sent to). */
  heardAt: number;
  /** Silent for more than silenceTicks; reported once, until heard from again. */
  silent: boolean;
  /** Sent something since the last tick: no keep-alive needed at this one. */
  sentSinceTick: boolean;
}

/** What one tick asks the host to do. */
export interface LivenessTick {
  /** Peers that were sent nothing since the previous tick: send each a keep-alive now. */
  readonly keepAlive: readonly NodeId[];
  /** Peers silent for more than silenceTicks ticks, reported once: wake the groups they lead. */
  readonly fellSilent: readonly NodeId[];
}

/**
 * The peers of one node and when each was last heard from. A peer is known from the first message
 * sent to it or received from it, and is kept for good (a cluster has few nodes).
 */
export class NodeLiveness {
  private ticks = 0;
  private readonly peers = new Map<NodeId, PeerState>();

  /** `silenceTicks`: the ticks without a frame after which a peer counts as silent (electionTicks). */
  constructor(readonly silenceTicks: number) {}

  /** Something was handed to the transport for `to`. */
  onSent(to: NodeId): void {
    this.peer(to).sentSinceTick = true;
  }

  /** A frame (messages or a keep-alive) arrived from `from`. Returns true if `from` had been reported silent. */
  onHeard(from: NodeId): boolean {
    const p = this.peer(from);
    p.heardAt = this.ticks;
    const wasSilent = p.silent;
    p.silent = false;
    return wasSilent;
  }

  /** Ticks since `peer` was last heard from. */
  silentTicks(peer: NodeId): number {
    return this.ticks - this.peer(peer).heardAt;
  }

  /** Advances one tick; see {@link LivenessTick}. */
  tick(): LivenessTick {
    this.ticks++;
    const keepAlive: NodeId[] = [];
    const fellSilent: NodeId[] = [];
    for (const [id, p] of this.peers) {
      if (!p.sentSinceTick) keepAlive.push(id);
      p.sentSinceTick = false;
      if (!p.silent && this.ticks - p.heardAt > this.silenceTicks) {
        p.silent = true;
        fellSilent.push(id);
      }
    }
    return { keepAlive, fellSilent };
  }

  private peer(id: NodeId): PeerState {
    let p = this.peers.get(id);
    if (p === undefined) {
      p = { heardAt: this.ticks, silent: false, sentSinceTick: false };
      this.peers.set(id, p);
    }
    return p;
  }
}

/**
 * The multi-raft {@link Transport} over gRPC: one long-lived frame stream per peer for all groups,
 * snapshots on a chunked call of their own. See index.ts for how the pieces fit.
 */
import * as grpc from "@grpc/grpc-js";
import { assert } from "../lib/assert.js";
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { GroupId, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import type { GroupMessage, Transport } from "../multiraft/ports.js";
import { InboundService, PEER_SERVICE_DEFINITION } from "./inbound.js";
import { resolveLimits, type TransportLimits } from "./limits.js";
import { PeerLink, type LinkState } from "./peer-link.js";
import { sendSnapshot } from "./snapshot-sender.js";

/** How to build a {@link GrpcTransport}. */
export interface GrpcTransportOptions {
  /** This node's id (never 0). */
  readonly nodeId: NodeId;
  /** The cluster this node belongs to; frames from other clusters are refused. */
  readonly clusterId: string;
  /** The initial peers and their "host:port" addresses (the port their node serves gRPC on); this node's own entry is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** Drives reconnect backoff, connect and snapshot timeouts. */
  readonly clock: Clock;
  /** Jitters the reconnect backoff. */
  readonly random: Random;
  /** The caller binds `component: "transport"` (and `node`); the transport adds `peer` where it applies. */
  readonly logger: Logger;
  /** Overrides of {@link DEFAULT_TRANSPORT_LIMITS}; checked by resolveLimits at construction. */
  readonly limits?: Partial<TransportLimits>;
}

type ReceiveHandler = (from: NodeId, messages: readonly GroupMessage[]) => void;
type UnreachableHandler = (to: NodeId, groups: readonly GroupId[]) => void;
type SnapshotStatusHandler = (to: NodeId, group: GroupId, ok: boolean) => void;

interface OutboundSnapshot {
  readonly to: NodeId;
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/**
 * The gRPC peer transport of one node.
 *
 * Outbound, `send()` queues per peer and returns; once per event-loop turn (setImmediate) every
 * peer's queue goes out as one frame (more only past frameBytesMax), and what had to be dropped
 * is reported through onUnreachable, at most once per peer per turn. All handler calls happen in
 * that turn, never inside `send()`, so the host may call `send()` from a handler.
 *
 * Inbound, the service registered by `addTo()` decodes frames and calls the onReceive handler in
 * the order each peer sent them. Register the handlers before the server starts.
 */
export class GrpcTransport implements Transport {
  readonly limits: TransportLimits;
  private readonly nodeId: NodeId;
  private readonly clusterId: string;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound: InboundService;
  private readonly snapshots = new Set<OutboundSnapshot>();
  private reports: (() => void)[] = [];
  private flushImmediate: NodeJS.Immediate | undefined;
  private closed = false;
  private receiveHandler: ReceiveHandler | undefined;
  private unreachableHandler: UnreachableHandler | undefined;
  private snapshotHandler: SnapshotStatusHandler | undefined;

  constructor(options: GrpcTransportOptions) {
    assert(options.nodeId > 0, "GrpcTransport: nodeId must not be 0");
    assert(options.clusterId.length > 0, "GrpcTransport: clusterId must not be empty");
    this.limits = resolveLimits(options.limits);
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.clock = options.clock;
    this.random = options.random;
    this.log = options.logger;
    this.inbound = new InboundService({
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      limits: this.limits,
      logger: this.log,
      deliver: (from, messages) => this.deliver(from, messages),
    });
    for (const [id, address] of options.peers) this.setPeer(id, address);
  }

  /**
   * The gRPC server options the node's server needs for the peer service (merge them with the
   * broker API's, taking the larger receive limit). The service itself also enforces frameBytesMax.
   */
  serverOptions(): grpc.ServerOptions {
    return { "grpc.max_receive_message_length": this.limits.frameBytesMax };
  }

  /** Registers the RaftPeer service on a server owned by the caller; call before it binds. */
  addTo(server: grpc.Server): void {
    server.addService(PEER_SERVICE_DEFINITION, this.inbound.handlers());
  }

  /** Adds a peer or changes its address (a changed address ends the current stream). This node's own id is ignored. */
  setPeer(id: NodeId, address: string): void {
    assert(Number.isSafeInteger(id) && id > 0, () => `setPeer: invalid node id ${id}`);
    if (this.closed || id === this.nodeId) return;
    const link = this.links.get(id);
    if (link !== undefined) return link.setAddress(address);
    this.links.set(id, new PeerLink(id, address, this.linkContext()));
  }

  /** Forgets a peer: its stream ends and its queue is dropped without reports; its snapshots are cancelled (reported failed). */
  removePeer(id: NodeId): void {
    this.links.get(id)?.close();
    this.links.delete(id);
    for (const s of this.snapshots) if (s.to === id) s.controller.abort();
  }

  /** Where the stream to a peer is (for status pages and tests); undefined for an unknown peer. */
  linkState(to: NodeId): LinkState | undefined {
    return this.links.get(to)?.state;
  }

  /** Queues `messages` for `to`; an empty list asks for a keep-alive frame (see the Transport port). */
  send(to: NodeId, messages: readonly GroupMessage[]): void {
    if (this.closed) return;
    for (const { message: m } of messages) {
      assert(m.from === this.nodeId && m.to === to, () => `send to ${to}: message ${m.type} is from ${m.from} to ${m.to}`);
    }
    const link = this.links.get(to);
    if (messages.length === 0) return link?.keepAlive();
    if (link === undefined) return this.dropForUnknownPeer(to, messages);
    if (!messages.some((gm) => gm.message.type === "snap")) return link.enqueue(messages);
    for (const gm of messages) if (gm.message.type === "snap") this.startSnapshot(link, gm);
    const rest = messages.filter((gm) => gm.message.type !== "snap");
    if (rest.length > 0) link.enqueue(rest);
  }

  onReceive(handler: ReceiveHandler): void {
    this.receiveHandler = handler;
  }

  onUnreachable(handler: UnreachableHandler): void {
    this.unreachableHandler = handler;
  }

  onSnapshotStatus(handler: SnapshotStatusHandler): void {
    this.snapshotHandler = handler;
  }

  /**
   * Ends every stream (outbound cancelled, inbound ended with UNAVAILABLE), cancels snapshots and
   * timers, and waits up to closeTimeoutMs for snapshot calls to settle. No handler runs afterwards.
   * Shut the gRPC server down after this resolves.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    this.reports = [];
    for (const link of this.links.values()) link.close();
    this.inbound.close();
    for (const s of this.snapshots) s.controller.abort();
    await this.settleSnapshots();
    this.log.info({ nodeId: this.nodeId }, "closed transport");
  }

  private linkContext() {
    const { nodeId, clusterId, limits, clock, random } = this;
    return { nodeId, clusterId, limits, clock, random, logger: this.log, scheduleFlush: () => this.scheduleFlush() };
  }

  private deliver(from: NodeId, messages: readonly GroupMessage[]): void {
    if (this.closed) return;
    if (this.receiveHandler === undefined) {
      if (messages.length > 0) this.log.debug({ from, messages: messages.length }, "dropped messages: no receive handler");
      return;
    }
    this.receiveHandler(from, messages);
  }

  private dropForUnknownPeer(to: NodeId, messages: readonly GroupMessage[]): void {
    this.log.debug({ to, messages: messages.length }, "dropped messages for unknown peer");
    const groups = new Set<GroupId>();
    for (const gm of messages) {
      if (gm.message.type === "snap") this.report(() => this.snapshotHandler?.(to, gm.group, false));
      else groups.add(gm.group);
    }
    if (groups.size > 0) this.report(() => this.unreachableHandler?.(to, [...groups]));
  }

  private startSnapshot(link: PeerLink, gm: GroupMessage): void {
    const to = link.peer;
    const inflight = [...this.snapshots].filter((s) => s.to === to).length;
    if (link.state === "backoff" || inflight >= this.limits.snapshotsOutboundMax) {
      this.log.warn({ peer: to, group: gm.group, link: link.state, inflight }, "snapshot not sent");
      return this.report(() => this.snapshotHandler?.(to, gm.group, false));
    }
    const controller = new AbortController();
    const ids = { from: this.nodeId, to, clusterId: this.clusterId };
    const ctx = { limits: this.limits, clock: this.clock, logger: this.log };
    const done = sendSnapshot(link.address, ids, gm, ctx, controller.signal).then((ok) => {
      this.snapshots.delete(snapshot);
      this.report(() => this.snapshotHandler?.(to, gm.group, ok));
    });
    const snapshot: OutboundSnapshot = { to, controller, done };
    this.snapshots.add(snapshot);
  }

  /** Runs a handler call in the next flush turn (never inside send()). */
  private report(call: () => void): void {
    if (this.closed) return;
    this.reports.push(call);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushImmediate !== undefined || this.closed) return;
    this.flushImmediate = setImmediate(() => this.flushTurn());
  }

  /** One turn: write a frame per peer, then report drops and snapshot outcomes. */
  private flushTurn(): void {
    this.flushImmediate = undefined;
    for (const link of this.links.values()) {
      link.flush();
      const groups = link.takeDropped();
      if (groups.length > 0) this.reports.push(() => this.unreachableHandler?.(link.peer, groups));
    }
    const reports = this.reports;
    this.reports = [];
    for (const report of reports) if (!this.closed) report();
  }

  private async settleSnapshots(): Promise<void> {
    if (this.snapshots.size === 0) return;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = this.clock.setTimer(this.limits.closeTimeoutMs, resolve);
    });
    await Promise.race([Promise.allSettled([...this.snapshots].map((s) => s.done)), timeout]);
    timer?.cancel();
  }
}

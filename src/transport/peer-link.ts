/**
 * The outbound half of the transport for one peer: a bounded queue, one stream, and the reconnect
 * loop. States:
 *
 *   idle ──send──► connecting ──StreamAccepted──► up
 *     ▲                 │                          │
 *     │                 └──── error / timeout ─────┴──► backoff ──timer──► idle
 *
 * Messages queue while idle, connecting or up (bounded in messages and bytes) and are written as
 * frames only when up. In backoff, and on any failure, messages are dropped and their groups are
 * collected for the transport to report unreachable. A failed stream is torn down with its gRPC
 * channel; the next attempt opens a fresh channel after a jittered exponential backoff, so that
 * gRPC's own reconnect backoff never stacks on ours. Every gRPC callback is tagged with the
 * generation of the call it belongs to, so that events of a torn-down call are ignored.
 */
import * as grpc from "@grpc/grpc-js";
import { assert } from "../lib/assert.js";
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { GroupId, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import type { GroupMessage } from "../multiraft/ports.js";
import { decodeAccepted, encodeFrame, frameOverheadBytes, itemBytesMax, PEER_METHOD_PATHS, type PeerIds } from "./codec.js";
import type { TransportLimits } from "./limits.js";

/** Where a peer link is in its life; see the file comment. */
export type LinkState = "idle" | "connecting" | "up" | "backoff" | "closed";

/** What a link needs from its transport. */
export interface LinkContext {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** Asks the transport to call flush() (and collect drops) on the next event-loop turn. */
  readonly scheduleFlush: () => void;
}

interface Queued {
  readonly gm: GroupMessage;
  readonly bytes: number;
}

const passThrough = (b: Buffer): Buffer => b;

/** Channel options of a peer link or snapshot channel: our own limits, no hidden retries or sharing. */
export function peerChannelOptions(limits: TransportLimits): grpc.ChannelOptions {
  return {
    "grpc.max_send_message_length": limits.frameBytesMax,
    "grpc.max_receive_message_length": 64 * 1024,
    "grpc.use_local_subchannel_pool": 1,
    "grpc.enable_retries": 0,
    "grpc.keepalive_time_ms": limits.keepaliveIntervalMs,
    "grpc.keepalive_timeout_ms": limits.keepaliveTimeoutMs,
  };
}

/** The outbound stream to one peer. Only the transport uses it. */
export class PeerLink {
  private current: LinkState = "idle";
  private queue: Queued[] = [];
  // Invariant: queueBytes is the sum of queue[i].bytes, and at most limits.queueBytesMax.
  private queueBytes = 0;
  private queueFullLogged = false;
  /** A keep-alive was asked for: the next flush writes a frame even if nothing is queued. */
  private keepAlivePending = false;
  private readonly dropped = new Set<GroupId>();
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private generation = 0;
  /** The groups of each frame written but not yet flushed by gRPC, oldest first. */
  private unflushed: GroupId[][] = [];
  /** Consecutive failed attempts; drives the backoff, reset when a stream is accepted. */
  private failures = 0;
  private timer: TimerHandle | undefined;
  private readonly ids: PeerIds;
  /** The bytes a frame holds for messages: frameBytesMax less the frame's own fields. */
  private readonly frameBudgetBytes: number;
  private readonly log: Logger;

  constructor(
    readonly peer: NodeId,
    private addressValue: string,
    private readonly ctx: LinkContext,
  ) {
    this.ids = { from: ctx.nodeId, to: peer, clusterId: ctx.clusterId };
    this.frameBudgetBytes = ctx.limits.frameBytesMax - frameOverheadBytes(ctx.clusterId);
    this.log = ctx.logger.child({ peer });
  }

  get state(): LinkState {
    return this.current;
  }

  get address(): string {
    return this.addressValue;
  }

  /** Queues messages for the next flush, dropping what does not fit; dials when idle. */
  enqueue(messages: readonly GroupMessage[]): void {
    if (this.current === "backoff" || this.current === "closed") {
      for (const gm of messages) this.dropped.add(gm.group);
    } else {
      for (const gm of messages) this.enqueueOne(gm);
      if (this.current === "idle" && this.queue.length > 0) this.dial();
    }
    this.ctx.scheduleFlush();
  }

  /**
   * Asks for a frame at the next flush even if nothing is queued: an empty frame, a keep-alive that
   * tells the peer this node is alive. Dials when idle; dropped silently in backoff (nothing to report).
   */
  keepAlive(): void {
    if (this.current === "backoff" || this.current === "closed") return;
    this.keepAlivePending = true;
    if (this.current === "idle") this.dial();
    this.ctx.scheduleFlush();
  }

  /** Writes queued messages as frames, as far as the stream is up and the in-flight bound allows. */
  flush(): void {
    const { framesInflightMax } = this.ctx.limits;
    while (this.current === "up" && this.queue.length > 0 && this.unflushed.length < framesInflightMax) {
      this.writeFrame(this.takeBatch());
    }
    // Frames still in flight prove that we live once they land; a keep-alive waits behind them.
    if (this.keepAlivePending && this.current === "up" && this.unflushed.length < framesInflightMax) this.writeFrame([]);
  }

  /** The groups whose messages were dropped since the last call (to report unreachable). */
  takeDropped(): GroupId[] {
    const groups = [...this.dropped];
    this.dropped.clear();
    return groups;
  }

  /** Points the link at a new address: the current stream ends and its messages count as dropped. */
  setAddress(address: string): void {
    if (address === this.addressValue || this.current === "closed") return;
    this.log.info({ from: this.addressValue, to: address }, "changed peer address");
    this.addressValue = address;
    this.teardown();
    this.dropQueue();
    this.failures = 0;
    this.current = "idle";
    this.ctx.scheduleFlush();
  }

  /** Ends the stream and timers; nothing is reported afterwards. */
  close(): void {
    this.teardown();
    this.queue = [];
    this.queueBytes = 0;
    this.dropped.clear();
    this.current = "closed";
  }

  private enqueueOne(gm: GroupMessage): void {
    const bytes = itemBytesMax(gm);
    const { frameBytesMax, queueMessagesMax, queueBytesMax } = this.ctx.limits;
    if (bytes > this.frameBudgetBytes) {
      const { type, entries } = gm.message;
      this.log.warn({ group: gm.group, type, entries: entries.length, bytes, frameBytesMax }, "dropped message larger than a frame");
      this.dropped.add(gm.group);
    } else if (this.queue.length >= queueMessagesMax || this.queueBytes + bytes > queueBytesMax) {
      if (!this.queueFullLogged) this.log.warn({ messages: this.queue.length, bytes: this.queueBytes }, "peer queue full, dropping messages");
      this.queueFullLogged = true;
      this.dropped.add(gm.group);
    } else {
      this.queue.push({ gm, bytes });
      this.queueBytes += bytes;
    }
  }

  /** The longest prefix of the queue that fits one frame (at least one message: each fits alone). */
  private takeBatch(): GroupMessage[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && bytes + this.queue[n]!.bytes <= this.frameBudgetBytes) bytes += this.queue[n++]!.bytes;
    assert(n > 0, "a queued message does not fit an empty frame");
    const batch = this.queue.splice(0, n);
    this.queueBytes -= bytes;
    if (this.queue.length === 0) this.queueFullLogged = false;
    return batch.map((q) => q.gm);
  }

  private writeFrame(messages: readonly GroupMessage[]): void {
    this.keepAlivePending = false;
    const frame = encodeFrame(this.ids, messages);
    assert(frame.byteLength <= this.ctx.limits.frameBytesMax, () => `frame of ${frame.byteLength} bytes exceeds its size bound`);
    const generation = this.generation;
    this.unflushed.push(messages.map((gm) => gm.group));
    this.call!.write(frame, () => this.onFlushed(generation));
  }

  private onFlushed(generation: number): void {
    if (generation !== this.generation) return;
    this.unflushed.shift();
    if (this.queue.length > 0) this.ctx.scheduleFlush();
  }

  private dial(): void {
    const generation = ++this.generation;
    const client = new grpc.Client(this.addressValue, grpc.credentials.createInsecure(), peerChannelOptions(this.ctx.limits));
    const call = client.makeBidiStreamRequest<Buffer, Buffer>(PEER_METHOD_PATHS.stream, passThrough, passThrough, new grpc.Metadata(), {});
    this.client = client;
    this.call = call;
    this.current = "connecting";
    call.on("data", (reply: Buffer) => this.onReply(generation, reply));
    call.on("error", () => {}); // every end of a call, error or not, also arrives as "status"
    call.on("status", (status: grpc.StatusObject) => this.onStatus(generation, status));
    call.write(encodeFrame(this.ids, [])); // the hello; the peer answers with StreamAccepted
    this.timer = this.ctx.clock.setTimer(this.ctx.limits.connectTimeoutMs, () => {
      this.fail(generation, "no StreamAccepted within connectTimeoutMs", "warn");
    });
  }

  private onReply(generation: number, reply: Buffer): void {
    if (generation !== this.generation || this.current !== "connecting") return;
    const accepted = decodeAccepted(reply);
    if (!accepted.ok) return this.fail(generation, accepted.error, "error");
    const { nodeId, clusterId } = accepted.value;
    if (nodeId !== this.peer || clusterId !== this.ctx.clusterId) {
      const reason = `${this.addressValue} is node ${nodeId} of cluster "${clusterId}", expected node ${this.peer} of "${this.ctx.clusterId}"`;
      return this.fail(generation, reason, "error");
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.current = "up";
    this.failures = 0;
    this.log.info({ address: this.addressValue }, "connected to peer");
    this.ctx.scheduleFlush();
  }

  private onStatus(generation: number, status: grpc.StatusObject): void {
    const reason = `${grpc.status[status.code] ?? status.code}: ${status.details}`;
    this.fail(generation, reason, status.code === grpc.status.FAILED_PRECONDITION ? "error" : "warn");
  }

  /** Ends the current attempt: drops and reports what was pending, then backs off. */
  private fail(generation: number, reason: string, level: "warn" | "error"): void {
    if (generation !== this.generation || (this.current !== "connecting" && this.current !== "up")) return;
    const wasUp = this.current === "up";
    for (const groups of this.unflushed) for (const g of groups) this.dropped.add(g);
    this.teardown();
    this.dropQueue();
    const retryInMs = this.backoffDelayMs();
    const fields = { address: this.addressValue, reason, failures: ++this.failures, retryInMs };
    if (wasUp || this.failures === 1) this.log[level](fields, wasUp ? "lost peer stream" : "cannot reach peer");
    else this.log.debug(fields, "cannot reach peer");
    this.current = "backoff";
    this.timer = this.ctx.clock.setTimer(retryInMs, () => {
      this.timer = undefined;
      if (this.current === "backoff") this.current = "idle";
    });
    this.ctx.scheduleFlush();
  }

  /**
   * Exponential backoff with "equal jitter": a delay in [d/2, d] where d = base · 2^failures,
   * capped at backoffMaxMs. E.g. base 50, max 2000: 25–50, 50–100, 100–200, …, 1000–2000 ms.
   */
  private backoffDelayMs(): number {
    const { backoffBaseMs, backoffMaxMs } = this.ctx.limits;
    const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(this.failures, 30));
    const half = Math.floor(ceiling / 2);
    return ceiling - half + this.ctx.random.int(half + 1);
  }

  private dropQueue(): void {
    for (const q of this.queue) this.dropped.add(q.gm.group);
    this.keepAlivePending = false;
    this.queue = [];
    this.queueBytes = 0;
    this.queueFullLogged = false;
  }

  private teardown(): void {
    this.generation++;
    this.timer?.cancel();
    this.timer = undefined;
    this.call?.cancel();
    this.call = undefined;
    this.client?.close();
    this.client = undefined;
    this.unflushed = [];
  }
}

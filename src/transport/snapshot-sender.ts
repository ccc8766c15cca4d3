/**
 * Sends one snapshot over the chunked InstallSnapshot call, on a channel of its own: a large
 * transfer then never shares an HTTP/2 connection (and its flow-control window) with the frame
 * stream, so heartbeats keep flowing while a snapshot is in flight (etcd does the same).
 */
import * as grpc from "@grpc/grpc-js";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { GroupMessage } from "../multiraft/ports.js";
import { decodeSnapshotReply, encodeSnapshotChunks, PEER_METHOD_PATHS, type PeerIds } from "./codec.js";
import { peerChannelOptions } from "./peer-link.js";
import type { TransportLimits } from "./limits.js";

/** What a snapshot send needs from its transport. */
export interface SnapshotSendContext {
  readonly limits: TransportLimits;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Chunks written but not yet flushed by gRPC; bounds the memory of one send to a few chunks. */
const CHUNKS_INFLIGHT_MAX = 2;

const passThrough = (b: Buffer): Buffer => b;

/**
 * Streams `gm` (a `snap` message) to the peer at `address`. Resolves true once the peer replied
 * that it received the whole snapshot, false on any failure, on snapshotTimeoutMs, or when
 * `signal` aborts. Never rejects.
 */
export async function sendSnapshot(
  address: string,
  ids: PeerIds,
  gm: GroupMessage,
  ctx: SnapshotSendContext,
  signal: AbortSignal,
): Promise<boolean> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), peerChannelOptions(ctx.limits));
  try {
    return await streamSnapshot(client, ids, gm, ctx, signal);
  } finally {
    client.close();
  }
}

function streamSnapshot(client: grpc.Client, ids: PeerIds, gm: GroupMessage, ctx: SnapshotSendContext, signal: AbortSignal): Promise<boolean> {
  const bytes = gm.message.snapshot?.data.byteLength ?? 0;
  const log = ctx.logger.child({ peer: ids.to, group: gm.group });
  const startedMs = ctx.clock.monotonicMs();
  return new Promise<boolean>((resolve) => {
    const chunks = encodeSnapshotChunks(ids, gm, ctx.limits.snapshotChunkBytes);
    let pump: ChunkPump | undefined;
    const call = client.makeClientStreamRequest<Buffer, Buffer>(PEER_METHOD_PATHS.installSnapshot, passThrough, passThrough, (err, reply) => {
      pump?.stop();
      timer.cancel();
      signal.removeEventListener("abort", cancel);
      const ok = outcome(err, reply, bytes, log);
      if (ok) log.info({ bytes, ms: ctx.clock.monotonicMs() - startedMs }, "sent snapshot");
      resolve(ok);
    });
    call.on("error", () => {}); // the callback above reports the outcome; a late write must not throw
    const cancel = (): void => call.cancel();
    const timer = ctx.clock.setTimer(ctx.limits.snapshotTimeoutMs, () => {
      log.warn({ bytes, snapshotTimeoutMs: ctx.limits.snapshotTimeoutMs }, "snapshot timed out");
      cancel();
    });
    signal.addEventListener("abort", cancel, { once: true });
    if (signal.aborted) return cancel();
    pump = new ChunkPump(call, chunks);
    pump.pump();
  });
}

function outcome(err: grpc.ServiceError | null, reply: Buffer | undefined, bytes: number, log: Logger): boolean {
  if (err !== null) {
    log.warn({ bytes, code: grpc.status[err.code] ?? err.code, details: err.details }, "snapshot failed");
    return false;
  }
  const decoded = reply === undefined ? undefined : decodeSnapshotReply(reply);
  if (decoded === undefined || !decoded.ok || decoded.value.receivedBytes !== bytes) {
    log.warn({ bytes, reply: decoded }, "snapshot failed: unexpected reply");
    return false;
  }
  return true;
}

/** Writes chunks with at most CHUNKS_INFLIGHT_MAX unflushed at a time, then half-closes. */
class ChunkPump {
  private inflight = 0;
  private stopped = false;

  constructor(
    private readonly call: grpc.ClientWritableStream<Buffer>,
    private readonly chunks: Iterator<Buffer>,
  ) {}

  pump(): void {
    while (!this.stopped && this.inflight < CHUNKS_INFLIGHT_MAX) {
      const next = this.chunks.next();
      if (next.done === true) {
        this.stopped = true;
        this.call.end();
        return;
      }
      this.inflight++;
      this.call.write(next.value, (err: unknown) => this.onWritten(err));
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private onWritten(err: unknown): void {
    this.inflight--;
    if (err !== undefined && err !== null) this.stopped = true; // the call's status reports it
    else this.pump();
  }
}

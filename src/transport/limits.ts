/**
 * Every bound of the peer transport, in one place, with the relations between them checked at
 * start-up (an error names the option to fix).
 */
import { FRAME_OVERHEAD_BYTES, SNAPSHOT_CHUNK_OVERHEAD_BYTES } from "./codec.js";

/** The bounds of one {@link GrpcTransport}. Sizes are per peer unless said otherwise. */
export interface TransportLimits {
  /** Largest encoded frame in either direction; also the gRPC max message length of the peer channels. */
  readonly frameBytesMax: number;
  /** Messages waiting for a peer's stream; beyond it, new messages are dropped and reported. */
  readonly queueMessagesMax: number;
  /** Estimated encoded bytes waiting for a peer's stream; beyond it, new messages are dropped and reported. */
  readonly queueBytesMax: number;
  /** Frames handed to gRPC but not yet flushed to the socket; bounds the memory under a slow peer. */
  readonly framesInflightMax: number;
  /**
   * Snapshot data per InstallSnapshot chunk (the protocol allows at most 1 MiB). When not given,
   * 1 MiB, or less when frameBytesMax is smaller.
   */
  readonly snapshotChunkBytes: number;
  /** Largest snapshot this node accepts (it is reassembled in memory). */
  readonly snapshotBytesMax: number;
  /** Snapshots being sent to one peer at once; more are reported failed at once. */
  readonly snapshotsOutboundMax: number;
  /** Snapshots being received from all peers at once; more are refused with RESOURCE_EXHAUSTED. */
  readonly snapshotsInboundMax: number;
  /** Time allowed for sending one snapshot before it is cancelled and reported failed. */
  readonly snapshotTimeoutMs: number;
  /** Time allowed from opening a stream to the peer's StreamAccepted. */
  readonly connectTimeoutMs: number;
  /** First reconnect delay after a failure; doubles per failure, with jitter, up to backoffMaxMs. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** HTTP/2 keepalive pings on peer channels, to find dead connections on idle streams. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Time close() waits for in-flight snapshot calls to finish after cancelling them. */
  readonly closeTimeoutMs: number;
}

const MiB = 1024 * 1024;

/** The protocol's bound on the data of one snapshot chunk. */
export const SNAPSHOT_CHUNK_BYTES_LIMIT = MiB;

/** Defaults sized for ~1,000 partitions per node. */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  // Must carry the largest entry the broker accepts (broker.ts BATCH_BYTES_MAX) plus a
  // maxMsgBytes worth of other entries: a message larger than a frame can never be delivered.
  frameBytesMax: 16 * MiB,
  queueMessagesMax: 16_384,
  queueBytesMax: 64 * MiB,
  framesInflightMax: 4,
  snapshotChunkBytes: MiB,
  snapshotBytesMax: 256 * MiB,
  snapshotsOutboundMax: 2,
  snapshotsInboundMax: 8,
  snapshotTimeoutMs: 60_000,
  connectTimeoutMs: 3_000,
  backoffBaseMs: 50,
  backoffMaxMs: 2_000,
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  closeTimeoutMs: 1_000,
};

/** Fills in defaults and checks every bound and their relations; throws a RangeError naming the option. */
export function resolveLimits(partial: Partial<TransportLimits> = {}): TransportLimits {
  const frameBytesMax = partial.frameBytesMax ?? DEFAULT_TRANSPORT_LIMITS.frameBytesMax;
  const snapshotChunkBytes = Math.min(SNAPSHOT_CHUNK_BYTES_LIMIT, frameBytesMax - SNAPSHOT_CHUNK_OVERHEAD_BYTES);
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, snapshotChunkBytes, ...partial };
  for (const [name, value] of Object.entries(limits)) {
    check(Number.isSafeInteger(value) && value > 0, name, `must be a positive integer, got ${String(value)}`);
  }
  check(limits.frameBytesMax <= 2 ** 31 - 1, "frameBytesMax", "must fit gRPC's 32-bit message length");
  check(limits.frameBytesMax >= 4096, "frameBytesMax", `must be at least 4096 bytes (a frame header is up to ${FRAME_OVERHEAD_BYTES} bytes plus the cluster id)`);
  check(limits.queueBytesMax >= limits.frameBytesMax, "queueBytesMax", `must be at least frameBytesMax (${limits.frameBytesMax})`);
  check(limits.snapshotChunkBytes <= SNAPSHOT_CHUNK_BYTES_LIMIT, "snapshotChunkBytes", `must be at most ${SNAPSHOT_CHUNK_BYTES_LIMIT} (1 MiB)`);
  check(
    limits.snapshotChunkBytes + SNAPSHOT_CHUNK_OVERHEAD_BYTES <= limits.frameBytesMax,
    "snapshotChunkBytes",
    `plus ${SNAPSHOT_CHUNK_OVERHEAD_BYTES} bytes of framing must fit frameBytesMax (${limits.frameBytesMax})`,
  );
  check(limits.backoffBaseMs <= limits.backoffMaxMs, "backoffBaseMs", `must not exceed backoffMaxMs (${limits.backoffMaxMs})`);
  return limits;
}

function check(ok: boolean, option: string, why: string): void {
  if (!ok) throw new RangeError(`transport limits: ${option} ${why}`);
}

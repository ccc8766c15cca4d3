/**
 * The inbound half of the transport: the RaftPeer service handlers that a node registers on its
 * gRPC server. A stream is accepted on its first valid frame (right cluster, right receiver), and
 * from then on every frame is decoded and delivered, in order, to the transport's receive handler.
 * Malformed or oversize frames are dropped with a log line and the stream stays open; identity
 * mismatches end the stream with a status that says what is wrong. Snapshot calls are reassembled
 * (SnapshotAssembler) and delivered as one `snap` message when complete.
 */
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { GroupMessage } from "../multiraft/ports.js";
import {
  decodeFrame,
  encodeAccepted,
  encodeSnapshotReply,
  PEER_METHOD_PATHS,
  SnapshotAssembler,
  type PeerIds,
  type SnapshotHeaderInfo,
} from "./codec.js";
import type { TransportLimits } from "./limits.js";

const passThrough = (b: Buffer): Buffer => b;

/** The RaftPeer service with pass-through serializers: codec.ts decodes, so bad input never fails inside gRPC. */
export const PEER_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  Stream: {
    path: PEER_METHOD_PATHS.stream,
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: "stream",
  },
  InstallSnapshot: {
    path: PEER_METHOD_PATHS.installSnapshot,
    requestStream: true,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: "installSnapshot",
  },
};

/** What the inbound service needs from its transport. */
export interface InboundContext {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  /** Hands decoded messages to the receive handler. */
  readonly deliver: (from: NodeId, messages: readonly GroupMessage[]) => void;
}

type PeerStream = grpc.ServerDuplexStream<Buffer, Buffer>;
type SnapshotCall = grpc.ServerReadableStream<Buffer, Buffer>;

interface Rejection {
  readonly code: grpc.status;
  readonly details: string;
}

/** Per-stream state: the sender, once the first valid frame named it. */
interface Session {
  from: NodeId | undefined;
  rejected: boolean;
}

const CLOSING: Rejection = { code: grpc.status.UNAVAILABLE, details: "node is closing" };

/** Serves the RaftPeer service for one transport. */
export class InboundService {
  private closed = false;
  private readonly streams = new Map<PeerStream, Session>();
  private readonly snapshots = new Set<InboundSnapshot>();
  private readonly log: Logger;

  constructor(private readonly ctx: InboundContext) {
    this.log = ctx.logger;
  }

  /** The handlers to register with `server.addService(PEER_SERVICE_DEFINITION, ...)`. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      Stream: (call: PeerStream) => this.handleStream(call),
      InstallSnapshot: (call: SnapshotCall, callback: grpc.sendUnaryData<Buffer>) => this.handleSnapshot(call, callback),
    };
  }

  /** Ends every inbound stream and snapshot call with UNAVAILABLE and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const [call, session] of this.streams) this.reject(call, session, CLOSING);
    for (const snapshot of this.snapshots) snapshot.fail(CLOSING);
  }

  private handleStream(call: PeerStream): void {
    const session: Session = { from: undefined, rejected: false };
    if (this.closed) return this.reject(call, session, CLOSING);
    this.streams.set(call, session);
    call.on("data", (frame: Buffer) => this.onFrame(call, session, frame));
    call.on("end", () => {
      this.streams.delete(call);
      if (!session.rejected) call.end(); // the sender half-closed: end our side with OK
    });
    call.on("error", (err: Error) => this.log.debug({ from: session.from, err: err.message }, "peer stream failed"));
    call.on("cancelled", () => this.streams.delete(call));
    call.on("close", () => this.streams.delete(call));
  }

  private onFrame(call: PeerStream, session: Session, frame: Buffer): void {
    if (session.rejected) return;
    if (this.closed) return this.reject(call, session, CLOSING);
    const { frameBytesMax } = this.ctx.limits;
    if (frame.byteLength > frameBytesMax) {
      this.log.warn({ from: session.from, bytes: frame.byteLength, frameBytesMax }, "dropped oversize frame");
      return;
    }
    const decoded = decodeFrame(frame);
    if (!decoded.ok) {
      this.log.warn({ from: session.from, bytes: frame.byteLength, error: decoded.error }, "dropped malformed frame");
      return;
    }
    const rejection = this.checkPeer(decoded.value, session.from);
    if (rejection !== undefined) return this.reject(call, session, rejection);
    const hello = session.from === undefined;
    if (hello) this.accept(call, session, decoded.value.from);
    // Every later frame is delivered, an empty one too: a keep-alive, the sender's sign of life.
    if (!hello || decoded.value.messages.length > 0) this.ctx.deliver(decoded.value.from, decoded.value.messages);
  }

  private accept(call: PeerStream, session: Session, from: NodeId): void {
    session.from = from;
    call.write(encodeAccepted(this.ctx.nodeId, this.ctx.clusterId));
    this.log.debug({ from, peerAddress: call.getPeer() }, "accepted peer stream");
  }

  /** Why a frame (or snapshot header) must be refused, or undefined when it is ours. */
  private checkPeer(ids: PeerIds, streamFrom: NodeId | undefined): Rejection | undefined {
    const { nodeId, clusterId } = this.ctx;
    if (ids.clusterId !== clusterId) {
      const details = `frame from node ${ids.from} of cluster "${ids.clusterId}" rejected: node ${nodeId} is in cluster "${clusterId}"`;
      return { code: grpc.status.FAILED_PRECONDITION, details };
    }
    if (ids.to !== nodeId) {
      const details = `frame for node ${ids.to} rejected: this is node ${nodeId} (stale peer address?)`;
      return { code: grpc.status.FAILED_PRECONDITION, details };
    }
    if (streamFrom !== undefined && ids.from !== streamFrom) {
      return { code: grpc.status.INVALID_ARGUMENT, details: `frame from node ${ids.from} on the stream of node ${streamFrom}` };
    }
    return undefined;
  }

  private reject(call: PeerStream, session: Session, rejection: Rejection): void {
    if (session.rejected) return;
    session.rejected = true;
    this.streams.delete(call);
    if (rejection !== CLOSING) this.log.warn({ from: session.from, ...rejection }, "rejected peer stream");
    call.emit("error", rejection); // grpc-js turns an emitted error into the call's final status
  }

  private handleSnapshot(call: SnapshotCall, callback: grpc.sendUnaryData<Buffer>): void {
    if (this.closed) return callback(CLOSING);
    if (this.snapshots.size >= this.ctx.limits.snapshotsInboundMax) {
      const details = `already receiving ${this.snapshots.size} snapshots (snapshotsInboundMax)`;
      return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details });
    }
    const snapshot = new InboundSnapshot(this.ctx, (ids) => this.checkPeer(ids, undefined), callback, () => this.snapshots.delete(snapshot));
    this.snapshots.add(snapshot);
    call.on("data", (chunk: Buffer) => snapshot.onChunk(chunk));
    call.on("end", () => snapshot.onEnd());
    call.on("error", () => snapshot.abandon());
    call.on("cancelled", () => snapshot.abandon());
  }
}

/** One snapshot being received: chunks in, one `snap` message and one reply out. */
class InboundSnapshot {
  private assembler: SnapshotAssembler | undefined;
  private header: SnapshotHeaderInfo | undefined;

  constructor(
    private readonly ctx: InboundContext,
    private readonly checkPeer: (ids: PeerIds) => Rejection | undefined,
    private readonly callback: grpc.sendUnaryData<Buffer>,
    private readonly onDone: () => void,
  ) {
    this.assembler = new SnapshotAssembler(ctx.limits.snapshotBytesMax);
  }

  onChunk(chunk: Buffer): void {
    const assembler = this.assembler;
    if (assembler === undefined) return;
    if (chunk.byteLength > this.ctx.limits.frameBytesMax) {
      return this.fail({ code: grpc.status.INVALID_ARGUMENT, details: `snapshot chunk of ${chunk.byteLength} bytes exceeds frameBytesMax` });
    }
    const result = assembler.accept(chunk);
    if (!result.ok) {
      const code = "tooLarge" in result && result.tooLarge ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT;
      return this.fail({ code, details: result.error });
    }
    if (result.value === undefined) return;
    this.header = result.value;
    const rejection = this.checkPeer(result.value);
    if (rejection !== undefined) this.fail(rejection);
  }

  onEnd(): void {
    const assembler = this.assembler;
    if (assembler === undefined) return;
    const result = assembler.finish();
    if (!result.ok) return this.fail({ code: grpc.status.INVALID_ARGUMENT, details: result.error });
    const from = this.header!.from;
    this.finish();
    this.ctx.logger.info({ from, group: result.value.group, bytes: assembler.received }, "received snapshot");
    this.ctx.deliver(from, [result.value]);
    this.callback(null, encodeSnapshotReply(assembler.received));
  }

  /** Ends the call with an error status (once). */
  fail(rejection: Rejection): void {
    if (this.assembler === undefined) return;
    this.finish();
    if (rejection !== CLOSING) this.ctx.logger.warn({ from: this.header?.from, group: this.header?.group, ...rejection }, "refused snapshot");
    this.callback(rejection);
  }

  /** The sender went away: forget the snapshot, reply nothing. */
  abandon(): void {
    if (this.assembler !== undefined) this.finish();
  }

  private finish(): void {
    this.assembler = undefined;
    this.onDone();
  }
}

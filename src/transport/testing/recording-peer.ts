/**
 * A stand-in peer that speaks the RaftPeer protocol at the byte level and records what arrives:
 * every raw frame and every snapshot chunk. Tests use it to check what a GrpcTransport puts on the
 * wire, and raw clients to send what a GrpcTransport never would.
 */
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../../lib/ids.js";
import { encodeAccepted, encodeSnapshotReply, PEER_METHOD_PATHS, SnapshotAssembler } from "../codec.js";
import { PEER_SERVICE_DEFINITION } from "../inbound.js";
import { bindLoopback, CLUSTER } from "./loopback.js";

export interface RecordingPeer {
  readonly address: string;
  readonly frames: Buffer[];
  readonly snapshotChunks: Buffer[];
  close(): void;
}

/** Starts a peer that accepts every stream as node `id`, records frames and chunks, and acknowledges snapshots. */
export async function startRecordingPeer(id: NodeId, clusterId = CLUSTER): Promise<RecordingPeer> {
  const frames: Buffer[] = [];
  const snapshotChunks: Buffer[] = [];
  const server = new grpc.Server({ "grpc.max_receive_message_length": 8 * 1024 * 1024 });
  server.addService(PEER_SERVICE_DEFINITION, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.write(encodeAccepted(id, clusterId));
      call.on("data", (frame: Buffer) => frames.push(frame));
      call.on("end", () => call.end());
      call.on("error", () => {});
    },
    InstallSnapshot: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const assembler = new SnapshotAssembler(1 << 30);
      call.on("data", (chunk: Buffer) => {
        snapshotChunks.push(chunk);
        assembler.accept(chunk);
      });
      call.on("end", () => callback(null, encodeSnapshotReply(assembler.received)));
      call.on("error", () => {});
    },
  });
  const port = await bindLoopback(server);
  return { address: `127.0.0.1:${port}`, frames, snapshotChunks, close: () => server.forceShutdown() };
}

/** A raw bidi stream to the peer service at `address`, writing and reading Buffers. */
export function openRawStream(address: string): { client: grpc.Client; call: grpc.ClientDuplexStream<Buffer, Buffer> } {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 64 * 1024 * 1024 });
  const pass = (b: Buffer): Buffer => b;
  const call = client.makeBidiStreamRequest<Buffer, Buffer>(PEER_METHOD_PATHS.stream, pass, pass, new grpc.Metadata(), {});
  return { client, call };
}

/**
 * # The peer transport
 *
 * Carries the Raft messages of every group hosted on this node to the other nodes, over gRPC
 * (protos/raft.proto, service RaftPeer), and implements the `Transport` port that multiraft
 * declares. multiraft never imports this module; server/ builds a {@link GrpcTransport} and hands
 * it over.
 *
 * Outbound, each peer has a {@link PeerLink}: a queue bounded in messages and bytes, and one
 * long-lived stream. `send()` only queues; once per event-loop turn the transport turns each
 * peer's queue into one frame (the messages of all groups, in order), so the messages a
 * multiraft round sends to one node cost one protobuf message and one HTTP/2 write. Heartbeats
 * and their responses, which dominate an idle node's traffic, are encoded as compact records of
 * a dozen bytes. An empty `send()` asks for a keep-alive: an empty frame, unless messages go to
 * that peer in the same turn anyway; the receiver hands every frame after the hello to the
 * receive handler, a keep-alive as an empty list, so that the host knows the peer lives even
 * while all its groups are quiesced. A stream opens with a hello frame and counts as up only when
 * the peer answers StreamAccepted (same cluster, right node). When it fails, everything pending is dropped and
 * reported unreachable, and the link backs off (exponential, jittered from the injected Random,
 * 50 ms to 2 s by default) before a fresh channel is dialed on the next send. Raft tolerates the
 * loss: `reportUnreachable` makes the leader probe again, and heartbeats find the peer once it is
 * back.
 *
 * Snapshots do not fit in frames: a `snap` message is streamed in chunks of at most 1 MiB on an
 * InstallSnapshot call over a channel of its own (so a big transfer never delays heartbeats),
 * reassembled by the receiver into one `snap` message, and its outcome reported through
 * onSnapshotStatus.
 *
 * Inbound, the RaftPeer service (registered with `addTo(server)` on the node's one gRPC server)
 * decodes every frame in codec.ts — the only file that sees protobuf objects and raft messages
 * together — and hands the messages to the receive handler in the order the peer sent them. A
 * malformed frame is dropped with a log line; a frame from another cluster, or for another node,
 * ends the stream with FAILED_PRECONDITION.
 *
 * Every bound is a named limit (limits.ts) checked at construction; time and randomness come from
 * the injected Clock and Random.
 */
export { GrpcTransport, type GrpcTransportOptions } from "./grpc-transport.js";
export { DEFAULT_TRANSPORT_LIMITS, resolveLimits, type TransportLimits } from "./limits.js";
export type { LinkState } from "./peer-link.js";

/**
 * The HTTP/2 flow-control window of raftmq's gRPC streams.
 *
 * On HTTP/2 a sender may have at most one window of data outstanding on a stream until the
 * receiver grants more (WINDOW_UPDATE). Node's default window is 64 KiB, so a record batch of
 * 1 MiB (a produce, a peer append, a consumer stream message) crossed loopback in about 16 turns
 * of grant-and-send, each costing both processes an event and a frame. With 8 MiB the whole batch
 * goes at once. Measured with `npm run bench` (2 cores, 3 nodes): about 10% more produce
 * throughput at lower CPU per record (cluster/bench/README.md). Memory stays bounded by the
 * message size limits: a receiver reads whole messages anyway.
 */
export const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * The record batch format, shared by the client (which builds and reads batches) and the broker
 * (which checks and stores them). It depends on nothing else in raftmq.
 *
 * A producer encodes its records into one batch (record-batch.ts: a 44-byte header and the records
 * section), compresses the section with one codec (compression.ts: none, gzip or lz4), and sends
 * the bytes in ProduceRequest.batch. The partition leader checks it once — magic, checksum,
 * decompression to exactly the declared size, every record's framing and the topic's record
 * limit — stamps its own timestamp into the header, and proposes the bytes unchanged as one Raft
 * entry. Followers and the partition state machine read only the header: record count (offsets),
 * broker timestamp (retention) and producer id/epoch/sequence (deduplication). Consumers get the
 * batch as stored (FetchRequest.raw_batches, ConsumeStart.batches) and decode it themselves, or
 * ask the broker to.
 *
 * Why the leader decompresses at all: a batch that passed into the replicated log can never be
 * taken back, so one that did not decode would fail every consumer at that offset forever. One
 * bounded decompression and a walk over length fields on the leader is the price of "every stored
 * batch decodes"; trusting the producer's declared sizes alone would make any buggy client a
 * poison-pill source.
 */
export * from "./compression.js";
export * from "./record-batch.js";

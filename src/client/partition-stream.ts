/**
 * One flow-controlled Consume stream of one partition (protos/consumer.proto), kept open across
 * failures: it starts at the partition's leader from `position`, follows NOT_LEADER redirects at
 * once, reconnects after other failures with a capped exponential backoff (refreshing the
 * metadata first), and skips to the oldest retained offset when retention deleted `position`.
 * Credits are the owner's business: `initialCredit()` is asked at every (re)connection, `credit()`
 * adds more, and `inflightRecords`/`inflightBytes` say what was granted and not yet received.
 * Used by consumers (one per owned partition) and by the request-reply inbox.
 *
 * The stream asks for stored batches (ConsumeStart.batches): the leader sends them as stored, and
 * they are decoded here like a fetch's (records.ts decodeBatches), skipping records below
 * `position` and expired ones. Messages of decoded records (from a leader that predates batches)
 * are accepted too. A batch that does not decode ends the stream, which reconnects from `position`.
 */
import type { Clock } from "../lib/clock.js";
import { BrokerError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { ServiceError } from "@grpc/grpc-js";
import { errorFromGrpc, UnavailableError } from "./errors.js";
import type { ConsumeMessage, ConsumeStream, GroupChannels } from "./group-channels.js";
import type { GroupClient } from "./groups.js";
import { decodeBatches, fromWireRecord, type FetchedRecord } from "./records.js";

const BACKOFF_INITIAL_MS = 50;
const BACKOFF_MAX_MS = 2_000;

/** A record as a consumer receives it: a fetched record and its topic. */
export interface ConsumedRecord extends FetchedRecord {
  readonly topic: string;
}

export interface PartitionStreamDeps {
  readonly channels: GroupChannels;
  readonly groups: GroupClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly leaderOf: (topic: string, partition: number) => Promise<{ id: number; address: string }>;
  readonly noteLeader: (topic: string, partition: number, id: number, address: string | undefined) => void;
  readonly invalidateMetadata: () => void;
}

export interface PartitionStreamHandlers {
  /** Credits to open each new stream with. */
  initialCredit(): { records: number; bytes: number };
  /**
   * Records in offset order, each after `position` as it was; `position` is already past them.
   * Called for every message, with no records when all of it was expired: credits were used.
   */
  onRecords(records: ConsumedRecord[]): void;
  /** Retention deleted records before they were read: the stream continues at `to`. */
  onSkip?(from: number, to: number): void;
}

export class PartitionStream {
  /** The offset the stream continues from: after the last record received. */
  position: number;
  /** Credits granted on the current stream and not yet used (either may go negative by one record or batch). */
  inflightRecords = 0;
  inflightBytes = 0;
  private stream: ConsumeStream | undefined;
  /** Bumped whenever the stream is replaced, so events of an old stream are ignored. */
  private gen = 0;
  private redirect: string | undefined;
  private backoffMs = BACKOFF_INITIAL_MS;
  private stopped = false;

  constructor(
    private readonly deps: PartitionStreamDeps,
    readonly topic: string,
    readonly partition: number,
    position: number,
    private readonly handlers: PartitionStreamHandlers,
  ) {
    this.position = position;
  }

  get key(): string {
    return `${this.topic}/${this.partition}`;
  }

  /** Whether a stream is open to a leader now. */
  get open(): boolean {
    return this.stream !== undefined;
  }

  start(): void {
    void this.connect();
  }

  /** Ends the stream for good. */
  stop(): void {
    this.stopped = true;
    this.gen++;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  /** Adds credits to the open stream (nothing if none is open: the next one asks initialCredit()). */
  credit(records: number, bytes: number): void {
    const stream = this.stream;
    if (stream === undefined || (records <= 0 && bytes <= 0)) return;
    const credit = { records: Math.max(0, records), bytes: Math.max(0, bytes) };
    this.inflightRecords += credit.records;
    this.inflightBytes += credit.bytes;
    stream.write({ credit });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.gen;
    let address: string;
    try {
      address = this.redirect ?? (await this.deps.leaderOf(this.topic, this.partition)).address;
    } catch (e) {
      this.retry(gen, e);
      return;
    }
    this.redirect = undefined;
    if (gen !== this.gen || this.stopped) return;
    const stream = this.deps.channels.consume(address);
    this.stream = stream;
    const credit = this.handlers.initialCredit();
    this.inflightRecords = Math.max(0, credit.records);
    this.inflightBytes = Math.max(0, credit.bytes);
    stream.on("data", (m: ConsumeMessage) => {
      if (gen === this.gen) this.onMessage(m);
    });
    stream.on("error", (err: ServiceError) => {
      if (gen !== this.gen) return;
      this.gen++;
      this.stream = undefined;
      this.onError(errorFromGrpc(err, { address, method: "Consume" }));
    });
    stream.on("end", () => {
      if (gen !== this.gen) return;
      this.gen++;
      this.stream = undefined;
      this.retry(this.gen, undefined);
    });
    stream.write({ start: { topic: this.topic, partition: this.partition, offset: this.position, creditRecords: this.inflightRecords, creditBytes: this.inflightBytes, batches: true } });
  }

  private onMessage(m: ConsumeMessage): void {
    const batches = m.batches;
    let fetched: FetchedRecord[];
    try {
      fetched = batches.length > 0
        ? decodeBatches(batches, { topic: this.topic, partition: this.partition, offset: this.position, brokerTimeMs: Number(m.brokerTimeMs), includeExpired: false })
        : m.records.map((wire) => fromWireRecord(wire, this.partition));
    } catch (e) {
      this.dropStream(e);
      return;
    }
    this.inflightRecords -= batches.length > 0 ? m.chargedRecords : m.records.length;
    this.inflightBytes -= Number(m.chargedBytes);
    const records: ConsumedRecord[] = [];
    for (const r of fetched) {
      if (r.offset < this.position) continue;
      records.push({ ...r, topic: this.topic });
      this.position = r.offset + 1;
    }
    this.position = Math.max(this.position, Number(m.nextOffset));
    this.backoffMs = BACKOFF_INITIAL_MS;
    this.handlers.onRecords(records);
  }

  /** Ends the current stream after a message it could not use; reconnects from `position` after a backoff. */
  private dropStream(error: unknown): void {
    const stream = this.stream;
    this.gen++;
    this.stream = undefined;
    stream?.cancel();
    this.retry(this.gen, error);
  }

  private onError(error: Error): void {
    if (this.stopped) return;
    if (error instanceof BrokerError && error.code === "NOT_LEADER" && error.leaderAddress !== undefined) {
      this.redirect = error.leaderAddress;
      if (error.leaderId !== undefined) this.deps.noteLeader(this.topic, this.partition, error.leaderId, error.leaderAddress);
      void this.connect();
      return;
    }
    if (error instanceof BrokerError && error.code === "OFFSET_OUT_OF_RANGE") {
      void this.skipToRetained();
      return;
    }
    this.retry(this.gen, error);
  }

  /** The position fell out of the retained log (retention): continue from the nearest retained offset. */
  private async skipToRetained(): Promise<void> {
    const gen = this.gen;
    try {
      const at = await this.deps.groups.partitionOffsetsAt(this.topic, this.partition);
      if (gen !== this.gen || this.stopped) return;
      if (at.highWatermark < this.position) {
        // A leader that has not caught up with what was already read here (a new leader still
        // applying its log): never go back (that would deliver records again); try again later.
        this.retry(gen, new UnavailableError(`the leader of ${this.key} reports its end at ${at.highWatermark}, before offset ${this.position} already read; waiting for it to catch up`));
        return;
      }
      const next = Math.max(this.position, at.logStartOffset);
      if (next > this.position) {
        this.deps.logger.warn({ partition: this.key, from: this.position, to: next }, "records were deleted by retention before they were read; skipping ahead");
        this.handlers.onSkip?.(this.position, next);
        this.position = next;
      }
      void this.connect();
    } catch (e) {
      this.retry(gen, e);
    }
  }

  /** Reconnects after a backoff (metadata refreshed first), unless the stream was replaced or stopped meanwhile. */
  private retry(gen: number, error: unknown): void {
    if (this.stopped) return;
    if (error !== undefined) this.deps.logger.debug({ partition: this.key, err: String(error) }, "consume stream failed; reconnecting");
    this.deps.invalidateMetadata();
    const delay = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.deps.clock.setTimer(delay, () => {
      if (gen === this.gen && !this.stopped) void this.connect();
    });
  }
}

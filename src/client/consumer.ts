/**
 * A member of a consumer group: `client.consumer({ group, topics })`. It is used either as an
 * async iterator (`for await (const record of consumer)`) or with a handler
 * (`await consumer.run(async (record) => ...)`), and `close()` commits and leaves the group.
 *
 * Membership. A heartbeat loop talks to the group's coordinator (groups.ts routes there): each
 * heartbeat reports the partitions this member owns and answers with what it may consume, what it
 * must give up, and what it is waiting for (protos/consumer.proto explains the protocol). A
 * partition to give up is revoked cooperatively: its stream stops, its undelivered records are
 * dropped, the record in the application's hands (if any) is waited for, its offset is committed
 * (at-least-once), and only then does the next heartbeat stop reporting it — which is what lets
 * the coordinator hand it to another member. If the coordinator cannot be reached for a session
 * timeout, the member gives up everything on its own: the coordinator has removed it by then.
 *
 * Records. Each owned partition has a feed: a flow-controlled Consume stream from the partition's
 * leader (reconnected on leader changes and failures) into a buffer. The consumer's prefetch
 * (prefetchRecords, prefetchBytes) is split evenly over its partitions; each feed grants its
 * stream credits so that buffered plus in-flight records stay within its share. Records travel as
 * the stored batches they were produced in, so the leader charges whole batches (their records
 * and their uncompressed size, at least the bytes of their records), and one batch may overshoot
 * the share (see broker/subscription.ts). Records are delivered one at a time, round-robin over
 * the partitions, in offset order within each.
 *
 * Delivery guarantees.
 *   - at-least-once (default): a record counts as processed when the handler's promise resolves,
 *     when the iterator is asked for the next record, or on `acknowledge(record)`; processed
 *     offsets are committed every autoCommitIntervalMs, on revocation and on close. After a crash
 *     (or a session expiry) the records processed since the last commit are delivered again, to
 *     this or another member. Leaving a for-await loop (break, return, throw) does not count the
 *     last record as processed unless it was acknowledged.
 *   - at-most-once: before a partition's buffered records are delivered, their end offset is
 *     committed; a crash loses what was committed but not yet processed, and nothing is delivered
 *     twice (as long as the group's members follow the protocol).
 */
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { InvalidArgumentError } from "./errors.js";
import type { GroupMethods, WireTopicPartition } from "./group-channels.js";
import { PartitionStream, type ConsumedRecord, type PartitionStreamDeps } from "./partition-stream.js";
import type { FetchedRecord } from "./records.js";
import type { RetryPolicy } from "./retry.js";

export type { ConsumedRecord } from "./partition-stream.js";

export type DeliveryGuarantee = "at-least-once" | "at-most-once";

export interface ConsumerOptions {
  /** The group: 1-249 characters of letters, digits, '.', '_' and '-'. */
  readonly group: string;
  /** Topics to consume (1 to 100). */
  readonly topics: readonly string[];
  /** Default "at-least-once". */
  readonly guarantee?: DeliveryGuarantee;
  /** Records buffered or in flight at most, over all partitions (one at least per partition). Default 500. */
  readonly prefetchRecords?: number;
  /** Bytes of record keys, bodies and headers buffered or in flight at most (see the module comment). Default 4 MiB. */
  readonly prefetchBytes?: number;
  /** The coordinator removes the member after this long without a heartbeat (1000-300000). Default 10000. */
  readonly sessionTimeoutMs?: number;
  /** at-least-once: how often processed offsets are committed. Default 1000. */
  readonly autoCommitIntervalMs?: number;
  /** Where a partition without a committed offset starts. Default "earliest". */
  readonly startFrom?: "earliest" | "latest";
  /** Shown by `raftmq group describe`. Default "raftmq-ts". */
  readonly clientId?: string;
  /** Observers of the consumer's group life (metrics, logs, tests). Called synchronously; must not throw. */
  readonly events?: ConsumerEvents;
}

/** One topic partition. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** What a consumer reports as it goes; see ConsumerOptions.events. */
export interface ConsumerEvents {
  /** Partitions granted to this member. Each one's records follow from its committed offset (or startFrom), in order. */
  assigned?(partitions: readonly TopicPartition[]): void;
  /** Partitions given up (after the last commit for them). */
  revoked?(partitions: readonly TopicPartition[]): void;
  /**
   * An offset commit: "sent" with the offsets asked for (the next offset to consume per partition),
   * then "committed" with the offsets the coordinator answered, or "failed" with the error (the
   * commit may or may not have been stored).
   */
  commit?(event: CommitEvent): void;
}

export type CommitEvent =
  | { readonly phase: "sent"; readonly id: number; readonly offsets: readonly (TopicPartition & { readonly offset: number })[] }
  | { readonly phase: "committed"; readonly id: number; readonly offsets: readonly (TopicPartition & { readonly offset: number })[] }
  | { readonly phase: "failed"; readonly id: number; readonly error: unknown };

/** What a consumer needs from its client (what its partition streams need). */
export type ConsumerDeps = PartitionStreamDeps;

const PREFETCH_RECORDS_DEFAULT = 500;
const PREFETCH_BYTES_DEFAULT = 4 * 1024 * 1024;
const SESSION_TIMEOUT_MS_DEFAULT = 10_000;
const AUTO_COMMIT_INTERVAL_MS_DEFAULT = 1_000;
/** Heartbeat delay while a hand-over is in progress. */
const FAST_HEARTBEAT_MS = 100;
/** How long an at-most-once delivery waits before retrying a failed commit. */
const COMMIT_RETRY_MS = 500;
const GROUP_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;

type FeedState = "starting" | "streaming" | "stopping" | "stopped";

/** One owned partition: its stream, buffer and positions. */
class Feed {
  state: FeedState = "starting";
  readonly buffer: ConsumedRecord[] = [];
  bufferBytes = 0;
  /** at-least-once: the offset after the last processed record (what a commit may store); -1 before the start is known. */
  processed = -1;
  /** The group's committed offset as last known (-1: none). */
  committed = -1;
  /** at-most-once: records below this were committed before delivery. */
  committedAhead = 0;
  /** The record delivered to the application and not yet processed. */
  inHands: ConsumedRecord | undefined;
  readonly handsFree = new Signal();
  /** Set once the start offset is known. */
  stream: PartitionStream | undefined;
  revoked: Promise<void> | undefined;

  constructor(readonly topic: string, readonly partition: number) {}

  get key(): string {
    return `${this.topic}/${this.partition}`;
  }
}

/** A one-shot wake-up that can be awaited with a timeout. */
class Signal {
  private waiters: (() => void)[] = [];

  notify(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  wait(clock?: Clock, timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (): void => {
        timer?.cancel();
        resolve();
      };
      this.waiters.push(done);
      if (clock !== undefined && timeoutMs !== undefined) timer = clock.setTimer(timeoutMs, done);
    });
  }
}

export class Consumer implements AsyncIterable<ConsumedRecord> {
  private readonly options: Required<ConsumerOptions>;
  private readonly feeds = new Map<string, Feed>();
  private readonly data = new Signal();
  private readonly heartbeatWake = new Signal();
  private memberIdValue = "";
  private generationValue = 0;
  private lastHeartbeatOkMs: number;
  private roundRobin = 0;
  private windowRecords = 1;
  private windowBytes = 1;
  /** No more deliveries (close() started). */
  private stopping = false;
  /** The heartbeat loop ends. */
  private stopped = false;
  private nextPending = false;
  private lastYielded: ConsumedRecord | undefined;
  private commitChain: Promise<void> = Promise.resolve();
  private commits = 0;
  private autoCommitTimer: TimerHandle | undefined;
  private readonly heartbeatLoopDone: Promise<void>;
  private closing: Promise<void> | undefined;
  private readonly log: Logger;

  /** Use `client.consumer()`. */
  constructor(private readonly deps: ConsumerDeps, options: ConsumerOptions) {
    this.options = validateOptions(options);
    this.log = deps.logger.child({ component: "consumer", group: options.group });
    this.lastHeartbeatOkMs = deps.clock.monotonicMs();
    this.heartbeatLoopDone = this.heartbeatLoop();
    if (this.options.guarantee === "at-least-once") this.scheduleAutoCommit();
  }

  /** The member id the coordinator gave this consumer ("" before the first heartbeat answer). */
  get memberId(): string {
    return this.memberIdValue;
  }

  /** The group's assignment generation as of the last heartbeat. */
  get generation(): number {
    return this.generationValue;
  }

  /** The partitions this consumer owns now (consuming or starting). */
  assignment(): { topic: string; partition: number }[] {
    return [...this.feeds.values()].filter((f) => f.state === "starting" || f.state === "streaming").map((f) => ({ topic: f.topic, partition: f.partition }));
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumedRecord> {
    return {
      next: async () => {
        if (this.lastYielded !== undefined) this.processed(this.lastYielded);
        const record = await this.nextRecord();
        this.lastYielded = record;
        return record === undefined ? { done: true, value: undefined } : { done: false, value: record };
      },
      return: async () => {
        // Leaving the loop: the last record was not necessarily processed; deliver it again.
        if (this.lastYielded !== undefined) this.putBack(this.lastYielded);
        this.lastYielded = undefined;
        return { done: true, value: undefined };
      },
    };
  }

  /** Marks a record as processed (iterator style: before leaving the loop, so it is not delivered again). */
  acknowledge(record: ConsumedRecord): void {
    if (this.lastYielded === record) this.lastYielded = undefined;
    this.processed(record);
  }

  /**
   * Runs `handler` on every record, one at a time, until close(). A record is processed when the
   * handler resolves; if it rejects, the consumer closes (the record is not committed) and run()
   * rejects with the handler's error. close() waits for the running handler: do not await close()
   * inside the handler.
   */
  async run(handler: (record: ConsumedRecord) => Promise<void>): Promise<void> {
    for (;;) {
      const record = await this.nextRecord();
      if (record === undefined) return;
      try {
        await handler(record);
      } catch (error) {
        this.putBack(record);
        await this.close();
        throw error;
      }
      this.processed(record);
    }
  }

  /** Stops delivering, waits for the record in hand, commits (at-least-once), leaves the group. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      this.data.notify();
      this.autoCommitTimer?.cancel();
      await Promise.all([...this.feeds.values()].map((f) => this.revoke(f, true)));
      this.stopped = true;
      this.heartbeatWake.notify();
      await this.heartbeatLoopDone;
      if (this.memberIdValue !== "") {
        await this.deps.groups.coordinatorCall(this.options.group, "LeaveGroup", { group: this.options.group, memberId: this.memberIdValue }, this.quickPolicy())
          .catch((e: unknown) => this.log.debug({ err: String(e) }, "leaving the group failed; the session will expire"));
      }
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ delivery

  /** The next record to deliver, or undefined once closing. */
  private async nextRecord(): Promise<ConsumedRecord | undefined> {
    if (this.nextPending) throw new InvalidArgumentError("the consumer delivers one record at a time: await each record before asking for the next");
    this.nextPending = true;
    try {
      for (;;) {
        if (this.stopping) return undefined;
        const feed = this.pickFeed();
        if (feed === undefined) {
          await this.data.wait();
          continue;
        }
        const record = feed.buffer[0]!;
        if (this.options.guarantee === "at-most-once" && record.offset >= feed.committedAhead) {
          await this.commitAhead(feed);
          continue; // the feed may have changed while committing
        }
        feed.buffer.shift();
        feed.bufferBytes -= recordBytes(record);
        feed.inHands = record;
        this.replenish(feed);
        return record;
      }
    } finally {
      this.nextPending = false;
    }
  }

  /** A streaming feed with buffered records, round-robin. */
  private pickFeed(): Feed | undefined {
    const feeds = [...this.feeds.values()];
    for (let i = 0; i < feeds.length; i++) {
      const f = feeds[(this.roundRobin + i) % feeds.length]!;
      if (f.state === "streaming" && f.buffer.length > 0 && f.inHands === undefined) {
        this.roundRobin = (this.roundRobin + i + 1) % feeds.length;
        return f;
      }
    }
    return undefined;
  }

  /** at-most-once: commits the end of the feed's buffer before any of it is delivered. */
  private async commitAhead(feed: Feed): Promise<void> {
    const upTo = feed.buffer[feed.buffer.length - 1]!.offset + 1;
    try {
      await this.commit([{ feed, offset: upTo }]);
      feed.committedAhead = Math.max(feed.committedAhead, upTo);
    } catch (e) {
      this.log.warn({ partition: feed.key, err: String(e) }, "committing before delivery failed; retrying");
      await this.data.wait(this.deps.clock, COMMIT_RETRY_MS);
    }
  }

  private processed(record: ConsumedRecord): void {
    const feed = this.feeds.get(`${record.topic}/${record.partition}`);
    if (feed === undefined || feed.inHands !== record) return;
    feed.inHands = undefined;
    feed.processed = Math.max(feed.processed, record.offset + 1);
    feed.handsFree.notify();
  }

  /** Returns an unprocessed record to the front of its buffer (it is delivered again). */
  private putBack(record: ConsumedRecord): void {
    const feed = this.feeds.get(`${record.topic}/${record.partition}`);
    if (feed === undefined || feed.inHands !== record) return;
    feed.inHands = undefined;
    if (feed.state === "streaming") {
      feed.buffer.unshift(record);
      feed.bufferBytes += recordBytes(record);
    }
    feed.handsFree.notify();
    this.data.notify();
  }

  // ------------------------------------------------------------------ membership

  private async heartbeatLoop(): Promise<void> {
    let delayMs = 0;
    while (!this.stopped) {
      if (delayMs > 0) await this.heartbeatWake.wait(this.deps.clock, delayMs);
      if (this.stopped) return;
      try {
        delayMs = await this.heartbeat();
      } catch (e) {
        if (this.stopped) return;
        this.log.debug({ err: String(e) }, "heartbeat failed");
        if (this.deps.clock.monotonicMs() - this.lastHeartbeatOkMs > this.options.sessionTimeoutMs) this.loseSession();
        delayMs = Math.min(1_000, Math.floor(this.options.sessionTimeoutMs / 6));
      }
    }
  }

  /** One heartbeat; applies the answer and returns the delay until the next one. */
  private async heartbeat(): Promise<number> {
    const owned: WireTopicPartition[] = [...this.feeds.values()].filter((f) => f.state !== "stopped").map((f) => ({ topic: f.topic, partition: f.partition }));
    const r = await this.deps.groups.coordinatorCall(this.options.group, "Heartbeat", {
      group: this.options.group,
      memberId: this.memberIdValue,
      clientId: this.options.clientId,
      topics: [...this.options.topics],
      owned,
      sessionTimeoutMs: this.options.sessionTimeoutMs,
    }, this.quickPolicy());
    if (this.stopped) return 0;
    this.lastHeartbeatOkMs = this.deps.clock.monotonicMs();
    this.memberIdValue = r.memberId;
    this.generationValue = r.generation;
    const assigned = new Set(r.assigned.map((tp) => `${tp.topic}/${tp.partition}`));
    const revoke = new Set(r.revoke.map((tp) => `${tp.topic}/${tp.partition}`));
    for (const f of this.feeds.values()) {
      // Revoked, or no longer counted as ours (our session ended meanwhile): give it up.
      if (revoke.has(f.key) || (!assigned.has(f.key) && (f.state === "starting" || f.state === "streaming"))) void this.revoke(f, true);
    }
    const fresh = this.stopping ? [] : r.assigned.filter((tp) => !this.feeds.has(`${tp.topic}/${tp.partition}`));
    if (fresh.length > 0) void this.startFeeds(fresh);
    this.resizeWindows();
    const handingOver = r.pending.length > 0 || [...this.feeds.values()].some((f) => f.state === "stopping");
    return handingOver ? FAST_HEARTBEAT_MS : r.heartbeatIntervalMs;
  }

  /** The coordinator has removed this member by now: stop consuming everything. */
  private loseSession(): void {
    if (this.feeds.size === 0) return;
    this.log.warn({ sessionTimeoutMs: this.options.sessionTimeoutMs }, "no heartbeat reached the coordinator for a session timeout; giving up every partition");
    for (const f of this.feeds.values()) void this.revoke(f, true);
  }

  /**
   * Gives a partition up: stop its stream, drop what was not delivered, wait for the record in
   * hand, commit what was processed (at-least-once), forget it, and heartbeat (the acknowledgement).
   */
  private revoke(feed: Feed, commit: boolean): Promise<void> {
    feed.revoked ??= (async () => {
      feed.state = "stopping";
      feed.stream?.stop();
      feed.buffer.length = 0;
      feed.bufferBytes = 0;
      while (feed.inHands !== undefined) await feed.handsFree.wait();
      if (commit && this.options.guarantee === "at-least-once" && feed.processed >= 0 && feed.processed > feed.committed) {
        // Worth trying for a whole session: the partition stays ours (heartbeats go on) until then.
        await this.commit([{ feed, offset: feed.processed }], this.revocationPolicy()).catch((e: unknown) =>
          this.log.warn({ partition: feed.key, err: String(e) }, "committing a revoked partition failed; its last records will be delivered again"),
        );
      }
      feed.state = "stopped";
      this.options.events.revoked?.([{ topic: feed.topic, partition: feed.partition }]);
      if (this.feeds.get(feed.key) === feed) this.feeds.delete(feed.key);
      this.resizeWindows();
      this.heartbeatWake.notify();
    })();
    return feed.revoked;
  }

  /** Starts feeds for newly granted partitions: committed offset (or startFrom), then a stream each. */
  private async startFeeds(tps: readonly WireTopicPartition[]): Promise<void> {
    const created = tps.map((tp) => new Feed(tp.topic, tp.partition));
    for (const f of created) this.feeds.set(f.key, f);
    this.options.events.assigned?.(created.map((f) => ({ topic: f.topic, partition: f.partition })));
    try {
      const topics = [...new Set(created.map((f) => f.topic))];
      const { offsets } = await this.deps.groups.coordinatorCall(this.options.group, "FetchOffsets", { group: this.options.group, topics });
      for (const f of created) {
        if (f.state !== "starting") continue;
        const committed = offsets.find((o) => o.topic === f.topic && o.partition === f.partition)?.offset ?? -1;
        const start = committed >= 0 ? committed : await this.startOffset(f);
        if (f.state !== "starting") continue;
        f.committed = committed;
        f.processed = f.committedAhead = start;
        f.state = "streaming";
        f.stream = new PartitionStream(this.deps, f.topic, f.partition, start, {
          initialCredit: () => ({ records: this.windowRecords - f.buffer.length, bytes: this.windowBytes - f.bufferBytes }),
          onRecords: (records) => this.onRecords(f, records),
          onSkip: (_from, to) => {
            f.processed = Math.max(f.processed, to);
            f.committedAhead = Math.max(f.committedAhead, to);
          },
        });
        f.stream.start();
      }
    } catch (e) {
      this.log.warn({ err: String(e) }, "could not start consuming granted partitions; giving them back");
      for (const f of created) if (f.state === "starting") void this.revoke(f, false);
    }
  }

  private async startOffset(f: Feed): Promise<number> {
    const at = await this.deps.groups.partitionOffsetsAt(f.topic, f.partition);
    return this.options.startFrom === "latest" ? at.highWatermark : at.logStartOffset;
  }

  private resizeWindows(): void {
    const n = Math.max(1, [...this.feeds.values()].filter((f) => f.state === "starting" || f.state === "streaming").length);
    this.windowRecords = Math.max(1, Math.floor(this.options.prefetchRecords / n));
    this.windowBytes = Math.max(1, Math.floor(this.options.prefetchBytes / n));
    for (const f of this.feeds.values()) this.replenish(f);
  }

  // ------------------------------------------------------------------ streams

  private onRecords(feed: Feed, records: readonly ConsumedRecord[]): void {
    if (feed.state !== "streaming") return;
    for (const record of records) {
      feed.buffer.push(record);
      feed.bufferBytes += recordBytes(record);
    }
    if (records.length > 0) this.data.notify();
    // Expired records and a batch's uncompressed framing use credit without filling the buffer.
    this.replenish(feed);
  }

  /** Grants the stream what the feed's share of the prefetch allows, once half of it is free. */
  private replenish(feed: Feed): void {
    const stream = feed.stream;
    if (stream === undefined || !stream.open || feed.state !== "streaming") return;
    const records = this.windowRecords - feed.buffer.length - stream.inflightRecords;
    const bytes = this.windowBytes - feed.bufferBytes - stream.inflightBytes;
    if (records < Math.max(1, this.windowRecords / 2) && bytes < this.windowBytes / 2) return;
    stream.credit(records, bytes);
  }

  // ------------------------------------------------------------------ offset commits

  /** Commits offsets, one request at a time; updates each feed's committed offset. */
  private commit(items: readonly { feed: Feed; offset: number }[], policy = this.quickPolicy()): Promise<void> {
    const run = this.commitChain.then(async () => {
      const todo = items.filter((x) => x.offset > x.feed.committed);
      if (todo.length === 0) return;
      const offsets = todo.map((x) => ({ topic: x.feed.topic, partition: x.feed.partition, offset: x.offset }));
      const id = ++this.commits;
      this.options.events.commit?.({ phase: "sent", id, offsets });
      let r: GroupMethods["CommitOffsets"]["response"];
      try {
        r = await this.deps.groups.coordinatorCall(this.options.group, "CommitOffsets", { group: this.options.group, memberId: this.memberIdValue, offsets }, policy);
      } catch (error) {
        this.options.events.commit?.({ phase: "failed", id, error });
        throw error;
      }
      this.options.events.commit?.({ phase: "committed", id, offsets: r.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: Number(o.offset) })) });
      for (const x of todo) {
        const o = r.offsets.find((y) => y.topic === x.feed.topic && y.partition === x.feed.partition);
        if (o !== undefined) x.feed.committed = Math.max(x.feed.committed, o.offset);
      }
    });
    this.commitChain = run.catch(() => {});
    return run;
  }

  private scheduleAutoCommit(): void {
    this.autoCommitTimer = this.deps.clock.setTimer(this.options.autoCommitIntervalMs, () => {
      if (this.stopping) return;
      const items = [...this.feeds.values()].filter((f) => f.state === "streaming" && f.processed >= 0 && f.processed > f.committed).map((feed) => ({ feed, offset: feed.processed }));
      this.commit(items)
        .catch((e: unknown) => this.log.debug({ err: String(e) }, "periodic offset commit failed; retrying at the next one"))
        .finally(() => {
          if (!this.stopping) this.scheduleAutoCommit();
        });
    });
  }

  /** Retries of a revoked partition's final commit: up to a session timeout. */
  private revocationPolicy(): RetryPolicy {
    return { attemptsMax: 50, backoffInitialMs: 50, backoffMaxMs: 500, deadlineMs: this.options.sessionTimeoutMs };
  }

  /** Retries for membership calls: short, since the loops around them retry anyway. */
  private quickPolicy(): RetryPolicy {
    return { attemptsMax: 5, backoffInitialMs: 50, backoffMaxMs: 250, deadlineMs: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 3)) };
  }
}

/** A record's size for flow control: key, body, header names and values (as the broker counts it). */
function recordBytes(r: FetchedRecord): number {
  let n = (r.key?.byteLength ?? 0) + r.body.byteLength;
  for (const h of r.headers) n += Buffer.byteLength(h.key, "utf8") + h.value.byteLength;
  return n;
}

function validateOptions(o: ConsumerOptions): Required<ConsumerOptions> {
  if (typeof o.group !== "string" || !GROUP_NAME_PATTERN.test(o.group)) {
    throw new InvalidArgumentError(`group ${JSON.stringify(o.group)} is not valid: use 1-249 characters of letters, digits, '.', '_' and '-'`);
  }
  if (!Array.isArray(o.topics) || o.topics.length === 0 || o.topics.length > 100) throw new InvalidArgumentError("topics must name 1 to 100 topics");
  const guarantee = o.guarantee ?? "at-least-once";
  if (guarantee !== "at-least-once" && guarantee !== "at-most-once") throw new InvalidArgumentError(`guarantee must be "at-least-once" or "at-most-once", got ${JSON.stringify(guarantee)}`);
  const out: Required<ConsumerOptions> = {
    group: o.group,
    topics: [...new Set(o.topics)],
    guarantee,
    prefetchRecords: o.prefetchRecords ?? PREFETCH_RECORDS_DEFAULT,
    prefetchBytes: o.prefetchBytes ?? PREFETCH_BYTES_DEFAULT,
    sessionTimeoutMs: o.sessionTimeoutMs ?? SESSION_TIMEOUT_MS_DEFAULT,
    autoCommitIntervalMs: o.autoCommitIntervalMs ?? AUTO_COMMIT_INTERVAL_MS_DEFAULT,
    startFrom: o.startFrom ?? "earliest",
    clientId: o.clientId ?? "raftmq-ts",
    events: o.events ?? {},
  };
  const intIn = (name: keyof ConsumerOptions, v: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  };
  intIn("prefetchRecords", out.prefetchRecords, 1, 1_000_000);
  intIn("prefetchBytes", out.prefetchBytes, 1, 1024 * 1024 * 1024);
  intIn("sessionTimeoutMs", out.sessionTimeoutMs, 1_000, 300_000);
  intIn("autoCommitIntervalMs", out.autoCommitIntervalMs, 10, 3_600_000);
  if (out.startFrom !== "earliest" && out.startFrom !== "latest") throw new InvalidArgumentError(`startFrom must be "earliest" or "latest", got ${JSON.stringify(out.startFrom)}`);
  return out;
}

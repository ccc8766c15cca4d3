/**
 * The workload of a chaos run, through the real TypeScript client with its retries: producers
 * (idempotent and plain) sending at a steady total rate, consumers of one group committing
 * offsets at-least-once, and two samplers (partition leaders seen by a quorum of nodes, and the
 * group's committed offsets). Every operation goes into the history (history.ts); the checker
 * decides afterwards what it means.
 *
 * Each producer and consumer has its own client (its own channels, metadata cache and retries),
 * like separate applications. Records carry a unique id (`<process>-<seq>`) and one of a few keys,
 * so that per-key order can be checked.
 */
import { connect, OverloadedError, InvalidArgumentError, RecordTooLargeError, type Consumer, type Producer, type RaftmqClient } from "../../src/client/index.js";
import type { Random } from "../../src/lib/random.js";
import type { HistoryWriter } from "./history.js";

export interface WorkloadOptions {
  readonly brokers: () => readonly string[];
  readonly topic: string;
  readonly partitions: number;
  readonly group: string;
  readonly history: HistoryWriter;
  readonly random: Random;
  /** Records per second over all producers. */
  readonly rate: number;
  readonly idempotentProducers: number;
  readonly plainProducers: number;
  readonly consumers: number;
  /** Distinct keys (per-key order is checked for idempotent producers). */
  readonly keys: number;
  readonly bodyBytes: number;
  /** Records a producer keeps unanswered at most; beyond it, its ticks send nothing. */
  readonly inFlightMax: number;
}

/** Errors the producer raises before sending anything: the record was certainly not written. */
function certainlyNotWritten(error: unknown): boolean {
  return error instanceof OverloadedError || error instanceof InvalidArgumentError || error instanceof RecordTooLargeError;
}

const TICK_MS = 10;
const SAMPLE_LEADERS_MS = 250;
const SAMPLE_COMMITTED_MS = 1_000;
const SAMPLE_CALL_TIMEOUT_MS = 400;

class ProducerProcess {
  private readonly client: RaftmqClient;
  private readonly producer: Producer;
  private seq = 0;
  private credit = 0;
  private readonly pending = new Set<Promise<void>>();
  acknowledged = 0;

  constructor(private readonly w: WorkloadOptions, readonly name: string, readonly idempotent: boolean, private readonly ratePerSec: number) {
    this.client = connect({ brokers: [...w.brokers()], produceTimeoutMs: 5_000 });
    this.producer = this.client.producer({ idempotence: idempotent, lingerMs: 2, producerName: name });
  }

  /** Sends what this tick's share of the rate allows. */
  tick(): void {
    this.credit += (this.ratePerSec * TICK_MS) / 1000;
    while (this.credit >= 1 && this.pending.size < this.w.inFlightMax) {
      this.credit -= 1;
      this.sendOne();
    }
    if (this.credit > 1) this.credit = 1; // no burst after a stall
  }

  private sendOne(): void {
    const seq = this.seq++;
    const id = `${this.name}-${seq}`;
    const key = `k${this.w.random.int(this.w.keys)}`;
    const done = this.w.history.invoke({ process: this.name, op: "produce", topic: this.w.topic, id, key, seq, idempotent: this.idempotent });
    const p = this.producer.send(this.w.topic, { key, id, body: Buffer.alloc(this.w.bodyBytes, seq % 251) }).then(
      (r) => {
        this.acknowledged++;
        done("ok", { partition: r.partition, offset: r.offset });
      },
      (e: unknown) => {
        done(certainlyNotWritten(e) ? "fail" : "info", { error: errorText(e) });
      },
    );
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Waits for every send to settle (the client's retries are bounded), then closes. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.producer.close().catch(() => {});
    await this.client.close();
  }
}

class ConsumerProcess {
  private readonly client: RaftmqClient;
  private consumer: Consumer | undefined;
  private loop: Promise<void> | undefined;
  private sessions = 0;
  private session = "";
  delivered = 0;

  constructor(private readonly w: WorkloadOptions, readonly name: string) {
    this.client = connect({ brokers: [...w.brokers()] });
  }

  /** Starts a new consumer session (a new member of the group). */
  start(): void {
    this.session = `${this.name}#${++this.sessions}`;
    const session = this.session;
    const h = this.w.history;
    const commits = new Map<number, (type: "ok" | "fail" | "info", extra?: object) => void>();
    const consumer = this.client.consumer({
      group: this.w.group,
      topics: [this.w.topic],
      sessionTimeoutMs: 3_000,
      autoCommitIntervalMs: 500,
      clientId: session,
      events: {
        assigned: (tps) => h.record({ type: "ok", process: this.name, op: "assign", group: this.w.group, session, topic: this.w.topic, partitions: tps.map((tp) => tp.partition) }),
        commit: (e) => {
          if (e.phase === "sent") {
            for (const o of e.offsets) {
              commits.set(e.id * 1_000_000 + o.partition, h.invoke({ process: this.name, op: "commit", group: this.w.group, session, topic: o.topic, partition: o.partition, offset: o.offset }));
            }
            return;
          }
          for (const [k, done] of commits) {
            if (Math.floor(k / 1_000_000) !== e.id) continue;
            commits.delete(k);
            if (e.phase === "committed") done("ok");
            else done("info", { error: errorText(e.error) });
          }
        },
      },
    });
    this.consumer = consumer;
    this.loop = (async () => {
      for await (const r of consumer) {
        this.delivered++;
        h.record({ type: "ok", process: this.name, op: "deliver", group: this.w.group, session, topic: r.topic, partition: r.partition, offset: r.offset, id: r.id, key: r.key?.toString() ?? "" });
      }
    })().catch((e: unknown) => {
      h.record({ type: "info", process: this.name, op: "deliver", group: this.w.group, session, error: `consumer loop ended: ${errorText(e)}` });
    });
  }

  /** Closes the session (commits what was handled, leaves the group). */
  async stopSession(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    if (c === undefined) return;
    await c.close().catch(() => {});
    await this.loop;
  }

  async stop(): Promise<void> {
    await this.stopSession();
    await this.client.close();
  }
}

/** Producers, consumers and samplers; see the file comment. */
export class Workload {
  private readonly producers: ProducerProcess[] = [];
  private readonly consumers: ConsumerProcess[] = [];
  private readonly sampler: RaftmqClient;
  private timers: NodeJS.Timeout[] = [];
  private sampling = false;
  private leaders = new Map<number, number>();

  constructor(private readonly w: WorkloadOptions) {
    const n = w.idempotentProducers + w.plainProducers;
    for (let i = 0; i < n; i++) this.producers.push(new ProducerProcess(w, `producer-${i + 1}`, i < w.idempotentProducers, w.rate / n));
    for (let i = 0; i < w.consumers; i++) this.consumers.push(new ConsumerProcess(w, `consumer-${i + 1}`));
    this.sampler = connect({ brokers: [...w.brokers()] });
  }

  /** Partition → leader recognised by a majority at the last sample (0: none). */
  latestLeaders(): ReadonlyMap<number, number> {
    return this.leaders;
  }

  get acknowledged(): number {
    return this.producers.reduce((a, p) => a + p.acknowledged, 0);
  }

  get delivered(): number {
    return this.consumers.reduce((a, c) => a + c.delivered, 0);
  }

  start(): void {
    for (const c of this.consumers) c.start();
    this.timers.push(setInterval(() => this.producers.forEach((p) => p.tick()), TICK_MS));
    this.sampling = true;
    void this.sampleLeadersLoop();
    void this.sampleCommittedLoop();
  }

  /** Restarts consumer `i`'s session (a consumer crash and restart, seen by the group as leave + join). */
  async restartConsumer(i: number): Promise<void> {
    const c = this.consumers[i % this.consumers.length]!;
    await c.stopSession();
    c.start();
  }

  /** Stops sending and waits until every send settled. */
  async stopProducing(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.all(this.producers.map((p) => p.stop()));
  }

  /**
   * Waits until the group's committed offsets reach `ends` (partition → end offset) or `timeoutMs`
   * passes; true when they did.
   */
  async awaitConsumersCaughtUp(ends: ReadonlyMap<number, number>, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const offsets = await this.sampler.groupOffsets(this.w.group, [this.w.topic]);
        const at = new Map(offsets.map((o) => [o.partition, Number(o.offset)]));
        if ([...ends].every(([p, end]) => (at.get(p) ?? -1) >= end || (end === 0 && (at.get(p) ?? -1) <= 0))) return true;
      } catch {
        // The coordinator may be moving; try again.
      }
      await sleep(250);
    }
    return false;
  }

  /** Closes every consumer (their last commits included) and stops sampling. */
  async stopConsumers(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.stop()));
    this.sampling = false;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.sampling = false;
    await this.sampler.close();
  }

  /**
   * Every SAMPLE_LEADERS_MS: asks each node for its view of the topic and records, per partition,
   * the leader that a majority of the nodes recognise and that answers as leader itself (0 when
   * there is none). A paused or dead node does not answer and so counts against the majority.
   * Brokers are in node id order (node k answers at brokers()[k-1]).
   */
  private async sampleLeadersLoop(): Promise<void> {
    const brokers = this.w.brokers();
    const majority = Math.floor(brokers.length / 2) + 1;
    while (this.sampling) {
      const views = await Promise.all(brokers.map((b) => this.sampler.metadataFrom(b, { timeoutMs: SAMPLE_CALL_TIMEOUT_MS, topics: [this.w.topic] }).catch(() => undefined)));
      const leaders: Record<string, number> = {};
      for (let p = 0; p < this.w.partitions; p++) {
        const seen = views.map((v) => v?.topics.find((t) => t.name === this.w.topic)?.partitions.find((x) => x.partition === p)?.leader ?? 0);
        const votes = new Map<number, number>();
        for (const l of seen) if (l > 0) votes.set(l, (votes.get(l) ?? 0) + 1);
        const recognised = [...votes].find(([, n]) => n >= majority)?.[0] ?? 0;
        // Only a leader that answers as leader itself serves (a paused or dead one does not).
        leaders[String(p)] = recognised > 0 && seen[recognised - 1] === recognised ? recognised : 0;
      }
      this.leaders = new Map(Object.entries(leaders).map(([p, l]) => [Number(p), l]));
      if (this.sampling) this.w.history.record({ type: "ok", process: "harness", op: "leaders", topic: this.w.topic, leaders });
      await sleep(SAMPLE_LEADERS_MS);
    }
  }

  /** Every SAMPLE_COMMITTED_MS: reads the group's committed offsets (an operation that may fail). */
  private async sampleCommittedLoop(): Promise<void> {
    while (this.sampling) {
      const done = this.w.history.invoke({ process: "committed-reader", op: "read-committed", group: this.w.group, topic: this.w.topic });
      try {
        const offsets = await this.sampler.groupOffsets(this.w.group, [this.w.topic]);
        done("ok", { offsets: Object.fromEntries(offsets.filter((o) => o.topic === this.w.topic).map((o) => [String(o.partition), Number(o.offset)])) });
      } catch (e) {
        done("info", { error: errorText(e) });
      }
      await sleep(SAMPLE_COMMITTED_MS);
    }
  }
}

/**
 * The final drain: reads every partition of `topic` from its log start to its end through the
 * partition leaders, recording each record and each partition's end. Bounded in time; returns the
 * end offsets.
 */
export async function drain(client: RaftmqClient, topic: string, partitions: number, history: HistoryWriter, timeoutMs: number): Promise<Map<number, number>> {
  const deadline = Date.now() + timeoutMs;
  const ends = new Map<number, number>();
  for (let p = 0; p < partitions; p++) {
    const { logStartOffset, highWatermark } = await retryUntil(deadline, () => client.partitionOffsets(topic, p));
    let offset = logStartOffset;
    while (offset < highWatermark) {
      const r = await retryUntil(deadline, () => client.fetch(topic, p, offset, { maxBytes: 1 << 20, maxWaitMs: 0 }));
      if (r.records.length === 0) {
        if (r.nextOffset <= offset) throw new Error(`drain of ${topic}/${p}: no record at offset ${offset} below the end ${highWatermark}`);
        offset = r.nextOffset;
        continue;
      }
      for (const rec of r.records) {
        if (rec.offset >= highWatermark) break;
        history.record({ type: "ok", process: "drain", op: "drain", topic, partition: p, offset: rec.offset, id: rec.id, key: rec.key?.toString() ?? "" });
        offset = rec.offset + 1;
      }
    }
    history.record({ type: "ok", process: "drain", op: "drain-end", topic, partition: p, offset: highWatermark });
    ends.set(p, highWatermark);
  }
  return ends;
}

async function retryUntil<T>(deadline: number, f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`gave up after ${attempt} attempts: ${errorText(e)}`);
      await sleep(Math.min(1_000, 50 * attempt));
    }
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

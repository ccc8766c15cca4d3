/**
 * The simulated network: every message in flight is a timer on the virtual clock with its own
 * delivery time, so messages on one link can overtake each other (Raft assumes nothing about
 * ordering). Faults:
 *
 *  - weather: per-message probabilities of loss, duplication and extra delay at send time;
 *  - explicit strikes on what is in flight now: drop, duplicate or delay a random fraction, or
 *    shuffle the delivery times of everything in flight (reordering). A strike draws its choices
 *    from a generator the caller passes (seeded by the schedule step), not from the network's;
 *  - partitions (see partition.ts), checked at delivery time, so a partition also catches the
 *    messages already on the wire. They stack until {@link Network.heal}.
 *
 * Besides Raft messages, the network carries the hosts' node keep-alives (quiescence; see
 * node.ts): after the usual latency, unless the weather drops them or a partition blocks them.
 * Strikes do not touch them, and they are not traced (they would flood the trace).
 *
 * Latencies and weather come from the network's own forked stream.
 */
import type { NodeId } from "../../src/lib/ids.js";
import type { Random } from "../../src/lib/random.js";
import type { Message, MessageType } from "../../src/raft/index.js";
import type { Coverage } from "./coverage.js";
import type { EventQueue, Timer } from "./event-queue.js";
import { describePartition, linkKey, type Partition } from "./partition.js";
import { EventCode, type Trace } from "./trace.js";

/** Per-message fault probabilities applied at send time. */
export interface Weather {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayRate: number;
  /** Upper bound of the extra delay of a delayed message. */
  readonly delayMaxMs: number;
}

/** No faults: every message arrives once, after the base latency. */
export const CALM: Weather = { dropRate: 0, duplicateRate: 0, delayRate: 0, delayMaxMs: 0 };

/** Why a message did not arrive. */
export type LossReason = "weather" | "strike" | "partition" | "down";

/** What the network needs from the cluster. */
export interface NetworkHooks {
  /** Hands `m` to its destination; false if the destination is down or unknown. */
  deliver(m: Message): boolean;
  /** `m` was lost to a partition or a down destination: the sender's transport would notice. */
  undeliverable(m: Message, reason: LossReason): void;
  /** A keep-alive from `from` reached `to`. */
  keepAlive(from: NodeId, to: NodeId): void;
}

/** Latency of a healthy network. */
export interface NetworkOptions {
  /** Base one-way latency, drawn uniformly from [minLatencyMs, maxLatencyMs] per message. */
  readonly minLatencyMs: number;
  readonly maxLatencyMs: number;
}

interface Flight {
  readonly m: Message;
  timer: Timer;
}

const TYPE_CODES: Record<MessageType, number> = {
  app: 1,
  appResp: 2,
  vote: 3,
  voteResp: 4,
  preVote: 5,
  preVoteResp: 6,
  snap: 7,
  heartbeat: 8,
  heartbeatResp: 9,
  timeoutNow: 10,
  readIndex: 11,
  readIndexResp: 12,
};

/** The simulated network of one cluster; see the module comment for its faults. */
export class Network {
  private weather: Weather = CALM;
  private blocked = new Set<number>();
  private readonly inFlight = new Set<Flight>();
  /** Messages ever handed to the network. */
  sent = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: Random,
    private readonly trace: Trace,
    private readonly coverage: Coverage,
    private readonly hooks: NetworkHooks,
    private readonly opts: NetworkOptions,
  ) {}

  /** Number of messages in flight. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Accepts a message from a node; the weather decides its fate. */
  send(m: Message): void {
    this.sent++;
    const w = this.weather;
    if (w.dropRate > 0 && this.random.chance(w.dropRate)) {
      this.lose(m, "weather");
      return;
    }
    let delay = this.latency();
    if (w.delayRate > 0 && this.random.chance(w.delayRate)) {
      delay += this.random.intBetween(1, Math.max(1, w.delayMaxMs));
      this.coverage.messageDelayed++;
    }
    this.schedule(m, delay);
    if (w.duplicateRate > 0 && this.random.chance(w.duplicateRate)) {
      this.schedule(m, this.latency() + this.random.int(Math.max(1, w.delayMaxMs)));
      this.coverage.messageDuplicated++;
    }
  }

  /** Sends a node keep-alive (see the module comment). */
  sendKeepAlive(from: NodeId, to: NodeId): void {
    if (this.weather.dropRate > 0 && this.random.chance(this.weather.dropRate)) return;
    this.queue.after(this.latency(), () => {
      if (!this.isBlocked(from, to)) this.hooks.keepAlive(from, to);
    });
  }

  /** Drops each in-flight message with probability `fraction` (choices drawn from `rnd`). Returns how many were dropped. */
  dropSome(fraction: number, rnd: Random): number {
    let n = 0;
    for (const f of [...this.inFlight]) {
      if (!rnd.chance(fraction)) continue;
      f.timer.cancelled = true;
      this.inFlight.delete(f);
      this.lose(f.m, "strike");
      n++;
    }
    return n;
  }

  /** Duplicates each in-flight message with probability `fraction`; the copy arrives up to 25 ms later. */
  duplicateSome(fraction: number, rnd: Random): number {
    let n = 0;
    for (const f of [...this.inFlight]) {
      if (!rnd.chance(fraction)) continue;
      this.schedule(f.m, rnd.intBetween(this.opts.minLatencyMs, this.opts.maxLatencyMs) + rnd.int(20));
      this.traceFault(EventCode.duplicate, f.m);
      this.coverage.messageDuplicated++;
      n++;
    }
    return n;
  }

  /** Postpones each in-flight message with probability `fraction` by up to `maxExtraMs`. */
  delaySome(fraction: number, maxExtraMs: number, rnd: Random): number {
    let n = 0;
    for (const f of [...this.inFlight]) {
      if (!rnd.chance(fraction)) continue;
      const time = f.timer.time + rnd.intBetween(1, Math.max(1, maxExtraMs));
      f.timer.cancelled = true;
      f.timer = this.queue.at(time, () => this.arrive(f));
      this.traceFault(EventCode.delay, f.m);
      this.coverage.messageDelayed++;
      n++;
    }
    return n;
  }

  /** Shuffles the delivery times among all messages in flight. Returns how many were in flight. */
  reorder(rnd: Random): number {
    const flights = [...this.inFlight];
    const times = flights.map((f) => f.timer.time);
    for (let i = times.length - 1; i > 0; i--) {
      const j = rnd.int(i + 1);
      [times[i], times[j]] = [times[j]!, times[i]!];
    }
    flights.forEach((f, i) => {
      f.timer.cancelled = true;
      f.timer = this.queue.at(Math.max(times[i]!, this.queue.now), () => this.arrive(f));
    });
    if (flights.length > 1) this.coverage.messagesReordered++;
    this.trace.event(this.queue.now, 0, EventCode.reorder, flights.length, 0, 0, 0, () => `${flights.length} messages in flight`);
    return flights.length;
  }

  /** Adds a partition's blocked links to those already in force. */
  partition(p: Partition): void {
    for (const k of p.blocked) this.blocked.add(k);
    const code = p.shape === "symmetric" ? 1 : p.shape === "oneWay" ? 2 : 3;
    this.trace.event(this.queue.now, 0, EventCode.partition, code, p.sideA.length, p.sideB.length, p.bridge ?? 0, () => describePartition(p));
  }

  /** Sets the per-message fault probabilities. */
  setWeather(w: Weather): void {
    this.weather = w;
    const pct = (x: number): number => Math.round(x * 100);
    this.trace.event(this.queue.now, 0, EventCode.weather, pct(w.dropRate), pct(w.duplicateRate), pct(w.delayRate), w.delayMaxMs, () =>
      `drop ${pct(w.dropRate)}% dup ${pct(w.duplicateRate)}% delay ${pct(w.delayRate)}% up to ${w.delayMaxMs}ms`,
    );
  }

  /** Removes every partition and calms the weather. Messages in flight keep their delivery times. */
  heal(): void {
    this.blocked.clear();
    this.weather = CALM;
    this.trace.event(this.queue.now, 0, EventCode.heal, 0, 0, 0, 0, "");
  }

  /** Whether messages from → to are currently blocked. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(linkKey(from, to));
  }

  private latency(): number {
    return this.random.intBetween(this.opts.minLatencyMs, this.opts.maxLatencyMs);
  }

  private schedule(m: Message, delayMs: number): void {
    const f: Flight = { m, timer: undefined as unknown as Timer };
    f.timer = this.queue.after(delayMs, () => this.arrive(f));
    this.inFlight.add(f);
  }

  private arrive(f: Flight): void {
    this.inFlight.delete(f);
    const m = f.m;
    if (this.isBlocked(m.from, m.to)) {
      this.coverage.messageBlockedByPartition++;
      this.lose(m, "partition");
      return;
    }
    this.trace.event(this.queue.now, m.to, EventCode.deliver, TYPE_CODES[m.type], m.from, m.term, m.index, () => describeMessage(m));
    if (!this.hooks.deliver(m)) this.lose(m, "down");
  }

  private lose(m: Message, reason: LossReason): void {
    if (reason === "weather" || reason === "strike") this.coverage.messageDropped++;
    const r = reason === "weather" ? 1 : reason === "strike" ? 2 : reason === "partition" ? 3 : 4;
    this.trace.event(this.queue.now, m.to, EventCode.drop, TYPE_CODES[m.type], m.from, m.term, r, () => `(${reason}) ${describeMessage(m)}`);
    if (reason === "partition" || reason === "down") this.hooks.undeliverable(m, reason);
  }

  private traceFault(code: EventCode, m: Message): void {
    this.trace.event(this.queue.now, m.to, code, TYPE_CODES[m.type], m.from, m.term, m.index, () => describeMessage(m));
  }
}

/** `app 1→2 t3 i5/t2 +2 c4`: type, link, term, then the type's interesting fields. */
export function describeMessage(m: Message): string {
  let s = `${m.type} ${m.from}→${m.to} t${m.term}`;
  switch (m.type) {
    case "app":
      s += ` i${m.index}/t${m.logTerm} +${m.entries.length} c${m.commit}`;
      break;
    case "appResp":
      s += m.reject ? ` reject i${m.index} hint ${m.rejectHint}/t${m.logTerm}` : ` i${m.index}`;
      break;
    case "vote":
    case "preVote":
      s += ` last ${m.index}/t${m.logTerm}${m.context === "" ? "" : ` (${m.context})`}`;
      break;
    case "voteResp":
    case "preVoteResp":
      s += m.reject ? " reject" : " grant";
      break;
    case "snap":
      s += ` snap ${m.snapshot?.metadata.index}/t${m.snapshot?.metadata.term}`;
      break;
    case "heartbeat":
      s += ` c${m.commit}${m.context === "" ? "" : ` ctx ${m.context}`}`;
      break;
    case "heartbeatResp":
    case "readIndex":
      s += m.context === "" ? "" : ` ctx ${m.context}`;
      break;
    case "readIndexResp":
      s += ` i${m.index} ctx ${m.context}`;
      break;
    case "timeoutNow":
      break;
  }
  return s;
}

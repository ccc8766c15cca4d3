/**
 * The checker of real-process chaos runs: reads a history (history.ts, documented in
 * chaos-tests/README.md, "History format" and "Checker") and says what the broker got wrong.
 *
 * It works like Jepsen's queue checkers, after the run and from the outside: the workload wrote
 * down what it asked for and what it was told, the consumers what they were handed, and a final
 * drain read every partition from the start. The drain is the truth about what the log holds; each
 * anomaly compares one side of the history against it or against itself:
 *
 *  - records: an acknowledged record must be in the log (lost), once (duplicated, a violation for
 *    idempotent producers only), at the offset it was acknowledged at and alone at that position
 *    (inconsistentOffsets); a record that certainly failed must not be read (abortedReads); and
 *    nothing may be read that nobody produced (unexpected).
 *  - consumers: each group is handed every record of its topics (unseen), in offset order without
 *    gaps between assignments (nonMonotonic, skipped); committed offsets never go back once seen
 *    (commitRegressions) and never pass the end of the log (commitBeyondEnd).
 *  - producers: an idempotent producer's records of one key land in send order (reordered).
 *  - the log: the drain reads a contiguous range up to the end it reports (drainGaps).
 *  - availability: after the last fault is healed, every partition finds a leader within a limit
 *    (leaderlessAfterHeal).
 *
 * One pass builds indexes (Maps keyed by id, position, partition, session); each anomaly is then
 * a linear walk over one index, or a sort and a sweep (offset commits). Histories reach ~500k
 * events, so nothing compares all pairs. Every violation keeps its full count and at most five
 * examples written with the notation of the history (`"id"`, `topic/partition@offset`), so that a
 * human can grep the JSON lines for them.
 *
 * The history is trusted to list each process's events in the order that process performed them
 * (one writer appends them as they happen). Across processes only `mono` is compared.
 */
import type { HistoryEvent, Op } from "./history.js";

/** Options of checkHistory. */
export interface CheckOptions {
  /** A partition leaderless for longer than this after the last fault event is a violation. */
  readonly leaderlessAfterHealLimitMs?: number;
}

/** The kinds of violation, as named in CheckResult.violations. */
export type ViolationKind =
  | "lost"
  | "unseen"
  | "duplicated"
  | "inconsistentOffsets"
  | "abortedReads"
  | "unexpected"
  | "nonMonotonic"
  | "skipped"
  | "reordered"
  | "commitRegressions"
  | "commitBeyondEnd"
  | "drainGaps"
  | "leaderlessAfterHeal"
  | "malformed";

/** One kind of anomaly found: its full count and at most five examples to grep for. */
export interface Violation {
  readonly kind: ViolationKind;
  readonly count: number;
  readonly examples: readonly string[];
}

/** How many operations of each kind the history holds. */
export interface OperationCounts {
  readonly events: number;
  /** Produce operations by outcome; `unfinished` invokes never completed (unknown, like info). */
  readonly produce: { readonly invoke: number; readonly ok: number; readonly fail: number; readonly info: number; readonly unfinished: number };
  readonly deliveries: number;
  readonly assigns: number;
  /** Acknowledged offset commits (commit ok). */
  readonly commits: number;
  /** Successful reads of committed offsets (read-committed ok). */
  readonly committedReads: number;
  readonly drained: number;
  readonly leaderSamples: number;
  /** Injected faults by kind (fault events without heal). */
  readonly faults: Readonly<Record<string, number>>;
  readonly heals: number;
  /** Observations of type info or fail: notes such as "consumer loop ended", otherwise ignored. */
  readonly notes: number;
}

/** What checkHistory found. Counts are over the whole history; see the module comment. */
export interface CheckResult {
  /** True iff `violations` is empty. */
  readonly valid: boolean;
  readonly violations: readonly Violation[];
  readonly ops: OperationCounts;
  /** Distinct ids with at least one produce ok. */
  readonly acknowledged: number;
  readonly lost: number;
  readonly unseen: number;
  readonly unseenByGroup: Readonly<Record<string, number>>;
  /** Ids of idempotent producers drained at two or more positions (a violation). */
  readonly duplicated: number;
  /** Ids of plain producers drained at two or more positions (allowed: at-least-once). */
  readonly duplicatedPlain: number;
  /** inconsistentPositions + acknowledgedElsewhere. */
  readonly inconsistentOffsets: number;
  /** Positions at which two different ids were observed. */
  readonly inconsistentPositions: number;
  /** Acknowledged ids that the drain read (once) at another position. */
  readonly acknowledgedElsewhere: number;
  readonly abortedReads: number;
  readonly unexpected: number;
  readonly nonMonotonic: number;
  readonly skipped: number;
  readonly reordered: number;
  readonly commitRegressions: number;
  readonly commitBeyondEnd: number;
  readonly drainGaps: number;
  /** Per group: times delivered → number of drained ids (0: unseen). */
  readonly consumeCounts: Readonly<Record<string, Readonly<Record<number, number>>>>;
  readonly maxUnavailabilityMs: number;
  readonly leaderlessAfterHealMs: number;
  /** Partitions leaderless for longer than the limit after the last fault event. */
  readonly leaderlessAfterHeal: number;
  readonly leaderlessAfterHealLimitMs: number;
  /** Events the checker could not use (a completion without invoke, a missing field, ...). */
  readonly malformed: number;
}

const MAX_EXAMPLES = 5;
const DEFAULT_LEADERLESS_AFTER_HEAL_LIMIT_MS = 30_000;

/** The ops that are one `ok` event, with no invoke. */
const OBSERVATIONS: ReadonlySet<Op> = new Set<Op>(["deliver", "assign", "drain", "drain-end", "leaders", "fault"]);
/** The ops that are an invoke and one completion. */
const OPERATIONS: ReadonlySet<Op> = new Set<Op>(["produce", "commit", "read-committed"]);
const EVENT_TYPES: ReadonlySet<string> = new Set(["invoke", "ok", "fail", "info"]);

/** A count with its first few examples. */
class Tally {
  count = 0;
  readonly examples: string[] = [];

  add(example: string): void {
    this.count += 1;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(example);
  }
}

/** Where a record sits. `text` is `topic/partition@offset`, also the key of maps. */
interface Position {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly text: string;
}

function partitionText(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

function positionOf(topic: string, partition: number, offset: number): Position {
  return { topic, partition, offset, text: `${partitionText(topic, partition)}@${offset}` };
}

/** One produce operation: what the invoke named and, once ok, where the record was acknowledged. */
interface ProduceOp {
  readonly id: string;
  readonly process: string;
  readonly key: string | undefined;
  readonly seq: number | undefined;
  readonly idempotent: boolean;
  outcome: "ok" | "fail" | "info" | "unfinished";
  acknowledgedAt: Position | undefined;
}

/** An invoke waiting for its completion. */
interface PendingOp {
  readonly invoke: HistoryEvent;
  readonly produce: ProduceOp | undefined;
}

/** A lower bound of a committed offset from `mono` on, or a read of it. */
interface CommitSample {
  /** The committed offset this is about: `group <group> <topic>/<partition>`. */
  readonly slot: string;
  /** topic/partition */
  readonly part: string;
  readonly offset: number;
  /** When the operation was invoked and completed (mono). */
  readonly invokeMono: number;
  readonly mono: number;
  readonly what: string;
}

/** A consumer session's current run per partition: the last offset delivered in it. */
type SessionRuns = Map<string, { readonly topic: string; readonly partition: number; offset: number }>;

/** Everything the analyses need, built in one pass over the history. */
class HistoryIndex {
  readonly ops = {
    events: 0,
    produce: { invoke: 0, ok: 0, fail: 0, info: 0, unfinished: 0 },
    deliveries: 0,
    assigns: 0,
    commits: 0,
    committedReads: 0,
    drained: 0,
    leaderSamples: 0,
    faults: {} as Record<string, number>,
    heals: 0,
    notes: 0,
  };
  readonly pending = new Map<string, PendingOp>();
  /** id → its produce operations (usually one). */
  readonly produces = new Map<string, ProduceOp[]>();
  readonly acknowledgements: ProduceOp[] = [];
  /** group → id → times delivered. */
  readonly delivered = new Map<string, Map<string, number>>();
  /** group → the topics its deliver and assign events name. */
  readonly groupTopics = new Map<string, Set<string>>();
  /** id → the distinct positions the drain read it at. */
  readonly drained = new Map<string, Position[]>();
  /** topic/partition → drained offsets (with repeats). */
  readonly drainedOffsets = new Map<string, number[]>();
  /** topic/partition → the end offset the drain reported (the highest, if several). */
  readonly drainEnds = new Map<string, number>();
  /** position text → the first id observed there, and by whom. */
  readonly holders = new Map<string, { readonly id: string; readonly source: string }>();
  readonly inconsistentPositions = new Set<string>();
  readonly inconsistent = new Tally();
  /** group + session → its runs. */
  readonly sessions = new Map<string, SessionRuns>();
  readonly nonMonotonic = new Tally();
  readonly skipped = new Tally();
  readonly commitSamples: CommitSample[] = [];
  readonly readSamples: CommitSample[] = [];
  /** topic/partition → leader samples in history order. */
  readonly leaderSamples = new Map<string, { readonly mono: number; readonly leader: number }[]>();
  lastFaultMono = Number.NEGATIVE_INFINITY;
  readonly malformed = new Tally();

  constructor(events: readonly HistoryEvent[]) {
    events.forEach((e, i) => this.add(e, i + 1));
    this.closeUnfinished();
  }

  private add(e: HistoryEvent, line: number): void {
    this.ops.events += 1;
    if (!EVENT_TYPES.has(e.type) || !(OBSERVATIONS.has(e.op) || OPERATIONS.has(e.op))) {
      this.malformed.add(`line ${line}: unknown type or op: ${e.type} ${e.op}`);
    } else if (OBSERVATIONS.has(e.op)) {
      if (e.type === "ok") this.addObservation(e, line);
      else if (e.type === "invoke") this.malformed.add(`line ${line}: ${e.op} is a single ok event, got an invoke`);
      else this.ops.notes += 1;
    } else if (e.type === "invoke") {
      this.addInvoke(e, line);
    } else {
      this.addCompletion(e, line);
    }
  }

  private addObservation(e: HistoryEvent, line: number): void {
    switch (e.op) {
      case "deliver":
        return this.addDelivery(e, line);
      case "assign":
        return this.addAssign(e, line);
      case "drain":
        return this.addDrained(e, line);
      case "drain-end":
        return this.addDrainEnd(e, line);
      case "leaders":
        return this.addLeaders(e, line);
      default:
        return this.addFault(e);
    }
  }

  private addInvoke(e: HistoryEvent, line: number): void {
    const key = operationKey(e);
    if (this.pending.has(key)) this.malformed.add(`line ${line}: second invoke of ${describeOp(e)} before its completion`);
    let produce: ProduceOp | undefined;
    if (e.op === "produce") {
      this.ops.produce.invoke += 1;
      if (e.id === undefined) this.malformed.add(`line ${line}: produce invoke of ${e.process} without id`);
      else produce = this.addProduce(e, e.id);
    }
    this.pending.set(key, { invoke: e, produce });
  }

  private addProduce(e: HistoryEvent, id: string): ProduceOp {
    const op: ProduceOp = {
      id,
      process: e.process,
      key: e.key,
      seq: e.seq,
      idempotent: e.idempotent === true,
      outcome: "unfinished",
      acknowledgedAt: undefined,
    };
    const ops = this.produces.get(id);
    if (ops === undefined) this.produces.set(id, [op]);
    else ops.push(op);
    return op;
  }

  private addCompletion(e: HistoryEvent, line: number): void {
    const key = operationKey(e);
    const pending = this.pending.get(key);
    if (pending === undefined) {
      this.malformed.add(`line ${line}: ${e.type} of ${describeOp(e)} without an open invoke`);
      return;
    }
    this.pending.delete(key);
    const outcome = e.type as "ok" | "fail" | "info";
    if (e.op === "produce") this.completeProduce(e, pending, outcome);
    else if (outcome === "ok" && e.op === "commit") this.addCommit(e, pending.invoke, line);
    else if (outcome === "ok" && e.op === "read-committed") this.addCommittedRead(e, pending.invoke, line);
  }

  private completeProduce(e: HistoryEvent, pending: PendingOp, outcome: "ok" | "fail" | "info"): void {
    this.ops.produce[outcome] += 1;
    const op = pending.produce;
    if (op === undefined) return;
    op.outcome = outcome;
    if (outcome !== "ok") return;
    this.acknowledgements.push(op);
    const topic = e.topic ?? pending.invoke.topic;
    const partition = e.partition ?? pending.invoke.partition;
    if (topic === undefined || partition === undefined || e.offset === undefined || e.offset < 0) return;
    op.acknowledgedAt = positionOf(topic, partition, e.offset);
    this.observe(op.acknowledgedAt, op.id, `acknowledged to ${op.process}`);
  }

  /** Notes that `id` was seen at `pos`; a second id at the same position is inconsistent. */
  private observe(pos: Position, id: string, source: string): void {
    const holder = this.holders.get(pos.text);
    if (holder === undefined) {
      this.holders.set(pos.text, { id, source });
    } else if (holder.id !== id && !this.inconsistentPositions.has(pos.text)) {
      this.inconsistentPositions.add(pos.text);
      this.inconsistent.add(`${pos.text} holds "${holder.id}" (${holder.source}) and "${id}" (${source})`);
    }
  }

  private addDelivery(e: HistoryEvent, line: number): void {
    this.ops.deliveries += 1;
    const { id, group, topic, partition, offset } = e;
    if (id === undefined || group === undefined || topic === undefined || partition === undefined || offset === undefined) {
      this.malformed.add(`line ${line}: deliver without id, group, topic, partition or offset`);
      return;
    }
    this.topicsOf(group).add(topic);
    const counts = this.delivered.get(group) ?? new Map<string, number>();
    this.delivered.set(group, counts);
    counts.set(id, (counts.get(id) ?? 0) + 1);
    const session = e.session ?? e.process;
    this.observe(positionOf(topic, partition, offset), id, `delivered to ${group}/${session}`);
    this.stepRun(group, session, topic, partition, offset);
  }

  /** One poll-order step of a session: offsets of a run go up by exactly one. */
  private stepRun(group: string, session: string, topic: string, partition: number, offset: number): void {
    const runs = this.runsOf(group, session);
    const part = partitionText(topic, partition);
    const run = runs.get(part);
    if (run === undefined) {
      runs.set(part, { topic, partition, offset });
      return;
    }
    const where = `group ${group} session ${session} ${part}`;
    if (offset <= run.offset) this.nonMonotonic.add(`${where}: @${offset} after @${run.offset}`);
    else if (offset > run.offset + 1) this.skipped.add(`${where}: @${offset} after @${run.offset} (skipped ${run.offset + 1}..${offset - 1})`);
    run.offset = offset;
  }

  /** An assign starts a new run for each partition in it (of its topic, or of every topic). */
  private addAssign(e: HistoryEvent, line: number): void {
    this.ops.assigns += 1;
    if (e.group === undefined || e.partitions === undefined) {
      this.malformed.add(`line ${line}: assign without group or partitions`);
      return;
    }
    if (e.topic !== undefined) this.topicsOf(e.group).add(e.topic);
    const runs = this.runsOf(e.group, e.session ?? e.process);
    const assigned = new Set(e.partitions);
    for (const [part, run] of runs) {
      if (assigned.has(run.partition) && (e.topic === undefined || e.topic === run.topic)) runs.delete(part);
    }
  }

  private addDrained(e: HistoryEvent, line: number): void {
    this.ops.drained += 1;
    const { id, topic, partition, offset } = e;
    if (id === undefined || topic === undefined || partition === undefined || offset === undefined) {
      this.malformed.add(`line ${line}: drain without id, topic, partition or offset`);
      return;
    }
    const pos = positionOf(topic, partition, offset);
    const positions = this.drained.get(id) ?? [];
    this.drained.set(id, positions);
    if (!positions.some((p) => p.text === pos.text)) positions.push(pos);
    const offsets = this.drainedOffsets.get(partitionText(topic, partition)) ?? [];
    this.drainedOffsets.set(partitionText(topic, partition), offsets);
    offsets.push(offset);
    this.observe(pos, id, "drained");
  }

  private addDrainEnd(e: HistoryEvent, line: number): void {
    if (e.topic === undefined || e.partition === undefined || e.offset === undefined) {
      this.malformed.add(`line ${line}: drain-end without topic, partition or offset`);
      return;
    }
    const part = partitionText(e.topic, e.partition);
    this.drainEnds.set(part, Math.max(this.drainEnds.get(part) ?? e.offset, e.offset));
  }

  private addCommit(e: HistoryEvent, invoke: HistoryEvent, line: number): void {
    this.ops.commits += 1;
    const group = e.group ?? invoke.group;
    const topic = e.topic ?? invoke.topic;
    const partition = e.partition ?? invoke.partition;
    const offset = e.offset ?? invoke.offset;
    if (group === undefined || topic === undefined || partition === undefined || offset === undefined) {
      this.malformed.add(`line ${line}: commit ok without group, topic, partition or offset`);
      return;
    }
    const what = `commit ${offset} by ${e.session ?? e.process} (req ${e.req}, done at ${e.mono} ms)`;
    const part = partitionText(topic, partition);
    this.commitSamples.push({ slot: slotText(group, part), part, offset, invokeMono: invoke.mono, mono: e.mono, what });
  }

  private addCommittedRead(e: HistoryEvent, invoke: HistoryEvent, line: number): void {
    this.ops.committedReads += 1;
    const group = e.group ?? invoke.group;
    const topic = e.topic ?? invoke.topic;
    if (group === undefined || topic === undefined || e.offsets === undefined) {
      this.malformed.add(`line ${line}: read-committed ok without group, topic or offsets`);
      return;
    }
    for (const [partition, offset] of Object.entries(e.offsets)) {
      const what = `read ${offset} by ${e.process} (req ${e.req}, ${invoke.mono}..${e.mono} ms)`;
      const part = `${topic}/${partition}`;
      this.readSamples.push({ slot: slotText(group, part), part, offset, invokeMono: invoke.mono, mono: e.mono, what });
    }
  }

  private addLeaders(e: HistoryEvent, line: number): void {
    if (e.topic === undefined || e.leaders === undefined) {
      this.malformed.add(`line ${line}: leaders without topic or leaders`);
      return;
    }
    this.ops.leaderSamples += 1;
    for (const [partition, leader] of Object.entries(e.leaders)) {
      const part = `${e.topic}/${partition}`;
      const samples = this.leaderSamples.get(part) ?? [];
      this.leaderSamples.set(part, samples);
      samples.push({ mono: e.mono, leader });
    }
  }

  private addFault(e: HistoryEvent): void {
    this.lastFaultMono = Math.max(this.lastFaultMono, e.mono);
    if (e.heal === true) {
      this.ops.heals += 1;
    } else {
      const kind = e.fault ?? "unknown";
      this.ops.faults[kind] = (this.ops.faults[kind] ?? 0) + 1;
    }
  }

  /** Counts the produce invokes never completed (their ProduceOp keeps outcome "unfinished"). */
  private closeUnfinished(): void {
    for (const { invoke } of this.pending.values()) {
      if (invoke.op === "produce") this.ops.produce.unfinished += 1;
    }
  }

  private topicsOf(group: string): Set<string> {
    const topics = this.groupTopics.get(group) ?? new Set<string>();
    this.groupTopics.set(group, topics);
    return topics;
  }

  private runsOf(group: string, session: string): SessionRuns {
    const key = `${group}\u0000${session}`;
    const runs = this.sessions.get(key) ?? new Map();
    this.sessions.set(key, runs);
    return runs;
  }
}

function slotText(group: string, part: string): string {
  return `group ${group} ${part}`;
}

/** Pairs an invoke with its completion: same process, op and req. */
function operationKey(e: HistoryEvent): string {
  return `${e.process}\u0000${e.op}\u0000${e.req}`;
}

function describeOp(e: HistoryEvent): string {
  return `${e.op} of ${e.process} req ${e.req}`;
}

/** Acknowledged ids that the drain never read. */
function findLost(ix: HistoryIndex): { acknowledged: number; lost: Tally } {
  const lost = new Tally();
  let acknowledged = 0;
  for (const [id, ops] of ix.produces) {
    const ack = ops.find((op) => op.outcome === "ok");
    if (ack === undefined) continue;
    acknowledged += 1;
    if (!ix.drained.has(id)) lost.add(`"${id}" acknowledged at ${ack.acknowledgedAt?.text ?? "?"} to ${ack.process}`);
  }
  return { acknowledged, lost };
}

/** Ids drained at two or more positions, split by whether their producer was idempotent. */
function findDuplicates(ix: HistoryIndex): { duplicated: Tally; plain: Tally } {
  const duplicated = new Tally();
  const plain = new Tally();
  for (const [id, positions] of ix.drained) {
    if (positions.length < 2) continue;
    const idempotent = ix.produces.get(id)?.some((op) => op.idempotent) ?? false;
    (idempotent ? duplicated : plain).add(`"${id}" drained at ${positions.map((p) => p.text).join(", ")}`);
  }
  return { duplicated, plain };
}

/** Acknowledged ids that the drain read at one position, another than the acknowledged one. */
function findAcknowledgedElsewhere(ix: HistoryIndex): Tally {
  const elsewhere = new Tally();
  for (const op of ix.acknowledgements) {
    const positions = ix.drained.get(op.id);
    const acked = op.acknowledgedAt;
    if (acked === undefined || positions === undefined || positions.length !== 1) continue;
    const at = positions[0];
    if (at !== undefined && at.text !== acked.text) elsewhere.add(`"${op.id}" acknowledged at ${acked.text} to ${op.process}, drained at ${at.text}`);
  }
  return elsewhere;
}

/** Ids read by a consumer or the drain: certainly failed (aborted) or never produced (unexpected). */
function findPhantoms(ix: HistoryIndex): { aborted: Tally; unexpected: Tally } {
  const aborted = new Tally();
  const unexpected = new Tally();
  const read = new Set<string>(ix.drained.keys());
  for (const ids of ix.delivered.values()) for (const id of ids.keys()) read.add(id);
  for (const id of read) {
    const ops = ix.produces.get(id);
    if (ops === undefined) unexpected.add(`"${id}" ${whereRead(ix, id)}, never produced`);
    else if (ops.every((op) => op.outcome === "fail")) aborted.add(`"${id}" ${whereRead(ix, id)}, its produce by ${ops[0]?.process} failed`);
  }
  return { aborted, unexpected };
}

function whereRead(ix: HistoryIndex, id: string): string {
  const positions = ix.drained.get(id);
  if (positions !== undefined) return `drained at ${positions.map((p) => p.text).join(", ")}`;
  const groups = [...ix.delivered].filter(([, ids]) => ids.has(id)).map(([group]) => group);
  return `delivered to ${groups.join(", ")}`;
}

/** Per group: drained ids of its topics never delivered to it, and how often each was delivered. */
function checkGroups(ix: HistoryIndex): { unseen: Tally; byGroup: Record<string, number>; consumeCounts: Record<string, Record<number, number>> } {
  const unseen = new Tally();
  const byGroup: Record<string, number> = {};
  const consumeCounts: Record<string, Record<number, number>> = {};
  const groups = [...new Set([...ix.groupTopics.keys(), ...ix.delivered.keys()])].sort();
  for (const group of groups) {
    const topics = ix.groupTopics.get(group) ?? new Set<string>();
    const delivered = ix.delivered.get(group) ?? new Map<string, number>();
    const histogram: Record<number, number> = {};
    let missing = 0;
    for (const [id, positions] of ix.drained) {
      if (!positions.some((p) => topics.has(p.topic))) continue;
      const times = delivered.get(id) ?? 0;
      histogram[times] = (histogram[times] ?? 0) + 1;
      if (times > 0) continue;
      missing += 1;
      unseen.add(`group ${group} never got "${id}" (drained at ${positions[0]?.text})`);
    }
    byGroup[group] = missing;
    consumeCounts[group] = histogram;
  }
  return { unseen, byGroup, consumeCounts };
}

/**
 * Per idempotent producer, partition and key: acknowledged records sorted by seq must have
 * increasing offsets. Each consecutive pair (of different seqs) out of order counts once.
 */
function findReordered(ix: HistoryIndex): Tally {
  const reordered = new Tally();
  for (const [process, records] of keyStreams(ix)) {
    records.sort((a, b) => a.seq - b.seq || a.at.offset - b.at.offset);
    for (let i = 1; i < records.length; i++) {
      const [a, b] = [records[i - 1] as SentRecord, records[i] as SentRecord];
      if (a.seq === b.seq || a.at.offset < b.at.offset) continue;
      reordered.add(`${process} key "${a.key}": seq ${a.seq} "${a.id}" at ${a.at.text}, then seq ${b.seq} "${b.id}" at ${b.at.text}`);
    }
  }
  return reordered;
}

/** An acknowledged record of an idempotent producer, with everything the order check needs. */
interface SentRecord {
  readonly id: string;
  readonly key: string;
  readonly seq: number;
  readonly at: Position;
}

/** Acknowledged idempotent records with key and seq, by producer, partition and key. */
function keyStreams(ix: HistoryIndex): [string, SentRecord[]][] {
  const streams = new Map<string, [string, SentRecord[]]>();
  for (const { id, process, key, seq, idempotent, acknowledgedAt: at } of ix.acknowledgements) {
    if (!idempotent || key === undefined || seq === undefined || at === undefined) continue;
    const stream = `${process}\u0000${partitionText(at.topic, at.partition)}\u0000${key}`;
    const entry = streams.get(stream) ?? [process, []];
    streams.set(stream, entry);
    entry[1].push({ id, key, seq, at });
  }
  return [...streams.values()];
}

/**
 * Committed offsets never go back once known. Per group/topic/partition, the lower bounds are the
 * acknowledged commits and the completed reads, each from its completion on. A read that returned
 * less than the highest bound completed before the read was invoked counts once (however many
 * earlier commits or reads it contradicts). Sorted by time, with a running maximum.
 */
function findCommitRegressions(ix: HistoryIndex): Tally {
  const regressions = new Tally();
  const bounds = groupBySlot([...ix.commitSamples, ...ix.readSamples]);
  for (const [slot, reads] of groupBySlot(ix.readSamples)) {
    const known = (bounds.get(slot) ?? []).sort((a, b) => a.mono - b.mono);
    reads.sort((a, b) => a.invokeMono - b.invokeMono);
    let next = 0;
    let highest: CommitSample | undefined;
    for (const read of reads) {
      for (; next < known.length && (known[next] as CommitSample).mono < read.invokeMono; next++) {
        const bound = known[next] as CommitSample;
        if (highest === undefined || bound.offset > highest.offset) highest = bound;
      }
      if (highest !== undefined && read.offset < highest.offset) regressions.add(`${slot}: ${read.what} after ${highest.what}`);
    }
  }
  return regressions;
}

/** Per group/topic/partition whose committed offsets exceed the drain's end: counted once. */
function findCommitsBeyondEnd(ix: HistoryIndex): Tally {
  const beyond = new Tally();
  for (const [slot, samples] of groupBySlot([...ix.commitSamples, ...ix.readSamples])) {
    const highest = samples.reduce((a, b) => (b.offset > a.offset ? b : a));
    const end = ix.drainEnds.get(highest.part);
    if (end === undefined) continue;
    if (highest.offset > end) beyond.add(`${slot}: ${highest.what}, beyond the end ${end}`);
  }
  return beyond;
}

function groupBySlot(samples: readonly CommitSample[]): Map<string, CommitSample[]> {
  const slots = new Map<string, CommitSample[]>();
  for (const s of samples) {
    const list = slots.get(s.slot) ?? [];
    slots.set(s.slot, list);
    list.push(s);
  }
  return slots;
}

/** Offsets in [lowest drained, drain-end) that the drain never read: each missing offset counts. */
function findDrainGaps(ix: HistoryIndex): Tally {
  const gaps = new Tally();
  for (const [part, end] of ix.drainEnds) {
    const offsets = [...new Set(ix.drainedOffsets.get(part) ?? [])].filter((o) => o < end).sort((a, b) => a - b);
    let expected = offsets[0] ?? end;
    for (const offset of offsets) {
      if (offset > expected) addGap(gaps, part, expected, offset);
      expected = offset + 1;
    }
    if (end > expected) addGap(gaps, part, expected, end);
  }
  return gaps;
}

/** Adds the missing offsets [from, to) of a partition: one count each, one example for the range. */
function addGap(gaps: Tally, part: string, from: number, to: number): void {
  gaps.add(to - from === 1 ? `${part}@${from} never drained` : `${part}@${from}..${to - 1} never drained`);
  gaps.count += to - from - 1;
}

/**
 * Leaderless windows per partition: from the first sample without a leader to the next sample
 * with one (or the partition's last sample). After the last fault event only the part of a window
 * after that event counts.
 */
function measureLeaderless(ix: HistoryIndex, limitMs: number): { maxMs: number; afterHealMs: number; afterHeal: Tally } {
  const afterHeal = new Tally();
  let maxMs = 0;
  let afterHealMs = 0;
  for (const [part, samples] of ix.leaderSamples) {
    let partAfterHealMs = 0;
    for (const [start, end] of leaderlessWindows(samples)) {
      maxMs = Math.max(maxMs, roundMs(end - start));
      partAfterHealMs = Math.max(partAfterHealMs, roundMs(end - Math.max(start, ix.lastFaultMono)));
    }
    afterHealMs = Math.max(afterHealMs, partAfterHealMs);
    if (partAfterHealMs <= limitMs) continue;
    const since = ix.lastFaultMono === Number.NEGATIVE_INFINITY ? "in a run without faults" : `after the last fault event (at ${ix.lastFaultMono} ms)`;
    afterHeal.add(`${part} leaderless for ${partAfterHealMs} ms ${since}`);
  }
  return { maxMs, afterHealMs, afterHeal };
}

/** To the microsecond, as the history's clocks (and without float noise from subtraction). */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function leaderlessWindows(samples: readonly { readonly mono: number; readonly leader: number }[]): [number, number][] {
  const sorted = [...samples].sort((a, b) => a.mono - b.mono);
  const windows: [number, number][] = [];
  let start: number | undefined;
  for (const s of sorted) {
    if (s.leader === 0) start ??= s.mono;
    else if (start !== undefined) {
      windows.push([start, s.mono]);
      start = undefined;
    }
  }
  const last = sorted[sorted.length - 1];
  if (start !== undefined && last !== undefined) windows.push([start, last.mono]);
  return windows;
}

function mergeTallies(a: Tally, b: Tally): Tally {
  const merged = new Tally();
  for (const example of [...a.examples, ...b.examples]) merged.add(example);
  merged.count = a.count + b.count;
  return merged;
}

function violation(kind: ViolationKind, tally: Tally): Violation[] {
  return tally.count === 0 ? [] : [{ kind, count: tally.count, examples: tally.examples }];
}

/**
 * Checks a history of a real-process chaos run (see the module comment and chaos-tests/README.md
 * for every definition). Pure: reads only `events`.
 */
export function checkHistory(events: readonly HistoryEvent[], options: CheckOptions = {}): CheckResult {
  const limitMs = options.leaderlessAfterHealLimitMs ?? DEFAULT_LEADERLESS_AFTER_HEAL_LIMIT_MS;
  const ix = new HistoryIndex(events);
  const { acknowledged, lost } = findLost(ix);
  const { duplicated, plain } = findDuplicates(ix);
  const elsewhere = findAcknowledgedElsewhere(ix);
  const inconsistent = mergeTallies(ix.inconsistent, elsewhere);
  const { aborted, unexpected } = findPhantoms(ix);
  const groups = checkGroups(ix);
  const reordered = findReordered(ix);
  const regressions = findCommitRegressions(ix);
  const beyondEnd = findCommitsBeyondEnd(ix);
  const gaps = findDrainGaps(ix);
  const leaderless = measureLeaderless(ix, limitMs);
  const violations = [
    ...violation("lost", lost),
    ...violation("unseen", groups.unseen),
    ...violation("duplicated", duplicated),
    ...violation("inconsistentOffsets", inconsistent),
    ...violation("abortedReads", aborted),
    ...violation("unexpected", unexpected),
    ...violation("nonMonotonic", ix.nonMonotonic),
    ...violation("skipped", ix.skipped),
    ...violation("reordered", reordered),
    ...violation("commitRegressions", regressions),
    ...violation("commitBeyondEnd", beyondEnd),
    ...violation("drainGaps", gaps),
    ...violation("leaderlessAfterHeal", leaderless.afterHeal),
    ...violation("malformed", ix.malformed),
  ];
  return {
    valid: violations.length === 0,
    violations,
    ops: ix.ops,
    acknowledged,
    lost: lost.count,
    unseen: groups.unseen.count,
    unseenByGroup: groups.byGroup,
    duplicated: duplicated.count,
    duplicatedPlain: plain.count,
    inconsistentOffsets: inconsistent.count,
    inconsistentPositions: ix.inconsistent.count,
    acknowledgedElsewhere: elsewhere.count,
    abortedReads: aborted.count,
    unexpected: unexpected.count,
    nonMonotonic: ix.nonMonotonic.count,
    skipped: ix.skipped.count,
    reordered: reordered.count,
    commitRegressions: regressions.count,
    commitBeyondEnd: beyondEnd.count,
    drainGaps: gaps.count,
    consumeCounts: groups.consumeCounts,
    maxUnavailabilityMs: leaderless.maxMs,
    leaderlessAfterHealMs: leaderless.afterHealMs,
    leaderlessAfterHeal: leaderless.afterHeal.count,
    leaderlessAfterHealLimitMs: limitMs,
    malformed: ix.malformed.count,
  };
}

/** A compact multi-line summary: the verdict, the counts, then each violation with its examples. */
export function formatCheckResult(r: CheckResult): string {
  const p = r.ops.produce;
  const faults = Object.entries(r.ops.faults).map(([kind, n]) => `${kind} ${n}`).join(", ") || "none";
  const lines = [
    r.valid ? "history: VALID" : `history: INVALID (${r.violations.map((v) => `${v.kind} ${v.count}`).join(", ")})`,
    `operations: ${r.ops.events} events; produce ${p.invoke} invoked, ${p.ok} ok, ${p.fail} fail, ${p.info} info, ` +
      `${p.unfinished} unfinished; ${r.ops.deliveries} deliveries, ${r.ops.assigns} assigns, ${r.ops.commits} offset commits, ` +
      `${r.ops.committedReads} committed-offset reads; ${r.ops.drained} drained`,
    `faults: ${faults} (${r.ops.heals} heals)`,
    `records: ${r.acknowledged} acknowledged, ${r.lost} lost, ${r.duplicated} duplicated (${r.duplicatedPlain} plain, allowed), ` +
      `${r.inconsistentOffsets} inconsistent offsets, ${r.abortedReads} aborted reads, ${r.unexpected} unexpected, ${r.reordered} reordered, ` +
      `${r.drainGaps} drain gaps`,
    `consumers: ${r.unseen} unseen, ${r.nonMonotonic} non-monotonic, ${r.skipped} skipped, ` +
      `${r.commitRegressions} offset-commit regressions, ${r.commitBeyondEnd} commits beyond the end`,
    ...Object.entries(r.consumeCounts).map(([group, histogram]) =>
      `  group ${group}: ${r.unseenByGroup[group] ?? 0} unseen; times delivered: ` +
      (Object.entries(histogram).map(([times, ids]) => `${times}×${ids}`).join(" ") || "nothing drained")),
    `leaders: max unavailability ${r.maxUnavailabilityMs} ms; after the last fault ${r.leaderlessAfterHealMs} ms ` +
      `(limit ${r.leaderlessAfterHealLimitMs} ms, ${r.leaderlessAfterHeal} partitions over)`,
  ];
  for (const v of r.violations) {
    lines.push(`violation ${v.kind}: ${v.count}`);
    for (const example of v.examples) lines.push(`  ${example}`);
  }
  return lines.join("\n");
}

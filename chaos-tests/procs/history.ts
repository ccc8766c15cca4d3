/**
 * The history of a chaos run: every operation the workload and the harness performed, as JSON
 * lines, one event per line. The format is documented in chaos-tests/README.md ("History format")
 * so that any checker can read it; checker.ts is ours.
 *
 * An operation is an `invoke` followed by exactly one completion from the same process with the
 * same `op` and `req`: `ok` (it happened), `fail` (it certainly did not happen) or `info` (the
 * outcome is unknown: a timeout, a lost connection, a node killed mid-call). Observations that
 * cannot fail (a record delivered to a consumer, a record read by the final drain, a fault the
 * harness injected, a sample of the partition leaders) are single `ok` events without an invoke.
 */
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";

/** What an event says about its operation. */
export type EventType = "invoke" | "ok" | "fail" | "info";

/** The operations of a history. */
export type Op =
  /** A producer sends one record (one record per operation; the client batches underneath). */
  | "produce"
  /** A consumer of a group was handed a record. One `ok` event per record. */
  | "deliver"
  /** A consumer's group assignment changed; `partitions` is the new assignment. One `ok` event. */
  | "assign"
  /** A consumer committed `offset` (the next offset to consume) for `partition`. */
  | "commit"
  /** The harness read a group's committed offsets (`offsets`: partition → offset, -1 none). */
  | "read-committed"
  /** The final drain read one record of a partition at `offset`. One `ok` event per record. */
  | "drain"
  /** The final drain reached the end of a partition (`offset` is the end offset it saw). */
  | "drain-end"
  /** The harness sampled each partition's leader (`leaders`: partition → node id, 0 none). */
  | "leaders"
  /** The harness injected (`ok`) or healed (`ok`, with `heal: true`) a fault. */
  | "fault";

export interface HistoryEvent {
  readonly type: EventType;
  /** Who performed it: "producer-3", "consumer-1", "harness", "drain". */
  readonly process: string;
  readonly op: Op;
  /** Pairs an invoke with its completion within a process (a counter of the process). */
  readonly req?: number;
  /** Milliseconds since the Unix epoch (wall clock of the harness). */
  readonly wall: number;
  /** Milliseconds since the run started (monotonic clock of the harness). */
  readonly mono: number;
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: number;
  /** The record's unique id (produce, deliver, drain). */
  readonly id?: string;
  /** The record's key (produce, deliver, drain). */
  readonly key?: string;
  /** produce: whether the producer is idempotent (duplicates are then a violation). */
  readonly idempotent?: boolean;
  /** produce: the producer's sequence number of this record (per process, from 0, in send order). */
  readonly seq?: number;
  /** deliver, assign, commit: the consumer group. */
  readonly group?: string;
  /** deliver, assign, commit: the consumer session (one per consumer process start). */
  readonly session?: string;
  /** assign: the partitions now owned by the session. */
  readonly partitions?: readonly number[];
  /** read-committed: partition → committed offset (-1: none). */
  readonly offsets?: Readonly<Record<string, number>>;
  /** leaders: partition → leader node id (0: none known). */
  readonly leaders?: Readonly<Record<string, number>>;
  /** fault: its kind ("kill", "pause", "partition", ...), description and whether this heals it. */
  readonly fault?: string;
  readonly detail?: string;
  readonly heal?: boolean;
  /** fail, info: the error. */
  readonly error?: string;
}

/** Appends events to a JSON-lines file; `events` keeps them in memory too when asked. */
export class HistoryWriter {
  private readonly out: WriteStream | undefined;
  readonly events: HistoryEvent[] = [];
  private readonly t0 = performance.now();
  private readonly reqs = new Map<string, number>();

  constructor(file: string | undefined, private readonly keep = true) {
    this.out = file === undefined ? undefined : createWriteStream(file, { flags: "w" });
  }

  /** Milliseconds since this writer was created. */
  monoMs(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  /** Records an event stamped with both clocks. */
  record(e: Omit<HistoryEvent, "wall" | "mono">): HistoryEvent {
    const event = { ...e, wall: Date.now(), mono: this.monoMs() } as HistoryEvent;
    if (this.keep) this.events.push(event);
    this.out?.write(JSON.stringify(event) + "\n");
    return event;
  }

  /** Records an invoke and returns a function that records its completion with the same req. */
  invoke(e: Omit<HistoryEvent, "wall" | "mono" | "type" | "req">): (type: Exclude<EventType, "invoke">, extra?: Partial<HistoryEvent>) => HistoryEvent {
    const req = (this.reqs.get(e.process) ?? 0) + 1;
    this.reqs.set(e.process, req);
    this.record({ ...e, type: "invoke", req });
    let done = false;
    return (type, extra = {}) => {
      if (done) throw new Error(`operation ${e.op} req ${req} of ${e.process} completed twice`);
      done = true;
      return this.record({ ...e, ...extra, type, req });
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.out === undefined ? resolve() : this.out.end(resolve)));
  }
}

/** Reads a JSON-lines history; throws naming the line of a malformed event. */
export function readHistory(file: string): HistoryEvent[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const events: HistoryEvent[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a JSON event: ${(e as Error).message}`);
    }
  });
  return events;
}

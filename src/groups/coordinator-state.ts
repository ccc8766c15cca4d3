/**
 * The replicated state of one `__consumer_offsets` partition: the state machine of its Raft
 * group, hosted on each of its replicas instead of a record log. For every consumer group that
 * hashes to this partition it keeps
 *
 *   - committed offsets: group → topic/partition → { offset, topic id, when }. A committed offset
 *     is the offset of the next record the group will consume. It never goes backwards: a
 *     "commit" command lowering it is ignored; only a "reset" command (an operator's explicit
 *     request) may lower it. Offsets carry the topic's id so that a deleted and re-created topic
 *     of the same name starts without the old topic's offsets.
 *   - the group's members and the partitions each owns, as the coordinator last recorded them
 *     (a "members" command replaces the whole list). This is what lets a new coordinator (after a
 *     leader change) know at once who owns what, instead of waiting a session timeout for members
 *     to report: it never grants a partition that a recorded member may still be consuming.
 *
 * Commands are JSON entries proposed by the coordinator (the partition's Raft leader); every
 * replica applies them in log order, so all replicas agree. Snapshots hold the whole state.
 * Unknown commands (from a newer version) are ignored; malformed ones are corruption and throw.
 */
import type { GroupId, LogIndex } from "../lib/ids.js";
import type { GroupStateMachine } from "../multiraft/multiraft.js";
import { decodeConfChange, nextConfState, type ConfState, type Entry, type Snapshot } from "../raft/index.js";
import { tpKey, type TopicPartition } from "./assignor.js";

/** One offset in a command: topic, partition, offset, topic id. */
export type OffsetTuple = readonly [topic: string, partition: number, offset: number, topicId: number];

/** A member as recorded in the replicated state. */
export interface RecordedMember {
  readonly id: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly sessionTimeoutMs: number;
  readonly owned: readonly TopicPartition[];
}

export type CoordinatorCommand =
  | { readonly op: "commit"; readonly group: string; readonly atMs: number; readonly offsets: readonly OffsetTuple[] }
  | { readonly op: "reset"; readonly group: string; readonly atMs: number; readonly offsets: readonly OffsetTuple[] }
  | { readonly op: "members"; readonly group: string; readonly members: readonly RecordedMember[] };

export interface CommittedOffset {
  readonly offset: number;
  readonly topicId: number;
  /** When the coordinator accepted the commit (its wall clock, Unix ms). */
  readonly atMs: number;
}

interface GroupRecord {
  /** tpKey → committed offset. */
  readonly offsets: Map<string, CommittedOffset>;
  members: readonly RecordedMember[];
}

interface SnapshotImage {
  readonly version: 1;
  readonly groups: readonly {
    readonly name: string;
    readonly offsets: readonly (readonly [string, number, number, number, number])[];
    readonly members: readonly RecordedMember[];
  }[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCoordinatorCommand(cmd: CoordinatorCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export class GroupCoordinatorState implements GroupStateMachine {
  /** Highest applied Raft index. */
  appliedIndex: LogIndex = 0;
  /** The membership of this Raft group as of `appliedIndex` (for snapshots taken here). */
  confState: ConfState = { voters: [], learners: [] };
  /** Entries applied since the last restore (a hint for when to compact). */
  appliedSinceRestore = 0;
  private groups = new Map<string, GroupRecord>();

  constructor(readonly raftGroup: GroupId) {}

  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.appliedIndex = e.index;
      this.appliedSinceRestore++;
      if (e.type === "conf") {
        this.confState = nextConfState(this.confState, decodeConfChange(e.data)) ?? this.confState;
        continue;
      }
      if (e.data.byteLength === 0) continue;
      this.applyCommand(decodeCommand(this.raftGroup, e.index, e.data));
    }
  }

  restore(snapshot: Snapshot): void {
    this.groups = decodeSnapshot(this.raftGroup, snapshot.metadata.index, snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.confState = snapshot.metadata.confState;
    this.appliedSinceRestore = 0;
  }

  snapshotData(): Uint8Array {
    const image: SnapshotImage = {
      version: 1,
      groups: [...this.groups].map(([name, g]) => ({
        name,
        offsets: [...g.offsets].map(([key, c]) => {
          const at = key.lastIndexOf("/");
          return [key.slice(0, at), Number(key.slice(at + 1)), c.offset, c.topicId, c.atMs] as const;
        }),
        members: g.members,
      })),
    };
    return encoder.encode(JSON.stringify(image));
  }

  /** The group's committed offset of a partition, if any (whatever the topic id; callers compare it). */
  committed(group: string, tp: TopicPartition): CommittedOffset | undefined {
    return this.groups.get(group)?.offsets.get(tpKey(tp));
  }

  /** Every committed offset of the group, by tpKey. */
  offsetsOf(group: string): ReadonlyMap<string, CommittedOffset> {
    return this.groups.get(group)?.offsets ?? new Map();
  }

  /** The members the coordinator last recorded for the group. */
  membersOf(group: string): readonly RecordedMember[] {
    return this.groups.get(group)?.members ?? [];
  }

  /** The groups that have committed offsets or recorded members here, sorted. */
  groupNames(): string[] {
    return [...this.groups.keys()].sort();
  }

  private applyCommand(cmd: CoordinatorCommand): void {
    switch (cmd.op) {
      case "commit":
      case "reset": {
        const g = this.groupRecord(cmd.group);
        for (const [topic, partition, offset, topicId] of cmd.offsets) {
          const key = tpKey({ topic, partition });
          const current = g.offsets.get(key);
          // Never backwards, except by an explicit reset or for a re-created topic (a new id).
          if (cmd.op === "commit" && current !== undefined && current.topicId === topicId && offset <= current.offset) continue;
          g.offsets.set(key, { offset, topicId, atMs: cmd.atMs });
        }
        return;
      }
      case "members": {
        const g = this.groupRecord(cmd.group);
        g.members = cmd.members;
        if (g.members.length === 0 && g.offsets.size === 0) this.groups.delete(cmd.group);
        return;
      }
      default:
        return; // an unknown command from a newer version: ignore rather than diverge
    }
  }

  private groupRecord(name: string): GroupRecord {
    let g = this.groups.get(name);
    if (g === undefined) {
      g = { offsets: new Map(), members: [] };
      this.groups.set(name, g);
    }
    return g;
  }
}

function decodeCommand(raftGroup: GroupId, index: LogIndex, data: Uint8Array): CoordinatorCommand {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (e) {
    throw new Error(`group offsets partition ${raftGroup}: entry ${index} is not a coordinator command (${String(e)})`, { cause: e });
  }
  const cmd = parsed as Partial<Record<string, unknown>>;
  if (typeof cmd !== "object" || cmd === null || typeof cmd["op"] !== "string" || typeof cmd["group"] !== "string") {
    throw new Error(`group offsets partition ${raftGroup}: entry ${index} is a malformed coordinator command`);
  }
  if ((cmd["op"] === "commit" || cmd["op"] === "reset") && !validOffsets(cmd["offsets"])) {
    throw new Error(`group offsets partition ${raftGroup}: entry ${index} has malformed offsets`);
  }
  if (cmd["op"] === "members" && !Array.isArray(cmd["members"])) {
    throw new Error(`group offsets partition ${raftGroup}: entry ${index} has malformed members`);
  }
  return parsed as CoordinatorCommand;
}

function validOffsets(offsets: unknown): boolean {
  return (
    Array.isArray(offsets) &&
    offsets.every((o) => Array.isArray(o) && typeof o[0] === "string" && Number.isSafeInteger(o[1]) && Number.isSafeInteger(o[2]) && o[2] >= 0 && Number.isSafeInteger(o[3]))
  );
}

function decodeSnapshot(raftGroup: GroupId, index: LogIndex, data: Uint8Array): Map<string, GroupRecord> {
  const out = new Map<string, GroupRecord>();
  if (data.byteLength === 0) return out; // the membership snapshot of a new group
  let image: SnapshotImage;
  try {
    image = JSON.parse(decoder.decode(data)) as SnapshotImage;
  } catch (e) {
    throw new Error(`group offsets partition ${raftGroup}: corrupt snapshot at index ${index} (${String(e)})`, { cause: e });
  }
  if (image.version !== 1 || !Array.isArray(image.groups)) throw new Error(`group offsets partition ${raftGroup}: unknown snapshot format at index ${index}`);
  for (const g of image.groups) {
    const offsets = new Map<string, CommittedOffset>();
    for (const [topic, partition, offset, topicId, atMs] of g.offsets) offsets.set(tpKey({ topic, partition }), { offset, topicId, atMs });
    out.set(g.name, { offsets, members: g.members });
  }
  return out;
}

/**
 * The cluster metadata: nodes, topics, partitions and replica placement — the state machine of
 * the controller Raft group (group 0). Every node hosts a replica (voter or learner), so every
 * node can answer metadata locally and reconcile its own partition replicas from it.
 *
 * Commands are JSON; placement is computed while applying, from the replicated state only, so
 * every replica computes the same placement.
 */
import type { GroupId, LogIndex, NodeId } from "../lib/ids.js";
import type { Entry, Snapshot } from "../raft/index.js";
import type { GroupStateMachine } from "../multiraft/multiraft.js";

export const CONTROLLER_GROUP: GroupId = 0;
/** Partition groups are numbered from here and never reused, so a re-created topic never talks to its predecessor. */
const FIRST_PARTITION_GROUP = 1000;

export interface NodeRecord {
  readonly id: NodeId;
  readonly address: string;
}

export interface PartitionRecord {
  readonly partition: number;
  readonly group: GroupId;
  /** The first replica is the preferred leader. */
  readonly replicas: readonly NodeId[];
}

export interface TopicRecord {
  readonly name: string;
  readonly id: number;
  readonly replicationFactor: number;
  readonly maxRecordBytes: number;
  /** Records older than this (broker time) are deleted from the partitions' start. */
  readonly retentionMs: number;
  readonly partitions: readonly PartitionRecord[];
  /** The controller log index of the command that created it. */
  readonly createdIndex: LogIndex;
}

export type MetadataCommand =
  | {
      readonly op: "createTopic";
      readonly name: string;
      readonly partitions: number;
      readonly replicationFactor: number;
      readonly maxRecordBytes: number;
      readonly retentionMs: number;
    }
  | { readonly op: "deleteTopic"; readonly name: string };

interface MetadataImage {
  readonly nodes: readonly NodeRecord[];
  readonly topics: readonly TopicRecord[];
  readonly nextTopicId: number;
  readonly nextGroup: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: MetadataCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** The controller group's founding snapshot data: the initial node list. */
export function initialMetadata(nodes: readonly NodeRecord[]): Uint8Array {
  const image: MetadataImage = { nodes: [...nodes].sort((a, b) => a.id - b.id), topics: [], nextTopicId: 1, nextGroup: FIRST_PARTITION_GROUP };
  return encoder.encode(JSON.stringify(image));
}

export class MetadataState implements GroupStateMachine {
  nodes = new Map<NodeId, NodeRecord>();
  topics = new Map<string, TopicRecord>();
  private nextTopicId = 1;
  private nextGroup = FIRST_PARTITION_GROUP;
  appliedIndex: LogIndex = 0;
  private readonly listeners: (() => void)[] = [];

  /** Calls `fn` after every applied change (and after a restore). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  apply(entries: readonly Entry[]): void {
    let changed = false;
    for (const e of entries) {
      this.appliedIndex = e.index;
      if (e.type !== "normal" || e.data.byteLength === 0) continue;
      changed = this.applyCommand(JSON.parse(decoder.decode(e.data)) as MetadataCommand, e.index) || changed;
    }
    if (changed) this.notify();
  }

  restore(snapshot: Snapshot): void {
    const image = JSON.parse(decoder.decode(snapshot.data)) as MetadataImage;
    this.nodes = new Map(image.nodes.map((n) => [n.id, n]));
    this.topics = new Map(image.topics.map((t) => [t.name, t]));
    this.nextTopicId = image.nextTopicId;
    this.nextGroup = image.nextGroup;
    this.appliedIndex = snapshot.metadata.index;
    this.notify();
  }

  snapshotData(): Uint8Array {
    const image: MetadataImage = { nodes: [...this.nodes.values()], topics: [...this.topics.values()], nextTopicId: this.nextTopicId, nextGroup: this.nextGroup };
    return encoder.encode(JSON.stringify(image));
  }

  /** Every partition of every topic, for reconciliation. */
  allPartitions(): { topic: TopicRecord; partition: PartitionRecord }[] {
    const out: { topic: TopicRecord; partition: PartitionRecord }[] = [];
    for (const topic of this.topics.values()) for (const partition of topic.partitions) out.push({ topic, partition });
    return out;
  }

  private applyCommand(cmd: MetadataCommand, index: LogIndex): boolean {
    switch (cmd.op) {
      case "createTopic":
        return this.applyCreateTopic(cmd, index);
      case "deleteTopic":
        return this.topics.delete(cmd.name);
      default:
        return false; // an unknown command from a newer version: ignore rather than diverge
    }
  }

  private applyCreateTopic(cmd: Extract<MetadataCommand, { op: "createTopic" }>, index: LogIndex): boolean {
    if (this.topics.has(cmd.name)) return false;
    const nodeIds = [...this.nodes.keys()].sort((a, b) => a - b);
    const rf = Math.min(cmd.replicationFactor, nodeIds.length);
    const id = this.nextTopicId++;
    const partitions: PartitionRecord[] = [];
    for (let p = 0; p < cmd.partitions; p++) {
      partitions.push({ partition: p, group: this.nextGroup++, replicas: placeReplicas(nodeIds, rf, id + p) });
    }
    this.topics.set(cmd.name, {
      name: cmd.name,
      id,
      replicationFactor: rf,
      maxRecordBytes: cmd.maxRecordBytes,
      retentionMs: cmd.retentionMs,
      partitions,
      createdIndex: index,
    });
    return true;
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }
}

/**
 * Spreads replicas and preferred leaders over the nodes: partition p of a topic starts at node
 * (seed mod n) and takes the next rf nodes; the seed is topic id + partition. With nodes
 * [1, 2, 3] and rf 3, topic 1's partitions 0, 1, 2, 3 prefer leaders 2, 3, 1, 2.
 */
export function placeReplicas(nodeIds: readonly NodeId[], rf: number, seed: number): NodeId[] {
  const n = nodeIds.length;
  const out: NodeId[] = [];
  for (let k = 0; k < rf; k++) out.push(nodeIds[(seed + k) % n]!);
  return out;
}

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
/** Init results remembered for proposers (see initResult). */
const RECENT_INITS_MAX = 1024;

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
  /**
   * Set on internal topics only (absent on user topics). Internal topics are kept apart from user
   * topics (MetadataState.internalTopics): clients never see, produce to or fetch from them, and
   * their replicas host the state machine of their kind instead of a record log.
   */
  readonly kind?: InternalTopicKind;
}

/** The kinds of internal topics: "group-offsets" is `__consumer_offsets` (groups/coordinator-state.ts). */
export type InternalTopicKind = "group-offsets";
/** Names starting with this are reserved for internal topics. */
export const INTERNAL_TOPIC_PREFIX = "__";

export type MetadataCommand =
  | {
      readonly op: "createTopic";
      readonly name: string;
      readonly partitions: number;
      readonly replicationFactor: number;
      readonly maxRecordBytes: number;
      readonly retentionMs: number;
      /** Creates an internal topic of this kind (absent: a user topic). */
      readonly kind?: InternalTopicKind;
    }
  | { readonly op: "deleteTopic"; readonly name: string }
  /** Allocates a producer id for `name` (a fresh anonymous one if empty), or bumps its epoch. */
  | { readonly op: "initProducer"; readonly name: string };

/**
 * A named idempotent producer: one id for the life of the cluster, and an epoch bumped by every
 * InitProducer so that the previous session (a zombie) is fenced. Anonymous producers (empty
 * name) get a fresh id each time and are not recorded.
 */
export interface ProducerRecord {
  readonly name: string;
  readonly id: number;
  readonly epoch: number;
  /** The controller log index of the init that set this epoch. */
  readonly initIndex: LogIndex;
}

/** Named producers kept at most; an init of a new name beyond it is refused (the frontend checks). */
export const NAMED_PRODUCERS_MAX = 100_000;

interface MetadataImage {
  readonly nodes: readonly NodeRecord[];
  readonly topics: readonly TopicRecord[];
  readonly nextTopicId: number;
  readonly nextGroup: number;
  /** Absent in images written before idempotent producers. */
  readonly producers?: readonly ProducerRecord[];
  readonly nextProducerId?: number;
  /** Absent in images written before internal topics. */
  readonly internalTopics?: readonly TopicRecord[];
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
  /** Internal topics (TopicRecord.kind set), by name; never listed with `topics`. */
  internalTopics = new Map<string, TopicRecord>();
  private nextTopicId = 1;
  private nextGroup = FIRST_PARTITION_GROUP;
  /** Named producers by name, and their current epoch by id. */
  producers = new Map<string, ProducerRecord>();
  private producerEpochs = new Map<number, number>();
  private nextProducerId = 1;
  /** Producer ids allocated by recent inits, by controller log index (for the proposer's answer; not replicated state). */
  private readonly recentInits = new Map<LogIndex, { id: number; epoch: number }>();
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
    this.internalTopics = new Map((image.internalTopics ?? []).map((t) => [t.name, t]));
    this.nextTopicId = image.nextTopicId;
    this.nextGroup = image.nextGroup;
    this.producers = new Map((image.producers ?? []).map((p) => [p.name, p]));
    this.producerEpochs = new Map((image.producers ?? []).map((p) => [p.id, p.epoch]));
    this.nextProducerId = image.nextProducerId ?? 1;
    this.appliedIndex = snapshot.metadata.index;
    this.notify();
  }

  snapshotData(): Uint8Array {
    const image: MetadataImage = {
      nodes: [...this.nodes.values()],
      topics: [...this.topics.values()],
      nextTopicId: this.nextTopicId,
      nextGroup: this.nextGroup,
      producers: [...this.producers.values()],
      nextProducerId: this.nextProducerId,
      internalTopics: [...this.internalTopics.values()],
    };
    return encoder.encode(JSON.stringify(image));
  }

  /** Every partition of every topic, internal ones included (their records have a `kind`), for reconciliation. */
  allPartitions(): { topic: TopicRecord; partition: PartitionRecord }[] {
    const out: { topic: TopicRecord; partition: PartitionRecord }[] = [];
    for (const topic of this.topics.values()) for (const partition of topic.partitions) out.push({ topic, partition });
    for (const topic of this.internalTopics.values()) for (const partition of topic.partitions) out.push({ topic, partition });
    return out;
  }

  private applyCommand(cmd: MetadataCommand, index: LogIndex): boolean {
    switch (cmd.op) {
      case "createTopic":
        return this.applyCreateTopic(cmd, index);
      case "deleteTopic":
        return this.topics.delete(cmd.name);
      case "initProducer":
        this.applyInitProducer(cmd.name, index);
        return false;
      default:
        return false; // an unknown command from a newer version: ignore rather than diverge
    }
  }

  private applyCreateTopic(cmd: Extract<MetadataCommand, { op: "createTopic" }>, index: LogIndex): boolean {
    if (this.topics.has(cmd.name) || this.internalTopics.has(cmd.name)) return false;
    const nodeIds = [...this.nodes.keys()].sort((a, b) => a - b);
    const rf = Math.min(cmd.replicationFactor, nodeIds.length);
    const id = this.nextTopicId++;
    const partitions: PartitionRecord[] = [];
    for (let p = 0; p < cmd.partitions; p++) {
      partitions.push({ partition: p, group: this.nextGroup++, replicas: placeReplicas(nodeIds, rf, id + p) });
    }
    const topic: TopicRecord = {
      name: cmd.name,
      id,
      replicationFactor: rf,
      maxRecordBytes: cmd.maxRecordBytes,
      retentionMs: cmd.retentionMs,
      partitions,
      createdIndex: index,
      ...(cmd.kind === undefined ? {} : { kind: cmd.kind }),
    };
    (topic.kind === undefined ? this.topics : this.internalTopics).set(cmd.name, topic);
    return true;
  }

  /** The current epoch of the named producer with id `id`; undefined for anonymous or unknown ids. */
  producerEpoch(id: number): number | undefined {
    return this.producerEpochs.get(id);
  }

  /** The id and epoch the init at controller index `index` allocated, if it was applied recently. */
  initResult(index: LogIndex): { id: number; epoch: number } | undefined {
    return this.recentInits.get(index);
  }

  private applyInitProducer(name: string, index: LogIndex): void {
    let result: { id: number; epoch: number };
    if (name === "") {
      result = { id: this.nextProducerId++, epoch: 0 };
    } else {
      const known = this.producers.get(name);
      if (known === undefined && this.producers.size >= NAMED_PRODUCERS_MAX) return;
      result = known === undefined ? { id: this.nextProducerId++, epoch: 0 } : { id: known.id, epoch: known.epoch + 1 };
      this.producers.set(name, { name, id: result.id, epoch: result.epoch, initIndex: index });
      this.producerEpochs.set(result.id, result.epoch);
    }
    this.recentInits.set(index, result);
    if (this.recentInits.size > RECENT_INITS_MAX) this.recentInits.delete(this.recentInits.keys().next().value!);
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

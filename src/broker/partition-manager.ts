/**
 * Hosts this node's partition replicas on the multi-raft host: bootstraps new ones from their
 * founding membership, re-opens existing ones from storage, and removes deleted ones. Replicas of
 * user topics get a PartitionState (a record log); replicas of internal topics (TopicRecord.kind)
 * get the state machine that the composition root's factory builds for their kind, so the broker
 * never imports what runs there (the group coordinator, for `__consumer_offsets`).
 */
import { NO_FAILPOINTS, type Failpoints } from "../lib/failpoints.js";
import type { GroupId, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { GroupStateMachine, MultiRaft } from "../multiraft/multiraft.js";
import type { RaftStore } from "../multiraft/ports.js";
import { bootstrapSnapshot } from "../raft/storage.js";
import type { PartitionManager } from "../controller/backend.js";
import type { PartitionRecord, TopicRecord } from "../controller/metadata.js";
import { PartitionState } from "./partition.js";

/** Builds the state machine of a replica of an internal topic (TopicRecord.kind set). */
export type InternalStateFactory = (topic: TopicRecord, partition: PartitionRecord) => GroupStateMachine;

export class BrokerPartitions implements PartitionManager {
  private readonly states = new Map<GroupId, PartitionState>();
  /** Replicas of internal topics. */
  private readonly internal = new Map<GroupId, GroupStateMachine>();

  constructor(
    private readonly nodeId: NodeId,
    private readonly multiraft: MultiRaft,
    private readonly store: RaftStore,
    private readonly log: Logger,
    private readonly internalStates?: InternalStateFactory,
    /** Fault-testing hooks for the partitions' state machines (broker/dedup-off). Default: none. */
    private readonly failpoints: Failpoints = NO_FAILPOINTS,
  ) {}

  hostedGroups(): readonly GroupId[] {
    return [...this.states.keys(), ...this.internal.keys()];
  }

  /** The record log state of a hosted user-topic partition. */
  state(group: GroupId): PartitionState | undefined {
    return this.states.get(group);
  }

  /** The state machine of a hosted internal-topic partition. */
  internalState(group: GroupId): GroupStateMachine | undefined {
    return this.internal.get(group);
  }

  async ensureReplica(topic: TopicRecord, partition: PartitionRecord): Promise<void> {
    if (this.states.has(partition.group) || this.internal.has(partition.group)) return;
    if (topic.kind !== undefined && this.internalStates === undefined) throw new Error(`no state machine is configured for internal topic ${topic.name} (kind ${topic.kind})`);
    const fresh = await bootstrapIfNew(this.store, partition.group, { voters: partition.replicas });
    let state: GroupStateMachine;
    if (topic.kind !== undefined) {
      state = this.internalStates!(topic, partition);
      this.internal.set(partition.group, state);
    } else {
      const records = new PartitionState(partition.group, this.failpoints);
      this.states.set(partition.group, records);
      state = records;
    }
    this.multiraft.addGroup(partition.group, state);
    this.log.info({ group: partition.group, topic: topic.name, partition: partition.partition, replicas: partition.replicas, fresh }, "hosting partition replica");
    // The preferred leader of a new partition campaigns at once instead of after a timeout.
    if (fresh && partition.replicas[0] === this.nodeId) this.multiraft.campaign(partition.group);
  }

  async removeReplica(group: GroupId): Promise<void> {
    this.multiraft.removeGroup(group);
    this.states.delete(group);
    this.internal.delete(group);
    await this.store.dropGroup(group);
    this.log.info({ group }, "removed partition replica");
  }
}

/**
 * Writes the founding membership snapshot of a group that has no stored state yet. Returns
 * whether it did. Every founding replica writes the same snapshot (index 1, term 1).
 */
export async function bootstrapIfNew(
  store: RaftStore,
  group: GroupId,
  members: { readonly voters: readonly NodeId[]; readonly learners?: readonly NodeId[] },
  data?: Uint8Array,
): Promise<boolean> {
  const storage = store.storage(group);
  if (storage.lastIndex() > 0 || storage.snapshot().metadata.index > 0) return false;
  const base = bootstrapSnapshot(members.voters, members.learners ?? []);
  const snapshot = data === undefined ? base : { metadata: base.metadata, data };
  await store.write([{ group, snapshot, entries: [], hardState: { term: 1, vote: 0, commit: 1 } }], true);
  return true;
}

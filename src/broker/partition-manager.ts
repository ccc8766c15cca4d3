/**
 * Hosts this node's partition replicas on the multi-raft host: bootstraps new ones from their
 * founding membership, re-opens existing ones from storage, and removes deleted ones.
 */
import type { GroupId, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { RaftStore } from "../multiraft/ports.js";
import { bootstrapSnapshot } from "../raft/storage.js";
import type { PartitionManager } from "../controller/backend.js";
import type { PartitionRecord, TopicRecord } from "../controller/metadata.js";
import { PartitionState } from "./partition.js";

export class BrokerPartitions implements PartitionManager {
  private readonly states = new Map<GroupId, PartitionState>();

  constructor(
    private readonly nodeId: NodeId,
    private readonly multiraft: MultiRaft,
    private readonly store: RaftStore,
    private readonly log: Logger,
  ) {}

  hostedGroups(): readonly GroupId[] {
    return [...this.states.keys()];
  }

  state(group: GroupId): PartitionState | undefined {
    return this.states.get(group);
  }

  async ensureReplica(topic: TopicRecord, partition: PartitionRecord): Promise<void> {
    if (this.states.has(partition.group)) return;
    const fresh = await bootstrapIfNew(this.store, partition.group, { voters: partition.replicas });
    const state = new PartitionState(partition.group);
    this.states.set(partition.group, state);
    this.multiraft.addGroup(partition.group, state);
    this.log.info({ group: partition.group, topic: topic.name, partition: partition.partition, replicas: partition.replicas, fresh }, "hosting partition replica");
    // The preferred leader of a new partition campaigns at once instead of after a timeout.
    if (fresh && partition.replicas[0] === this.nodeId) this.multiraft.campaign(partition.group);
  }

  async removeReplica(group: GroupId): Promise<void> {
    this.multiraft.removeGroup(group);
    this.states.delete(group);
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

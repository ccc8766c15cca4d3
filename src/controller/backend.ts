/**
 * The controller backend: makes this node's partition replicas match the metadata. After every
 * metadata change it creates the replicas placed on this node and removes those no longer
 * placed here, one change at a time, through the partition manager (the broker implements it;
 * the controller never imports the broker).
 */
import type { GroupId, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { MetadataState, PartitionRecord, TopicRecord } from "./metadata.js";

/** What the backend needs from the broker to host partition replicas. */
export interface PartitionManager {
  /** The partition groups hosted on this node. */
  hostedGroups(): readonly GroupId[];
  /** Hosts a replica of the partition (bootstrapping it if it is new). */
  ensureReplica(topic: TopicRecord, partition: PartitionRecord): Promise<void>;
  /** Stops hosting the replica and deletes its data. */
  removeReplica(group: GroupId): Promise<void>;
}

export class ControllerBackend {
  private running: Promise<void> = Promise.resolve();
  private pending = false;

  constructor(
    private readonly nodeId: NodeId,
    private readonly metadata: MetadataState,
    private readonly partitions: PartitionManager,
    private readonly log: Logger,
  ) {
    metadata.onChange(() => this.schedule());
  }

  /** Reconciles soon; changes that arrive meanwhile are folded into the next pass. */
  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    this.running = this.running.then(async () => {
      this.pending = false;
      await this.reconcile();
    });
  }

  /** Resolves once the reconciliation passes scheduled so far have run. */
  idle(): Promise<void> {
    return this.running;
  }

  private async reconcile(): Promise<void> {
    const wanted = new Set<GroupId>();
    for (const { topic, partition } of this.metadata.allPartitions()) {
      if (!partition.replicas.includes(this.nodeId)) continue;
      wanted.add(partition.group);
      try {
        await this.partitions.ensureReplica(topic, partition);
      } catch (e) {
        this.log.error({ group: partition.group, topic: topic.name, err: String(e) }, "failed to create partition replica");
      }
    }
    for (const group of this.partitions.hostedGroups()) {
      if (wanted.has(group)) continue;
      try {
        await this.partitions.removeReplica(group);
      } catch (e) {
        this.log.error({ group, err: String(e) }, "failed to remove partition replica");
      }
    }
  }
}

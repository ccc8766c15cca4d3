/**
 * An in-process raftmq cluster for broker tests: per node a memory raft store, a multi-raft host
 * on a loopback transport, the controller (metadata, frontend, backend) and the broker, wired like
 * server/node.ts does but without gRPC. Time is real (short ticks) except the wall clock, which a
 * test can shift to age records for retention. With `groups: true` every node also hosts the
 * consumer group coordinator and the offsets topic is created (as on real nodes).
 */
import type { Clock, TimerHandle } from "../../lib/clock.js";
import { BrokerError } from "../../lib/errors.js";
import { NO_FAILPOINTS, type Failpoints } from "../../lib/failpoints.js";
import type { GroupId, NodeId } from "../../lib/ids.js";
import { silentLogger } from "../../lib/logger.js";
import { SeededRandom } from "../../lib/random.js";
import { MultiRaft } from "../../multiraft/multiraft.js";
import type { RaftStore } from "../../multiraft/ports.js";
import { LoopbackHub } from "../../multiraft/testing/loopback-transport.js";
import { openMemoryRaftStore, type MemoryRaftStore } from "../../storage/memory/memory-raft-store.js";
import { ControllerBackend } from "../../controller/backend.js";
import { ControllerFrontend, type CreateTopicSpec } from "../../controller/frontend.js";
import { CONTROLLER_GROUP, MetadataState, initialMetadata, type TopicRecord } from "../../controller/metadata.js";
import { GroupCoordinator } from "../../groups/coordinator.js";
import { GroupCoordinatorState } from "../../groups/coordinator-state.js";
import { ensureOffsetsTopic } from "../../groups/offsets-topic.js";
import { Broker } from "../broker.js";
import { BrokerPartitions, bootstrapIfNew } from "../partition-manager.js";

/** Real timers and monotonic time; a wall clock that tests can move forward. */
export class ShiftableClock implements Clock {
  private shiftMs = 0;

  monotonicMs(): number {
    return performance.now();
  }

  wallMs(): number {
    return Date.now() + this.shiftMs;
  }

  /** Moves the wall clock (record timestamps, retention's "now") forward by `ms`. */
  shiftWall(ms: number): void {
    this.shiftMs += ms;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (delayMs <= 0) {
      const handle = setImmediate(fn);
      return { cancel: () => clearImmediate(handle) };
    }
    const handle = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(handle) };
  }
}

export interface TestNode {
  readonly id: NodeId;
  readonly address: string;
  readonly store: MemoryRaftStore;
  readonly multiraft: MultiRaft;
  readonly metadata: MetadataState;
  readonly partitions: BrokerPartitions;
  readonly backend: ControllerBackend;
  readonly frontend: ControllerFrontend;
  readonly broker: Broker;
  /** With ClusterOptions.groups only. */
  readonly coordinator: GroupCoordinator | undefined;
  /** Stops the node's group loops (coordinator maintenance, offsets topic creation). */
  readonly stopGroups: () => void;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly seed: number;
  /** Default 10 ms. */
  readonly tickIntervalMs?: number;
  /** Default 10 ticks. */
  readonly electionTicks?: number;
  /**
   * Wraps the store that a node's Broker reads records through (the multi-raft host keeps the
   * plain one), e.g. to make consumer reads slow like disk reads.
   */
  readonly brokerStore?: (store: MemoryRaftStore, id: NodeId) => RaftStore;
  /** Host consumer groups (the coordinator and the `__consumer_offsets` topic). Default false. */
  readonly groups?: boolean;
  /** Fault-testing hooks given to every node's broker and partitions (lib/failpoints.ts). Default none. */
  readonly failpoints?: Failpoints;
}

const REQUEST_TIMEOUT_MS = 3_000;

export const addressOfNode = (id: NodeId): string => `127.0.0.1:${7000 + id}`;

export class InProcessCluster {
  private readonly nodeList: TestNode[];

  private constructor(
    nodes: TestNode[],
    readonly hub: LoopbackHub,
    readonly clock: ShiftableClock,
    private readonly options: ClusterOptions,
  ) {
    this.nodeList = nodes;
  }

  get nodes(): readonly TestNode[] {
    return this.nodeList;
  }

  static async start(options: ClusterOptions): Promise<InProcessCluster> {
    const c = new InProcessCluster([], new LoopbackHub(), new ShiftableClock(), options);
    for (let id = 1; id <= options.nodes; id++) c.nodeList.push(await c.buildNode(id, await openMemoryRaftStore({ nodeId: id })));
    c.nodeList[0]!.multiraft.campaign(CONTROLLER_GROUP);
    return c;
  }

  /** Wires one node on `store` (bootstrapping the controller group if the store is new) and starts it. */
  private async buildNode(id: NodeId, store: MemoryRaftStore): Promise<TestNode> {
    const ids = Array.from({ length: this.options.nodes }, (_, i) => i + 1);
    const multiraft = new MultiRaft({
      nodeId: id,
      store,
      transport: this.hub.endpoint(id),
      clock: this.clock,
      random: new SeededRandom(this.options.seed * 1000 + id),
      logger: silentLogger,
      tickIntervalMs: this.options.tickIntervalMs ?? 10,
      // As the nodes run (src/server/node.ts): idle groups quiesce, commits propagate lazily.
      raft: { electionTicks: this.options.electionTicks ?? 10, heartbeatTicks: 1, quiesce: true, lazyCommit: true },
      onFatal: (e) => {
        // A fatal error in a test node is a test failure: make it loud.
        console.error(`node ${id}: fatal`, e);
        process.exitCode = 1;
      },
    });
    const metadata = new MetadataState();
    const addressOf = (n: NodeId): string | undefined => metadata.nodes.get(n)?.address;
    await bootstrapIfNew(store, CONTROLLER_GROUP, { voters: ids }, initialMetadata(ids.map((n) => ({ id: n, address: addressOfNode(n) }))));
    const groups = this.options.groups === true;
    const failpoints = this.options.failpoints ?? NO_FAILPOINTS;
    const partitions = new BrokerPartitions(id, multiraft, store, silentLogger, groups ? (_t, p) => new GroupCoordinatorState(p.group) : undefined, failpoints);
    const backend = new ControllerBackend(id, metadata, partitions, silentLogger);
    // Every node answers metadata from its replica and partition leaders fence producers with it:
    // the controller's followers learn each commit at once.
    multiraft.addGroup(CONTROLLER_GROUP, metadata, { lazyCommit: false });
    const frontend = new ControllerFrontend(multiraft, metadata, addressOf, REQUEST_TIMEOUT_MS);
    const broker = new Broker(metadata, partitions, multiraft, this.options.brokerStore?.(store, id) ?? store, this.clock, addressOf, failpoints);
    multiraft.start();
    if (!groups) return { id, address: addressOfNode(id), store, multiraft, metadata, partitions, backend, frontend, broker, coordinator: undefined, stopGroups: () => {} };
    const coordinator = new GroupCoordinator({
      nodeId: id,
      multiraft,
      metadata,
      stateOf: (g) => {
        const s = partitions.internalState(g);
        return s instanceof GroupCoordinatorState ? s : undefined;
      },
      partitionOffsets: (topic, partition) => {
        const p = metadata.topics.get(topic)?.partitions[partition];
        const s = p === undefined ? undefined : partitions.state(p.group);
        return s === undefined ? undefined : { logStartOffset: s.logStartOffset, highWatermark: s.nextOffset };
      },
      clock: this.clock,
      random: new SeededRandom(this.options.seed * 1000 + id + 500),
      addressOf,
      log: silentLogger,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    coordinator.start();
    const topicLoop = ensureOffsetsTopic(frontend, metadata, this.clock, silentLogger);
    const stopGroups = (): void => {
      topicLoop.stop();
      coordinator.close();
    };
    return { id, address: addressOfNode(id), store, multiraft, metadata, partitions, backend, frontend, broker, coordinator, stopGroups };
  }

  /** Stops node `id` cleanly and starts it again on the same (memory) disk. */
  async restart(id: NodeId): Promise<TestNode> {
    const at = this.nodeList.findIndex((n) => n.id === id);
    const old = this.nodeList[at]!;
    old.stopGroups();
    await old.multiraft.close();
    await old.backend.idle();
    await old.store.close();
    this.hub.detach(id);
    const store = await openMemoryRaftStore({ nodeId: id, disk: old.store.disk });
    const node = await this.buildNode(id, store);
    this.nodeList[at] = node;
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** The node leading `group` (and known as leader by itself), waiting for one. */
  async leaderOf(group: GroupId, timeoutMs = 5_000): Promise<TestNode> {
    return waitFor(`a leader of group ${group}`, () => this.nodes.find((n) => n.multiraft.status(group)?.role === "leader"), timeoutMs);
  }

  /** Creates a topic through the controller leader and waits until every partition has a leader. */
  async createTopic(spec: CreateTopicSpec): Promise<TopicRecord> {
    const controller = await this.leaderOf(CONTROLLER_GROUP);
    const topic = await controller.frontend.createTopic(spec);
    for (const p of topic.partitions) {
      await waitFor(`partition ${spec.name}/${p.partition} hosted on all replicas`, () =>
        p.replicas.every((id) => this.node(id).metadata.topics.has(spec.name) && this.node(id).partitions.state(p.group) !== undefined) || undefined,
      );
      await this.leaderOf(p.group);
    }
    return topic;
  }

  /** The node leading partition `partition` of `topic`. */
  async partitionLeader(topic: string, partition = 0): Promise<TestNode> {
    const any = this.nodes[0]!;
    const record = await waitFor(`topic ${topic} known`, () => any.metadata.topics.get(topic));
    return this.leaderOf(record.partitions[partition]!.group);
  }

  async close(): Promise<void> {
    for (const n of this.nodes) n.stopGroups();
    for (const n of this.nodes) await n.multiraft.close();
    for (const n of this.nodes) await n.backend.idle();
    for (const n of this.nodes) await n.store.close();
  }
}

/**
 * A store whose readEntries() waits until `open()` is called before reading — a consumer read
 * held up on disk while other things (compaction) happen.
 */
export class GatedReads {
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  /** Reads that have started and are waiting at the gate. */
  waiting = 0;

  /** Holds every read that starts from now on until open(). */
  close(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.release();
  }

  wrap(store: RaftStore): RaftStore {
    return new Proxy(store, {
      get: (target, prop, receiver) => {
        if (prop === "readEntries") {
          return async (...args: Parameters<RaftStore["readEntries"]>) => {
            this.waiting++;
            await this.gate;
            this.waiting--;
            return target.readEntries(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}

/** Polls `fn` until it returns something other than undefined/false. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Retries `fn` while it fails with a retriable error (no leader yet, proposal dropped). */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const retriable = e instanceof BrokerError && (e.code === "NOT_LEADER" || e.code === "PROPOSAL_DROPPED");
      if (!retriable || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

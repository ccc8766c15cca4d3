/**
 * The cluster a benchmark run measures: a LocalCluster of `nodes` processes on free loopback
 * ports, with its data in a fresh folder under the OS temp folder, and a topic whose partitions
 * all have a leader. close() stops every node by PID (SIGTERM, then SIGKILL) and removes the
 * folder; it is idempotent and safe to call from a signal handler while start-up is in progress.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerError, connect, type RaftmqClient, type TopicInfo } from "../../src/client/index.js";
import { LocalCluster } from "../local-cluster.js";
import { LOOP_DELAY_DIR_ENV, readLoopDelay, type LoopDelaySummary } from "./loop-delay.js";

export interface BenchClusterOptions {
  readonly nodes: number;
  readonly logLevel: string;
  /** Node.js flags of the nodes (e.g. --cpu-prof). */
  readonly execArgv: readonly string[];
  readonly keepData: boolean;
  /** Load loop-delay-probe.js into the nodes, writing into the data folder; see loopDelay(). */
  readonly loopDelayProbe: boolean;
  /** Told about a node that exits while the benchmark runs (a crash). */
  readonly onUnexpectedExit: (nodeId: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

const HEALTHY_TIMEOUT_MS = 30_000;
/** How long a wait for the partitions of a topic may take: a base, plus a share per partition. */
const LEADERS_TIMEOUT_BASE_MS = 30_000;
const LEADERS_TIMEOUT_PER_PARTITION_MS = 60;
/** The pause between two polls of such a wait: at least this, and partitions / POLL_PARTITIONS_PER_MS ms. */
const POLL_MS_MIN = 100;
const POLL_PARTITIONS_PER_MS = 10;
/** How often a wait reports its progress. */
const PROGRESS_MS = 2_000;
const STOP_TIMEOUT_MS = 15_000;
const LOOP_DELAY_PROBE_URL = new URL("./loop-delay-probe.js", import.meta.url).href;

/** Progress of a wait for the partitions of a topic (createTopic(), waitInSync()). */
export interface PartitionsWait {
  /** Partitions that are there: led (createTopic), every replica in sync (waitInSync). */
  readonly done: number;
  readonly partitions: number;
  readonly waitedMs: number;
  readonly timeoutMs: number;
}

/**
 * The bound on a wait for the partitions of a topic: 30 s + 60 ms per partition (90 s for 1,000,
 * 630 s for 10,000 partitions); createTopic() and waitInSync() each have one.
 */
export function leadersTimeoutMs(partitions: number): number {
  return LEADERS_TIMEOUT_BASE_MS + LEADERS_TIMEOUT_PER_PARTITION_MS * partitions;
}

export class BenchCluster {
  readonly dataDir: string;
  private cluster: LocalCluster | undefined;
  /** LocalCluster.start() in progress (it only spawns, so it is short); close() waits for it. */
  private spawning: Promise<LocalCluster> | undefined;
  private admin: RaftmqClient | undefined;
  private closing: Promise<void> | undefined;
  private stopping = false;
  private readonly removeDataNow = (): void => {
    if (!this.options.keepData) rmSync(this.dataDir, { recursive: true, force: true });
  };

  private constructor(private readonly options: BenchClusterOptions) {
    this.dataDir = mkdtempSync(join(tmpdir(), "raftmq-bench-"));
  }

  /** Creates the data folder; call start() next (separately, so close() can reach a half-started cluster). */
  static create(options: BenchClusterOptions): BenchCluster {
    return new BenchCluster(options);
  }

  /** Spawns the nodes and waits until every one knows a controller leader. */
  async start(): Promise<void> {
    if (this.stopping) throw new Error("the benchmark cluster was closed before it started");
    const probe = this.options.loopDelayProbe;
    this.spawning = LocalCluster.start(this.options.nodes, {
      dataDir: this.dataDir,
      logLevel: this.options.logLevel,
      execArgv: probe ? [...this.options.execArgv, "--import", LOOP_DELAY_PROBE_URL] : this.options.execArgv,
      ...(probe ? { env: { [LOOP_DELAY_DIR_ENV]: this.dataDir } } : {}),
      stopTimeoutMs: STOP_TIMEOUT_MS,
      onExit: (id, code, signal) => {
        if (!this.stopping) this.options.onUnexpectedExit(id, code, signal);
      },
    });
    this.cluster = await this.spawning;
    // Registered after LocalCluster's exit hook (which SIGKILLs the nodes), so it runs after it: if
    // this process exits without close(), the data folder goes too.
    process.on("exit", this.removeDataNow);
    await this.cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
    this.admin = connect({ brokers: this.cluster.brokers() });
  }

  brokers(): string[] {
    return this.live().brokers();
  }

  /** Node ids and PIDs, in id order. */
  processes(): Array<{ id: number; pid: number }> {
    return this.live().nodes.map((n) => ({ id: n.id, pid: n.pid ?? -1 }));
  }

  /**
   * Creates `name` and waits until every partition has a leader, at most leadersTimeoutMs(partitions)
   * (1000 partitions x 3 replicas are 3000 Raft groups to start and elect); returns the topic as
   * then described. `onWait` hears, every 2 s of waiting, how many partitions have a leader.
   */
  async createTopic(name: string, partitions: number, replication: number, onWait?: (wait: PartitionsWait) => void): Promise<TopicInfo> {
    const admin = this.admin ?? assertNever("start() first");
    await admin.createTopic(name, { partitions, replicationFactor: replication });
    return this.pollPartitions(`topic ${name}`, "had a leader", partitions, onWait, async () => {
      // The answering node may not have applied the new topic yet: UNKNOWN_TOPIC means "ask again".
      const topic = await admin.describeTopic(name).catch((e: unknown) => {
        if (e instanceof BrokerError && e.code === "UNKNOWN_TOPIC") return undefined;
        throw e;
      });
      const led = topic?.partitions.filter((p) => p.leader > 0).length ?? 0;
      return { done: led, value: topic !== undefined && topic.partitions.length === partitions ? topic : undefined };
    });
  }

  /**
   * Waits until every replica of every partition of `name` is in sync: each partition's leader
   * (asked directly: only a leader knows its followers' progress) lists all its replicas as
   * caught up with its commit index. So every node has created its replicas and the creation
   * traffic is over. At most leadersTimeoutMs(partitions); `onWait` hears every 2 s how many
   * partitions are there.
   */
  async waitInSync(name: string, partitions: number, onWait?: (wait: PartitionsWait) => void): Promise<void> {
    const admin = this.admin ?? assertNever("start() first");
    const cluster = this.live();
    await this.pollPartitions(`topic ${name}`, "had every replica in sync", partitions, onWait, async () => {
      const views = await Promise.all(cluster.nodes.map((n) => admin.metadataFrom(n.address, { topics: [name] }).catch(() => undefined)));
      let inSync = 0;
      for (const view of views) {
        const topic = view?.topics.find((t) => t.name === name);
        for (const p of topic?.partitions ?? []) {
          if (p.leader === view!.nodeId && p.replicas.every((r) => p.inSync.includes(r))) inSync++;
        }
      }
      return { done: inSync, value: true };
    });
  }

  /**
   * Calls `count` until it reports all `partitions` done (with a value), at most
   * leadersTimeoutMs(partitions); reports progress every 2 s. Between calls it waits 100 ms, or
   * partitions / 10 ms above 1,000 partitions, so that describing a large topic (every partition
   * encoded by a node and decoded here) does not slow down what it waits for.
   */
  private async pollPartitions<T>(
    what: string,
    state: string,
    partitions: number,
    onWait: ((wait: PartitionsWait) => void) | undefined,
    count: () => Promise<{ done: number; value: T | undefined }>,
  ): Promise<T> {
    const timeoutMs = leadersTimeoutMs(partitions);
    const pollMs = Math.max(POLL_MS_MIN, partitions / POLL_PARTITIONS_PER_MS);
    const startMs = Date.now();
    let reportedMs = startMs;
    for (;;) {
      const { done, value } = await count();
      if (value !== undefined && done === partitions) return value;
      const now = Date.now();
      if (now - startMs > timeoutMs) throw new Error(`${what}: only ${done} of ${partitions} partitions ${state} within ${timeoutMs} ms`);
      if (now - reportedMs >= PROGRESS_MS) {
        reportedMs = now;
        onWait?.({ done, partitions, waitedMs: now - startMs, timeoutMs });
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** The topic as a node describes it now (leaders, terms, replicas of every partition). */
  describeTopic(name: string): Promise<TopicInfo> {
    return (this.admin ?? assertNever("start() first")).describeTopic(name);
  }

  /**
   * The event-loop delay of process `pid` over the Date.now() window (fromMs, toMs], from the
   * probe's file (loopDelayProbe); undefined without the probe or before its first line.
   */
  loopDelay(pid: number, fromMs: number, toMs: number): LoopDelaySummary | undefined {
    return this.options.loopDelayProbe ? readLoopDelay(this.dataDir, pid, fromMs, toMs) : undefined;
  }

  /** The last lines of a node's output, for error reports. */
  logTail(id: number): readonly string[] {
    return this.cluster?.logTail(id) ?? [];
  }

  /** Stops every node by PID and removes the data folder (unless keepData). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      try {
        await this.admin?.close();
        const cluster = this.cluster ?? (await this.spawning?.catch(() => undefined));
        await cluster?.stop();
      } finally {
        process.removeListener("exit", this.removeDataNow);
        this.removeDataNow();
      }
    })();
    return this.closing;
  }

  private live(): LocalCluster {
    return this.cluster ?? assertNever("start() first");
  }
}

function assertNever(message: string): never {
  throw new Error(`BenchCluster: ${message}`);
}

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

export interface BenchClusterOptions {
  readonly nodes: number;
  readonly logLevel: string;
  /** Node.js flags of the nodes (e.g. --cpu-prof). */
  readonly execArgv: readonly string[];
  readonly keepData: boolean;
  /** Told about a node that exits while the benchmark runs (a crash). */
  readonly onUnexpectedExit: (nodeId: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

const HEALTHY_TIMEOUT_MS = 30_000;
/** How long createTopic() waits for every partition to have a leader: a base, plus a share per partition. */
const LEADERS_TIMEOUT_BASE_MS = 30_000;
const LEADERS_TIMEOUT_PER_PARTITION_MS = 60;
const LEADERS_POLL_MS = 100;
/** How often createTopic() reports how many partitions have a leader. */
const LEADERS_PROGRESS_MS = 2_000;
const STOP_TIMEOUT_MS = 15_000;

/** Progress of createTopic()'s wait for partition leaders. */
export interface LeadersWait {
  /** Partitions that have a leader. */
  readonly led: number;
  readonly partitions: number;
  readonly waitedMs: number;
  readonly timeoutMs: number;
}

/** createTopic()'s bound on the wait for every partition to have a leader: 30 s + 60 ms per partition. */
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
    this.spawning = LocalCluster.start(this.options.nodes, {
      dataDir: this.dataDir,
      logLevel: this.options.logLevel,
      execArgv: this.options.execArgv,
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
  async createTopic(name: string, partitions: number, replication: number, onWait?: (wait: LeadersWait) => void): Promise<TopicInfo> {
    const admin = this.admin ?? assertNever("start() first");
    await admin.createTopic(name, { partitions, replicationFactor: replication });
    const timeoutMs = leadersTimeoutMs(partitions);
    const startMs = Date.now();
    let reportedMs = startMs;
    let led = 0;
    for (;;) {
      // The answering node may not have applied the new topic yet: UNKNOWN_TOPIC means "ask again".
      const topic = await admin.describeTopic(name).catch((e: unknown) => {
        if (e instanceof BrokerError && e.code === "UNKNOWN_TOPIC") return undefined;
        throw e;
      });
      led = topic?.partitions.filter((p) => p.leader > 0).length ?? 0;
      if (topic !== undefined && topic.partitions.length === partitions && led === partitions) return topic;
      const now = Date.now();
      if (now - startMs > timeoutMs) throw new Error(`topic ${name}: only ${led} of ${partitions} partitions had a leader within ${timeoutMs} ms`);
      if (now - reportedMs >= LEADERS_PROGRESS_MS) {
        reportedMs = now;
        onWait?.({ led, partitions, waitedMs: now - startMs, timeoutMs });
      }
      await new Promise((r) => setTimeout(r, LEADERS_POLL_MS));
    }
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

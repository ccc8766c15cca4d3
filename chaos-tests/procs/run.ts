/**
 * One chaos run on real processes: a local cluster whose node-to-node links go through
 * fault-injecting proxies, the workload (workload.ts) recording a history, a fault schedule
 * (faults.ts), then healing, a final drain and the checker (checker.ts).
 *
 *   start cluster ─► create topics ─► workload ─► faults for the duration ─► heal everything
 *     ─► stop producing (sends settle) ─► consumers catch up and close ─► drain ─► check
 *
 * Negative controls run the same way with one planted fault switched on in every node by a
 * failpoint (RAFTMQ_FAILPOINTS): the checker must then report violations.
 */
import { closeSync, cpSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, truncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { connect, type RaftmqClient } from "../../src/client/index.js";
import { SeededRandom, type Random } from "../../src/lib/random.js";
import { startLocalCluster, within, type LocalCluster } from "../../cluster/local-cluster.js";
import { checkHistory, type CheckResult } from "./checker.js";
import { runSchedule, type Fault, type FaultCommand, type FaultTarget } from "./faults.js";
import { HistoryWriter } from "./history.js";
import { drain, sleep, Workload } from "./workload.js";

/** Planted faults for negative controls: each must make the checker fail. */
export const CONTROLS = {
  "lose-unsynced": "storage/lose-unsynced=on",
  "ack-before-quorum": "broker/ack-before-quorum=on",
  "dedup-off": "broker/dedup-off=on",
} as const;
export type Control = keyof typeof CONTROLS;

export interface RunOptions {
  readonly seed: number;
  readonly schedule: readonly FaultCommand[];
  /** How long the workload runs under faults (the schedule fits into it). */
  readonly durationMs: number;
  /** Folder for this run's node data, logs and history. */
  readonly dir: string;
  readonly nodes?: number;
  readonly partitions?: number;
  /** Records per second over all producers. Default 1000. */
  readonly rate?: number;
  readonly control?: Control;
  /** Run the nodes with power-loss emulation: a kill -9 also loses writes that were never fsynced. */
  readonly powerLoss?: boolean;
  readonly log?: (line: string) => void;
}

export interface RunReport {
  readonly seed: number;
  readonly check: CheckResult;
  /** Faults injected, by kind. */
  readonly faults: Readonly<Record<string, number>>;
  /** Corruptions the node did not refuse (it started and served): each is a violation. */
  readonly corruptionUndetected: number;
  /** Node exits the harness did not cause (a crash, a fatal error), with their last log lines: each is a violation. */
  readonly unexpectedExits: readonly string[];
  /** Storage-crash failpoints that fired / that were armed. */
  readonly failpointsFired: number;
  readonly failpointsArmed: number;
  readonly wallMs: number;
  readonly historyFile: string;
  /** True when the check passed, every corruption was refused and no node exited on its own. */
  readonly valid: boolean;
}

const TOPIC = "chaos";
const RETAINED_TOPIC = "chaos-retained";
const GROUP = "chaos-group";
const HEALTHY_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 60_000;
const CATCH_UP_TIMEOUT_MS = 60_000;
const DRAIN_TIMEOUT_MS = 120_000;
const REFUSE_TIMEOUT_MS = 15_000;

/** The run could not start (before any fault): a harness or environment problem, never a verdict. */
export class SetupError extends Error {
  override readonly name = "SetupError";
}

export async function runChaos(o: RunOptions): Promise<RunReport> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const n = o.nodes ?? 3;
  const partitions = o.partitions ?? 6;
  rmSync(o.dir, { recursive: true, force: true }); // a fresh cluster every run
  mkdirSync(o.dir, { recursive: true });
  const historyFile = join(o.dir, "history.jsonl");
  const history = new HistoryWriter(historyFile);
  const random = new SeededRandom(o.seed);
  const baseFailpoints = [o.control !== undefined ? CONTROLS[o.control] : undefined, o.powerLoss ? "storage/power-loss=on" : undefined].filter((x) => x !== undefined).join(",");
  const crashedBy = new Map<number, string>();
  const exits = new ExitWatch();
  const cluster: LocalCluster = await startLocalCluster(n, {
    dataDir: o.dir,
    linkProxies: true,
    logLevel: "warn",
    env: baseFailpoints === "" ? {} : { RAFTMQ_FAILPOINTS: baseFailpoints },
    nodeArgs: ["--retention-check-interval-ms", "1000"],
    stopTimeoutMs: 10_000,
    onLog: (id, line) => {
      const m = /failpoint (\S+): crashing/.exec(line);
      if (m !== null) crashedBy.set(id, m[1]!);
    },
    onExit: (id, code, signal) => exits.exited(id, code, signal, () => cluster.logTail(id)),
  });
  let admin: RaftmqClient | undefined;
  let workload: Workload | undefined;
  try {
    try {
      await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
      admin = connect({ brokers: cluster.brokers() });
      await admin.createTopic(TOPIC, { partitions, replicationFactor: Math.min(3, n) });
      // A small topic with a short retention: its partitions compact and snapshot all the time, so
      // snapshot writes and installs happen during the run. Not part of the history.
      await admin.createTopic(RETAINED_TOPIC, { partitions: 2, replicationFactor: Math.min(3, n), retentionMs: 1_000 });
      await waitLeaders(admin, TOPIC, partitions, HEALTHY_TIMEOUT_MS);
    } catch (e) {
      throw new SetupError(`the run could not start: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    log(`cluster up (${n} nodes, pids ${cluster.nodes.map((x) => x.pid).join(",")}); ${o.schedule.length} faults scheduled`);

    workload = new Workload({
      brokers: () => cluster.brokers(),
      topic: TOPIC,
      partitions,
      group: GROUP,
      history,
      random: random.fork(),
      rate: o.rate ?? 1_000,
      idempotentProducers: 3,
      plainProducers: 1,
      consumers: 3,
      keys: 16,
      bodyBytes: 100,
      inFlightMax: 2_000,
    });
    workload.start();
    const retained = startRetainedLoad(cluster);

    const target = new ClusterFaults(cluster, workload, history, random.fork(), baseFailpoints, crashedBy, exits, partitions, log);
    const faultsStart = Date.now();
    await runSchedule(o.schedule, o.durationMs, target);
    await target.healAll();
    const rest = o.durationMs - (Date.now() - faultsStart);
    if (rest > 0) await sleep(rest);
    retained.stop();
    await retained.done;

    log(`faults done; ${workload.acknowledged} records acknowledged; settling`);
    await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
    const down = cluster.nodes.filter((x) => !x.running).map((x) => x.id);
    if (down.length > 0) throw new Error(`nodes ${down.join(", ")} are not running after every fault was healed: ${exits.unexpected.join("; ")}`);
    await waitLeaders(admin, TOPIC, partitions, HEALTHY_TIMEOUT_MS);
    await withTimeout(workload.stopProducing(), SETTLE_TIMEOUT_MS, "producers did not settle");
    const ends = await endOffsets(admin, partitions);
    const caughtUp = await workload.awaitConsumersCaughtUp(ends, CATCH_UP_TIMEOUT_MS);
    if (!caughtUp) log("consumers did not reach the end offsets in time; the checker will count what they missed as unseen");
    await withTimeout(workload.stopConsumers(), SETTLE_TIMEOUT_MS, "consumers did not close");
    await drain(admin, TOPIC, partitions, history, DRAIN_TIMEOUT_MS);
    const check = checkHistory(history.events);
    exits.stopping = true;
    return {
      seed: o.seed,
      check,
      faults: Object.fromEntries(target.injected),
      corruptionUndetected: target.corruptionUndetected,
      unexpectedExits: [...exits.unexpected],
      failpointsFired: target.failpointsFired,
      failpointsArmed: target.failpointsArmed,
      wallMs: Date.now() - t0,
      historyFile,
      valid: check.valid && target.corruptionUndetected === 0 && exits.unexpected.length === 0,
    };
  } finally {
    exits.stopping = true;
    await workload?.close().catch(() => {});
    await admin?.close().catch(() => {});
    await cluster.stop();
    await history.close();
  }
}

/**
 * Tells the exits the harness caused (kill -9, SIGTERM, a failpoint crash it armed, a refused
 * corrupt store) from the others: a node that exits on its own (an assertion, a fatal storage
 * error) is a violation, even when the cluster carries on without it.
 */
class ExitWatch {
  private readonly expected = new Set<number>();
  readonly unexpected: string[] = [];
  stopping = false;

  /** The next exit of node `id` is the harness's doing. */
  expect(id: number): void {
    this.expected.add(id);
  }

  exited(id: number, code: number | null, signal: NodeJS.Signals | null, tail: () => readonly string[]): void {
    if (this.stopping || this.expected.delete(id)) return;
    const last = tail().slice(-3).map((l) => l.slice(0, 300)).join(" | ");
    this.unexpected.push(`node ${id} exited on its own (${signal ?? `code ${code}`}): ${last}`);
  }
}

/** Injects faults into the local cluster; see faults.ts for the kinds. */
class ClusterFaults implements FaultTarget {
  readonly injected = new Map<string, number>();
  corruptionUndetected = 0;
  failpointsFired = 0;
  failpointsArmed = 0;
  private readonly n: number;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly workload: Workload,
    private readonly history: HistoryWriter,
    private readonly random: Random,
    private readonly baseFailpoints: string,
    private readonly crashedBy: Map<number, string>,
    private readonly exits: ExitWatch,
    private readonly partitions: number,
    private readonly log: (line: string) => void,
  ) {
    this.n = cluster.nodes.length;
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  async inject(f: Fault): Promise<void> {
    this.injected.set(f.kind, (this.injected.get(f.kind) ?? 0) + 1);
    const detail = (extra: object = {}): string => JSON.stringify({ ...f, ...extra });
    switch (f.kind) {
      case "kill": {
        const id = f.leader ? this.leaderNode(f.pick) : this.anyNode(f.pick);
        await this.killNodes([id], f.kind, detail({ node: id }));
        await sleep(f.downMs);
        return this.restartNodes([id], f.kind);
      }
      case "kill-majority": {
        const first = this.leaderNode(f.pick);
        const ids = [first, ...this.others(first)].slice(0, Math.floor(this.n / 2) + 1);
        await this.killNodes(ids, f.kind, detail({ nodes: ids }));
        await sleep(f.downMs);
        return this.restartNodes(ids, f.kind);
      }
      case "kill-all": {
        const ids = this.cluster.nodes.map((x) => x.id);
        await this.killNodes(ids, f.kind, detail());
        await sleep(f.downMs);
        return this.restartNodes(ids, f.kind);
      }
      case "pause": {
        const id = f.leader ? this.leaderNode(f.pick) : this.anyNode(f.pick);
        this.cluster.kill(id, "SIGSTOP");
        this.fault(f.kind, detail({ node: id }));
        await sleep(f.pausedMs);
        this.cluster.kill(id, "SIGCONT");
        return this.heal(f.kind);
      }
      case "partition": {
        const links = this.mesh();
        const leader = this.leaderNode(f.pick);
        const [a, b] = this.others(leader);
        if (f.shape === "isolate-leader") links.isolate(leader);
        else if (f.shape === "one-way") {
          if (f.pick % 2 === 0) links.oneWay(leader, a!);
          else links.oneWay(a!, leader);
        } else links.bridge([leader], [a!], b!);
        this.fault(f.kind, detail({ leader, cut: links.describe() }));
        await sleep(f.healAfterMs);
        links.heal();
        return this.heal(f.kind);
      }
      case "link-delay": {
        this.mesh().setDelay(f.delayMs);
        this.fault(f.kind, detail());
        await sleep(f.forMs);
        this.mesh().heal();
        return this.heal(f.kind);
      }
      case "link-drop": {
        this.mesh().dropFor(f.dropMs);
        this.fault(f.kind, detail());
        await sleep(f.dropMs + 100);
        this.mesh().heal();
        return this.heal(f.kind);
      }
      case "link-reset": {
        this.fault(f.kind, detail());
        for (let i = 0; i < f.times; i++) {
          this.mesh().resetAll();
          await sleep(this.random.int(500));
        }
        return this.heal(f.kind);
      }
      case "transfer": {
        // SIGTERM makes a node hand its leaderships off (TimeoutNow) before it stops.
        const id = this.leaderNode(f.pick);
        this.fault(f.kind, detail({ node: id }));
        if (this.cluster.node(id).running) this.exits.expect(id);
        this.cluster.kill(id, "SIGTERM");
        await withTimeout(this.cluster.exited(id), 15_000, `node ${id} did not stop after SIGTERM`);
        await sleep(f.downMs);
        return this.restartNodes([id], f.kind);
      }
      case "storage-crash":
        return this.storageCrash(f);
      case "corrupt":
        return this.corrupt(f);
    }
  }

  /** Heals everything that may still be disturbed: links, paused and stopped nodes. */
  async healAll(): Promise<void> {
    this.cluster.links?.heal();
    for (const x of this.cluster.nodes) {
      if (x.running) this.cluster.kill(x.id, "SIGCONT");
      else this.cluster.startNode(x.id);
    }
  }

  private async storageCrash(f: Extract<Fault, { kind: "storage-crash" }>): Promise<void> {
    const id = this.anyNode(f.pick);
    this.crashedBy.delete(id);
    this.failpointsArmed++;
    await this.killNodes([id], f.kind, detail(f, { node: id }));
    const spec = [this.baseFailpoints, `${f.failpoint}=crash:${f.hit}`].filter((s) => s !== "").join(",");
    this.exits.expect(id); // it crashes by the failpoint, or the harness kills it after 6 s
    this.cluster.startNode(id, { env: { RAFTMQ_FAILPOINTS: spec } });
    const crashed = await within(this.cluster.exited(id), 6_000);
    if (crashed && this.crashedBy.get(id) === f.failpoint) this.failpointsFired++;
    if (!crashed) {
      this.cluster.kill(id, "SIGKILL");
      await this.cluster.exited(id);
    }
    this.log(`storage-crash ${f.failpoint}=crash:${f.hit} on node ${id}: ${crashed ? `crashed (${this.crashedBy.get(id) ?? "not by the failpoint"})` : "did not fire within 6 s; killed"}`);
    return this.restartNodes([id], f.kind);
  }

  /**
   * kill -9, damage one stored file, restart: the node must refuse to start. Then the node gets
   * its undamaged store back (copied aside before the damage, as from a backup) and catches up
   * from its peers. (Rebuilding a node whose store is lost for good needs a node replacement —
   * remove it from its groups and add it back as a learner — which arrives with rebalancing; a
   * node wiped and restarted under the same id is refused by its peers' logs.)
   */
  private async corrupt(f: Extract<Fault, { kind: "corrupt" }>): Promise<void> {
    const id = this.anyNode(f.pick);
    const node = this.cluster.node(id);
    await this.killNodes([id], f.kind, detail(f, { node: id }));
    let files = sstFiles(node.dataDir);
    if (files.length === 0) {
      // Everything is still in the write-ahead log: a start replays it into table files.
      this.cluster.startNode(id);
      await sleep(3_000);
      this.exits.expect(id);
      this.cluster.kill(id, "SIGKILL");
      await this.cluster.exited(id);
      files = sstFiles(node.dataDir);
    }
    if (files.length === 0) {
      this.log(`corrupt: node ${id} has no table file to damage; restarting it`);
      return this.restartNodes([id], f.kind);
    }
    const backup = `${node.dataDir}.undamaged`;
    rmSync(backup, { recursive: true, force: true });
    cpSync(node.dataDir, backup, { recursive: true });
    // Every table file is damaged: a file the store no longer uses (compacted away, not yet
    // deleted) would be dropped at open without being read, so damaging only one could miss.
    const damages = files.map((file) => `${file}: ${damageFile(file, f.how, this.random)}`);
    const damage = damages.join("; ");
    const file = `${files.length} table files`;
    this.history.record({ type: "ok", process: "harness", op: "fault", fault: "corrupt-file", detail: JSON.stringify({ node: id, damages }) });
    // Cut off from its peers while it runs on the damaged store, the node cannot acknowledge
    // anything, so putting the undamaged copy back afterwards loses nothing it promised. (A node
    // that noticed the damage only after acknowledging writes could not go back to the copy.)
    this.mesh().isolate(id);
    this.exits.expect(id);
    this.cluster.startNode(id);
    const refused = await within(this.cluster.exited(id), REFUSE_TIMEOUT_MS);
    if (!refused) {
      this.corruptionUndetected++;
      this.log(`corrupt: node ${id} STARTED on a damaged store (${file}: ${damage})`);
      this.cluster.kill(id, "SIGKILL");
      await this.cluster.exited(id);
    } else {
      this.log(`corrupt: node ${id} refused its damaged store (${damage}); restoring the undamaged copy`);
    }
    rmSync(node.dataDir, { recursive: true, force: true });
    renameSync(backup, node.dataDir);
    this.mesh().heal();
    return this.restartNodes([id], f.kind);
  }

  private async killNodes(ids: readonly number[], kind: string, detail: string): Promise<void> {
    for (const id of ids) {
      if (this.cluster.node(id).running) this.exits.expect(id);
      this.cluster.kill(id, "SIGCONT");
      this.cluster.kill(id, "SIGKILL");
    }
    this.fault(kind, detail);
    await Promise.all(ids.map((id) => this.cluster.exited(id)));
  }

  private async restartNodes(ids: readonly number[], kind: string): Promise<void> {
    for (const id of ids) if (!this.cluster.node(id).running) this.cluster.startNode(id);
    this.heal(kind);
  }

  private fault(kind: string, detail: string): void {
    this.history.record({ type: "ok", process: "harness", op: "fault", fault: kind, detail });
    this.log(`fault ${kind} ${detail}`);
  }

  private heal(kind: string): void {
    this.history.record({ type: "ok", process: "harness", op: "fault", fault: kind, heal: true });
  }

  private mesh(): NonNullable<LocalCluster["links"]> {
    const m = this.cluster.links;
    if (m === undefined) throw new Error("the cluster runs without link proxies");
    return m;
  }

  /** The leader of partition `pick % partitions` as last sampled, else any node. */
  private leaderNode(pick: number): number {
    const leader = this.workload.latestLeaders().get(pick % this.partitions) ?? 0;
    return leader > 0 ? leader : this.anyNode(pick);
  }

  private anyNode(pick: number): number {
    return (pick % this.n) + 1;
  }

  private others(id: number): number[] {
    const rest = this.cluster.nodes.map((x) => x.id).filter((x) => x !== id);
    const k = this.random.int(rest.length);
    return [...rest.slice(k), ...rest.slice(0, k)];
  }
}

function detail(f: Fault, extra: object): string {
  return JSON.stringify({ ...f, ...extra });
}

/** The node's RocksDB table files (checksummed blocks), largest first. */
function sstFiles(dataDir: string): string[] {
  const dir = join(dataDir, "db");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((x) => x.endsWith(".sst")).map((x) => join(dir, x)).filter((p) => statSync(p).size > 0).sort();
}

/** Flips one bit in the first 90% of `file`, or truncates it to 20-80% of its size; says what it did. */
function damageFile(file: string, how: "bit-flip" | "truncate", random: Random): string {
  const size = statSync(file).size;
  if (how === "truncate") {
    const to = Math.floor(size * (0.2 + 0.6 * random.float()));
    truncateSync(file, to);
    return `truncated from ${size} to ${to} bytes`;
  }
  const at = random.int(Math.max(1, Math.floor(size * 0.9)));
  const bit = random.int(8);
  const fd = openSync(file, "r+");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ (1 << bit);
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
  return `flipped bit ${bit} of byte ${at} of ${size}`;
}

/** A light producer on the retained topic (not in the history): keeps its partitions compacting. */
function startRetainedLoad(cluster: LocalCluster): { stop(): void; done: Promise<void> } {
  const client = connect({ brokers: cluster.brokers() });
  let stopped = false;
  const done = (async () => {
    let i = 0;
    while (!stopped) {
      await client.produce(RETAINED_TOPIC, [{ key: `r${i % 4}`, body: Buffer.alloc(2_000, i % 256) }]).catch(() => {});
      i++;
      await sleep(20);
    }
    await client.close();
  })();
  return { stop: () => void (stopped = true), done };
}

async function waitLeaders(client: RaftmqClient, topic: string, partitions: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const info = await client.describeTopic(topic);
      if (info.partitions.length === partitions && info.partitions.every((p) => p.leader > 0)) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`partitions of ${topic} have no leader after ${timeoutMs} ms`);
    await sleep(200);
  }
}

async function endOffsets(client: RaftmqClient, partitions: number): Promise<Map<number, number>> {
  const ends = new Map<number, number>();
  for (let p = 0; p < partitions; p++) ends.set(p, (await client.partitionOffsets(TOPIC, p)).highWatermark);
  return ends;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}


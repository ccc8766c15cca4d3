/**
 * A local multi-process raftmq cluster, for `raftmq cluster up`, for tests and for benchmarks.
 *
 * Each node is a child process, `node dist/src/cli/main.js node --id N --listen 127.0.0.1:PORT
 * --peers 1=...,2=...,3=... --data DIR/node-N`, in its own process group (so a Ctrl-C in the
 * terminal reaches only the parent, which then stops the nodes in order). Ids are 1..n; ports are
 * basePort..basePort+n-1, or free ports chosen by the OS. Every stdout/stderr line of a node is
 * appended to DIR/node-N.log, kept in a bounded in-memory tail, and handed to `onLog`.
 *
 * With `linkProxies`, node-to-node (Raft transport) traffic goes through a {@link LinkMesh}: one
 * fault-injecting TCP proxy per directed pair of nodes, given to each node as `--peer-routes`, so
 * tests can partition the nodes (`cluster.links.isolate(1)`) while clients still reach every node.
 *
 * Processes are addressed by PID only. stop() sends SIGCONT (a SIGSTOPped node could not handle
 * SIGTERM), then SIGTERM, then SIGKILL to whatever is still running after `stopTimeoutMs`. If the
 * parent exits without stop(), an exit hook SIGKILLs the nodes so no process is left behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connect, type ClusterMetadata, type RaftmqClient } from "../src/client/index.js";
import { NODE_RUNTIME_FLAGS } from "../src/server/runtime-flags.js";
import { LinkMesh } from "./link-mesh.js";

export interface LocalClusterOptions {
  /** Folder holding node-N/ data folders and node-N.log files; created if missing. */
  readonly dataDir: string;
  /** First port (ids 1..n get basePort..basePort+n-1); default: free ports from the OS. */
  readonly basePort?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Added to the parent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** --log-level of the nodes. Default info. */
  readonly logLevel?: string;
  /** The script to run (its `node` command). Default: dist/src/cli/main.js. */
  readonly mainScript?: string;
  /** Node.js flags before the script. Default ["--enable-source-maps", ...NODE_RUNTIME_FLAGS]. */
  readonly execArgv?: readonly string[];
  /** Extra arguments after `node --id ... --data ...` (e.g. ["--election-ticks", "5"]). */
  readonly nodeArgs?: readonly string[];
  /** Called with every output line of every node. */
  readonly onLog?: (nodeId: number, line: string, stream: "stdout" | "stderr") => void;
  /** Called when a node process exits, expectedly or not. */
  readonly onExit?: (nodeId: number, code: number | null, signal: NodeJS.Signals | null) => void;
  /** How long stop() and restart() wait after SIGTERM before SIGKILL. Default 10000. */
  readonly stopTimeoutMs?: number;
  /** Output lines kept per node for logTail(). Default 200. */
  readonly logTailLines?: number;
  /**
   * Routes node-to-node traffic through a {@link LinkMesh} of fault-injecting proxies (see
   * `links`); the proxies live in this process and close after the nodes in stop(). Default false.
   */
  readonly linkProxies?: boolean;
}

/** One node of the cluster. */
export interface LocalNode {
  readonly id: number;
  /** host:port for clients and peers. */
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** PID of the current process; undefined before the first start. */
  readonly pid: number | undefined;
  /** Whether the current process has not exited yet. */
  readonly running: boolean;
}

interface NodeState {
  id: number;
  address: string;
  dataDir: string;
  logFile: string;
  process: ChildProcess | undefined;
  exited: Promise<void>;
  running: boolean;
  tail: string[];
  log: WriteStream;
}

const STOP_TIMEOUT_MS_DEFAULT = 10_000;
const KILL_WAIT_MS = 5_000;
const LOG_TAIL_LINES_DEFAULT = 200;
const HEALTH_POLL_INTERVAL_MS = 100;
const HEALTH_CALL_TIMEOUT_MS = 1_000;
const PORT_RANGE_ATTEMPTS_MAX = 20;
const MAIN_SCRIPT_DEFAULT = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/** Starts an n-node cluster; see {@link LocalCluster.start}. */
export function startLocalCluster(n: number, options: LocalClusterOptions): Promise<LocalCluster> {
  return LocalCluster.start(n, options);
}

export class LocalCluster {
  private readonly states: NodeState[];
  private client: RaftmqClient | undefined;
  private stopping: Promise<void> | undefined;
  private readonly exitHook = (): void => this.killAllNow();

  private constructor(
    private readonly options: LocalClusterOptions,
    addresses: readonly string[],
    private readonly mesh: LinkMesh | undefined,
  ) {
    const dataDir = resolve(options.dataDir);
    this.states = addresses.map((address, i) => ({
      id: i + 1,
      address,
      dataDir: join(dataDir, `node-${i + 1}`),
      logFile: join(dataDir, `node-${i + 1}.log`),
      process: undefined,
      exited: Promise.resolve(),
      running: false,
      tail: [],
      log: createWriteStream(join(dataDir, `node-${i + 1}.log`), { flags: "a" }),
    }));
  }

  /**
   * Spawns nodes 1..n and returns at once; call waitHealthy() to wait for a controller leader.
   * On a spawn failure the nodes already started are stopped.
   */
  static async start(n: number, options: LocalClusterOptions): Promise<LocalCluster> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a cluster needs at least 1 node, got ${n}`);
    mkdirSync(resolve(options.dataDir), { recursive: true });
    const host = options.host ?? "127.0.0.1";
    // The node ports stay held while the link proxies bind, so that the OS cannot hand one of
    // them to a proxy (the proxies listen on ports of its choosing).
    const held = options.basePort !== undefined ? [] : await listenAll(host, Array.from({ length: n }, () => 0));
    const ports = options.basePort !== undefined ? Array.from({ length: n }, (_, i) => options.basePort! + i) : held.map((s) => (s.address() as AddressInfo).port);
    const addresses = ports.map((p) => `${host.includes(":") ? `[${host}]` : host}:${p}`);
    let mesh: LinkMesh | undefined;
    try {
      mesh = options.linkProxies === true ? await LinkMesh.start(new Map(addresses.map((a, i) => [i + 1, a])), { host }) : undefined;
    } finally {
      await closeAll(held);
    }
    const cluster = new LocalCluster(options, addresses, mesh);
    process.on("exit", cluster.exitHook);
    try {
      for (const s of cluster.states) cluster.spawnNode(s);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The proxies of the node-to-node links, when started with `linkProxies`. */
  get links(): LinkMesh | undefined {
    return this.mesh;
  }

  /** The nodes, in id order. */
  get nodes(): readonly LocalNode[] {
    return this.states.map((s) => this.view(s));
  }

  /** Node `id`. */
  node(id: number): LocalNode {
    return this.view(this.state(id));
  }

  /** Every node's address, in id order. */
  brokers(): string[] {
    return this.states.map((s) => s.address);
  }

  /** The last output lines of node `id` (bounded by logTailLines). */
  logTail(id: number): readonly string[] {
    return [...this.state(id).tail];
  }

  /** Sends `signal` to node `id`'s process: SIGKILL (kill -9, the default), SIGTERM, SIGSTOP, SIGCONT... */
  kill(id: number, signal: NodeJS.Signals = "SIGKILL"): void {
    const s = this.state(id);
    if (s.running && s.process?.pid !== undefined) process.kill(s.process.pid, signal);
  }

  /**
   * Starts node `id` again after it exited (same address, data and arguments); `env` is added to
   * the environment of this start only (e.g. RAFTMQ_FAILPOINTS for one crash).
   */
  startNode(id: number, options: { env?: Readonly<Record<string, string>> } = {}): void {
    const s = this.state(id);
    if (s.running) throw new Error(`node ${id} is still running (pid ${s.process?.pid})`);
    this.spawnNode(s, options.env);
  }

  /** Stops node `id` gracefully (SIGTERM, then SIGKILL after stopTimeoutMs). */
  async stopNode(id: number): Promise<void> {
    await this.terminate(this.state(id));
  }

  /** Stops node `id` (SIGTERM, or SIGKILL when `signal` says so) and starts it again. */
  async restart(id: number, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const s = this.state(id);
    if (signal === "SIGKILL") {
      this.kill(id, "SIGCONT");
      this.kill(id, "SIGKILL");
      await s.exited;
    } else {
      await this.terminate(s);
    }
    this.spawnNode(s);
  }

  /** Resolves when node `id`'s current process has exited. */
  exited(id: number): Promise<void> {
    return this.state(id).exited;
  }

  /**
   * Polls Metadata on every running node until each answers and knows a controller leader; resolves
   * with the last answer. Rejects after `timeoutMs`, or as soon as a node that was running at the
   * call exits, with the nodes' states and log tails.
   */
  async waitHealthy(timeoutMs: number): Promise<ClusterMetadata> {
    const deadline = Date.now() + timeoutMs;
    const pidsAtStart = new Map(this.states.filter((s) => s.running).map((s) => [s.id, s.process?.pid]));
    let last = new Map<number, string>();
    for (;;) {
      const dead = this.states.find((s) => pidsAtStart.has(s.id) && (!s.running || s.process?.pid !== pidsAtStart.get(s.id)));
      if (dead !== undefined) throw this.healthError(`node ${dead.id} exited while the cluster was starting`, last);
      const answers = await this.probe();
      last = new Map(answers.map((a) => [a.id, a.status]));
      const healthy = answers.every((a) => a.metadata !== undefined && a.metadata.controllerLeader > 0);
      if (healthy && answers.length > 0) return answers[0]!.metadata!;
      if (Date.now() >= deadline) throw this.healthError(`the cluster did not become healthy within ${timeoutMs} ms`, last);
      await new Promise((r) => setTimeout(r, HEALTH_POLL_INTERVAL_MS));
    }
  }

  /**
   * Stops every node by PID (SIGCONT, SIGTERM, then SIGKILL after stopTimeoutMs), then closes the
   * link proxies, if any. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.states.map((s) => this.terminate(s)));
      await this.mesh?.close();
      await this.client?.close();
      await Promise.all(this.states.map((s) => new Promise<void>((r) => s.log.end(r))));
      process.removeListener("exit", this.exitHook);
    })();
    return this.stopping;
  }

  private spawnNode(s: NodeState, env: Readonly<Record<string, string>> = {}): void {
    const peers = this.states.map((p) => `${p.id}=${p.address}`).join(",");
    mkdirSync(s.dataDir, { recursive: true });
    const args = [
      ...(this.options.execArgv ?? ["--enable-source-maps", ...NODE_RUNTIME_FLAGS]),
      this.options.mainScript ?? MAIN_SCRIPT_DEFAULT,
      "node", "--id", String(s.id), "--listen", s.address, "--peers", peers, "--data", s.dataDir,
      ...(this.mesh !== undefined ? ["--peer-routes", [...this.mesh.routesFor(s.id)].map(([id, a]) => `${id}=${a}`).join(",")] : []),
      "--log-level", this.options.logLevel ?? "info",
      ...(this.options.nodeArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...this.options.env, ...env },
      detached: true,
    });
    s.process = child;
    s.running = true;
    s.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        s.running = false;
        this.options.onExit?.(s.id, code, signal);
        resolveExit();
      });
    });
    this.pipeLines(s, child.stdout!, "stdout");
    this.pipeLines(s, child.stderr!, "stderr");
  }

  private pipeLines(s: NodeState, stream: NodeJS.ReadableStream, name: "stdout" | "stderr"): void {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    const tailMax = this.options.logTailLines ?? LOG_TAIL_LINES_DEFAULT;
    lines.on("line", (line) => {
      s.log.write(line + "\n");
      s.tail.push(line);
      if (s.tail.length > tailMax) s.tail.shift();
      this.options.onLog?.(s.id, line, name);
    });
  }

  /** SIGCONT + SIGTERM, then SIGKILL if the process outlives stopTimeoutMs. */
  private async terminate(s: NodeState): Promise<void> {
    const pid = s.process?.pid;
    if (!s.running || pid === undefined) return;
    signalPid(pid, "SIGCONT");
    signalPid(pid, "SIGTERM");
    if (await within(s.exited, this.options.stopTimeoutMs ?? STOP_TIMEOUT_MS_DEFAULT)) return;
    signalPid(pid, "SIGKILL");
    if (!(await within(s.exited, KILL_WAIT_MS))) throw new Error(`node ${s.id} (pid ${pid}) did not exit after SIGKILL`);
  }

  /** The exit hook: SIGKILL every node still running, synchronously. */
  private killAllNow(): void {
    for (const s of this.states) {
      if (s.running && s.process?.pid !== undefined) signalPid(s.process.pid, "SIGKILL");
    }
  }

  private async probe(): Promise<Array<{ id: number; metadata?: ClusterMetadata; status: string }>> {
    this.client ??= connect({ brokers: this.brokers() });
    const client = this.client;
    const running = this.states.filter((s) => s.running);
    return Promise.all(running.map(async (s) => {
      try {
        const metadata = await client.metadataFrom(s.address, { timeoutMs: HEALTH_CALL_TIMEOUT_MS });
        return { id: s.id, metadata, status: metadata.controllerLeader > 0 ? `controller leader ${metadata.controllerLeader}` : "no controller leader yet" };
      } catch (error) {
        return { id: s.id, status: (error as Error).message };
      }
    }));
  }

  private healthError(headline: string, statuses: ReadonlyMap<number, string>): Error {
    const lines = [headline + ":"];
    for (const s of this.states) {
      const state = s.running ? `running (pid ${s.process?.pid}): ${statuses.get(s.id) ?? "not probed"}` : "exited";
      lines.push(`  node ${s.id} at ${s.address}: ${state}; log ${s.logFile}`);
      for (const line of s.tail.slice(-5)) lines.push(`    | ${line}`);
    }
    return new Error(lines.join("\n"));
  }

  private state(id: number): NodeState {
    const s = this.states[id - 1];
    if (s === undefined) throw new RangeError(`no node ${id}: the cluster has nodes 1 to ${this.states.length}`);
    return s;
  }

  private view(s: NodeState): LocalNode {
    return { id: s.id, address: s.address, dataDir: s.dataDir, logFile: s.logFile, pid: s.process?.pid, running: s.running };
  }
}

/** `n` distinct free TCP ports on `host`, held open together so none is handed out twice. */
export async function freePorts(host: string, n: number): Promise<number[]> {
  const servers = await listenAll(host, Array.from({ length: n }, () => 0));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await closeAll(servers);
  return ports;
}

/** A first port of `n` consecutive free TCP ports on `host` (probed, so a race with other processes stays possible). */
export async function freePortRange(host: string, n: number): Promise<number> {
  for (let attempt = 0; attempt < PORT_RANGE_ATTEMPTS_MAX; attempt++) {
    const [base] = await freePorts(host, 1);
    if (base === undefined || base + n - 1 > 65_535) continue;
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const servers = await listenAll(host, ports).catch(() => undefined);
    if (servers !== undefined) {
      await closeAll(servers);
      return base;
    }
  }
  throw new Error(`found no ${n} consecutive free ports on ${host} in ${PORT_RANGE_ATTEMPTS_MAX} attempts`);
}

/** Listens on every port (0: any); on a failure closes those opened and rejects. */
async function listenAll(host: string, ports: readonly number[]): Promise<Server[]> {
  const servers: Server[] = [];
  try {
    for (const port of ports) {
      servers.push(await new Promise<Server>((resolveServer, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(port, host, () => resolveServer(server));
      }));
    }
    return servers;
  } catch (error) {
    await closeAll(servers);
    throw error;
  }
}

function closeAll(servers: readonly Server[]): Promise<unknown> {
  return Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Whether `promise` settles within `ms`. */
export async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

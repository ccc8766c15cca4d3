/**
 * `raftmq node`: runs one broker node in this process until SIGTERM or SIGINT, then closes it
 * (leaderships handed off, data flushed) and exits 0. The server module is imported only here,
 * so client commands never load the storage engine.
 */
import type { NodeOptions, RunningNode } from "../../server/node.js";
import {
  EXIT_FAILURE,
  EXIT_OK,
  hostPort,
  intOption,
  println,
  requiredOption,
  stringOption,
  UsageError,
  type CliContext,
  type CommandSpec,
  type OptionValues,
} from "../command.js";

/** Bound on node.close() after a signal; past it the process exits with 1. */
const CLOSE_TIMEOUT_MS = 30_000;

export const nodeCommand: CommandSpec = {
  path: ["node"],
  summary: "Run one broker node in the foreground.",
  description:
    "Serves clients and peers on --listen. --peers lists every node of the cluster as ID=HOST:PORT\n" +
    "(this one included; added from --listen if missing). --peer-routes sends the peer protocol to\n" +
    "other addresses (e.g. a fault-injecting proxy); clients and metadata keep the --peers addresses.\n" +
    "SIGTERM or Ctrl-C hands leaderships off, flushes and exits 0. Logs are JSON lines on stdout.",
  options: {
    id: { type: "string", value: "N", description: "this node's id, a positive integer (required)" },
    listen: { type: "string", value: "HOST:PORT", description: "address to serve on (required)" },
    peers: { type: "string", value: "ID=HOST:PORT,...", description: "every node of the cluster (default: this one alone)" },
    "peer-routes": { type: "string", value: "ID=HOST:PORT,...", description: "where to reach peers for the peer protocol when not at their --peers address (a proxy)" },
    data: { type: "string", value: "DIR", description: "data directory (required)" },
    "log-level": { type: "string", value: "LEVEL", description: "trace, debug, info, warn or error (default info)" },
    "cluster-id": { type: "string", value: "ID", description: "cluster id guarding the data directory (default raftmq)" },
    "tick-interval-ms": { type: "string", value: "MS", description: "Raft tick (default 100)" },
    "election-ticks": { type: "string", value: "N", description: "ticks per election timeout (default 10)" },
    "retention-check-interval-ms": { type: "string", value: "MS", description: "how often retention runs over the partitions (default 30000)" },
    "shutdown-timeout-ms": { type: "string", value: "MS", description: "bound on the graceful shutdown after SIGTERM (default 5000)" },
  },
  run: runNode,
};

async function runNode(parsed: { values: OptionValues }, ctx: CliContext): Promise<number> {
  const options = nodeOptions(parsed.values);
  const server = (await import("../../server/node.js")) as { startNode(o: NodeOptions): Promise<RunningNode> };
  const node = await server.startNode(options);
  if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS)));
  const late = await Promise.race([node.close().then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    println(ctx.stderr, `raftmq node: node ${options.id} did not close within ${CLOSE_TIMEOUT_MS} ms; exiting anyway`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

/** The server's options from the command line; UsageError naming the option at fault. */
export function nodeOptions(values: OptionValues): NodeOptions {
  const id = intOption(values, "id", undefined, 1, 2 ** 31 - 1);
  if (id === undefined) throw new UsageError("--id is required", nodeCommand);
  const listen = hostPort(requiredOption(values, "listen", nodeCommand), "--listen");
  const peers = parsePeers(stringOption(values, "peers") ?? "");
  if (!peers.has(id)) peers.set(id, listen);
  const options: { -readonly [K in keyof NodeOptions]: NodeOptions[K] } = { id, listen, peers, dataDir: requiredOption(values, "data", nodeCommand) };
  const routesText = stringOption(values, "peer-routes");
  if (routesText !== undefined) options.peerRoutes = peerRoutes(routesText, id, peers);
  const logLevel = stringOption(values, "log-level");
  if (logLevel !== undefined) {
    if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(logLevel)) throw new UsageError(`--log-level must be trace, debug, info, warn or error, got "${logLevel}"`);
    options.logLevel = logLevel;
  }
  const clusterId = stringOption(values, "cluster-id");
  if (clusterId !== undefined) options.clusterId = clusterId;
  const tick = intOption(values, "tick-interval-ms", undefined, 1, 60_000);
  if (tick !== undefined) options.tickIntervalMs = tick;
  const election = intOption(values, "election-ticks", undefined, 2, 1_000);
  if (election !== undefined) options.electionTicks = election;
  const retentionCheck = intOption(values, "retention-check-interval-ms", undefined, 1, 24 * 3600 * 1000);
  if (retentionCheck !== undefined) options.retentionCheckIntervalMs = retentionCheck;
  const shutdownTimeout = intOption(values, "shutdown-timeout-ms", undefined, 1, CLOSE_TIMEOUT_MS);
  if (shutdownTimeout !== undefined) options.shutdownTimeoutMs = shutdownTimeout;
  return options;
}

/**
 * Parses "1=host:port,2=host:port" (the value of `option`, named in errors); UsageError for a
 * malformed or repeated entry.
 */
export function parsePeers(text: string, option = "--peers"): Map<number, string> {
  const peers = new Map<number, string>();
  for (const entry of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^(\d+)=(.+)$/.exec(entry);
    const id = Number(m?.[1]);
    if (m === null || !Number.isSafeInteger(id) || id < 1) throw new UsageError(`${option}: "${entry}" is not ID=HOST:PORT with a positive id`);
    if (peers.has(id)) throw new UsageError(`${option} names node ${id} twice`);
    peers.set(id, hostPort(m[2]!, `${option} entry ${id}`));
  }
  return peers;
}

/** Parses --peer-routes: entries for known peers other than this node only. */
function peerRoutes(text: string, id: number, peers: ReadonlyMap<number, string>): Map<number, string> {
  const routes = parsePeers(text, "--peer-routes");
  for (const peer of routes.keys()) {
    if (peer === id) throw new UsageError(`--peer-routes must not name this node (${id}): a route leads to a peer`);
    if (!peers.has(peer)) throw new UsageError(`--peer-routes names node ${peer}, which is not in --peers (${[...peers.keys()].sort((a, b) => a - b).join(",")})`);
  }
  return routes;
}

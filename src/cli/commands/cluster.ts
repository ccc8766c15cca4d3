/**
 * `raftmq cluster up` runs a local cluster in the foreground (cluster/local-cluster.ts);
 * `raftmq cluster status` shows nodes, the controller leader and partition leadership.
 */
import { LocalCluster } from "../../../cluster/local-cluster.js";
import type { ClusterMetadata, RaftmqClient } from "../../client/index.js";
import {
  EXIT_FAILURE,
  EXIT_OK,
  intOption,
  println,
  stringOption,
  withClient,
  type CliContext,
  type CommandSpec,
  type OptionValues,
} from "../command.js";
import { leaderName, table } from "../format.js";
import { formatLogLine } from "../log-format.js";

/** How long `cluster up` waits for a controller leader. */
const HEALTHY_TIMEOUT_MS = 60_000;
/** How long `cluster status` waits for each node's own answer. */
const NODE_PROBE_TIMEOUT_MS = 2_000;

export const clusterUpCommand: CommandSpec = {
  path: ["cluster", "up"],
  summary: "Start a local cluster of node processes in the foreground; Ctrl-C stops it.",
  description:
    "Node N listens on 127.0.0.1:(base-port + N - 1) and keeps its data in DIR/node-N and its raw\n" +
    "log in DIR/node-N.log. Node logs are shown here, one readable line each, prefixed by node.",
  options: {
    nodes: { type: "string", value: "N", description: "number of nodes (default 3)" },
    "base-port": { type: "string", value: "PORT", description: "port of node 1 (default 7001)" },
    data: { type: "string", value: "DIR", description: "data folder (default ./data)" },
    "log-level": { type: "string", value: "LEVEL", description: "the nodes' log level (default info)" },
  },
  run: runClusterUp,
};

export const clusterStatusCommand: CommandSpec = {
  path: ["cluster", "status"],
  summary: "Show nodes, the controller leader and partition leaders.",
  options: { json: { type: "boolean", description: "print the metadata as JSON" } },
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, (client) => runClusterStatus(client, parsed.values, ctx)),
};

async function runClusterUp(parsed: { values: OptionValues }, ctx: CliContext): Promise<number> {
  const n = intOption(parsed.values, "nodes", 3, 1, 99)!;
  const basePort = intOption(parsed.values, "base-port", 7001, 1, 65_535 - n + 1)!;
  const dataDir = stringOption(parsed.values, "data") ?? "./data";
  const color = (ctx.stdout as { isTTY?: boolean }).isTTY === true;
  let stopping = false;
  const cluster = await LocalCluster.start(n, {
    dataDir,
    basePort,
    logLevel: stringOption(parsed.values, "log-level") ?? "info",
    onLog: (id, line) => println(ctx.stdout, formatLogLine(id, line, { color })),
    onExit: (id, code, signal) => {
      if (!stopping) println(ctx.stderr, `raftmq: node ${id} exited (${signal ?? `code ${code}`}); the others keep running`);
    },
  });
  println(ctx.stderr, `raftmq: started ${n} node(s), data in ${dataDir}:`);
  for (const node of cluster.nodes) println(ctx.stderr, `  node ${node.id}  ${node.address}  pid ${node.pid}  log ${node.logFile}`);
  const outcome = await Promise.race([
    cluster.waitHealthy(HEALTHY_TIMEOUT_MS).then(() => "healthy" as const, (e: Error) => e),
    aborted(ctx.signal).then(() => "stop" as const),
  ]);
  if (outcome instanceof Error) println(ctx.stderr, `raftmq: ${outcome.message}`);
  if (outcome === "healthy") {
    const brokers = cluster.brokers().join(",");
    println(ctx.stderr, `raftmq: cluster is up. Connect with --brokers ${brokers} (or export RAFTMQ_BROKERS=${brokers}). Ctrl-C stops it.`);
    await Promise.race([aborted(ctx.signal), allExited(cluster)]);
  }
  stopping = true;
  const allDead = cluster.nodes.every((node) => !node.running);
  println(ctx.stderr, allDead ? "raftmq: every node has exited" : "raftmq: stopping the nodes...");
  await cluster.stop();
  if (!allDead) println(ctx.stderr, "raftmq: cluster stopped");
  return outcome instanceof Error || allDead ? EXIT_FAILURE : EXIT_OK;
}

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

function allExited(cluster: LocalCluster): Promise<void> {
  return Promise.all(cluster.nodes.map((node) => cluster.exited(node.id))).then(() => undefined);
}

async function runClusterStatus(client: RaftmqClient, values: OptionValues, ctx: CliContext): Promise<number> {
  const md = await client.metadata();
  const reachable = await Promise.all(md.nodes.map((node) => client.metadataFrom(node.address, { timeoutMs: NODE_PROBE_TIMEOUT_MS }).then(
    (own) => ({ up: true, controllerLeader: own.controllerLeader }),
    (error: Error) => ({ up: false, error: error.message.replace(/^broker \S+ is unreachable \((.*)\)$/, "$1"), controllerLeader: 0 }),
  )));
  if (values["json"] === true) {
    println(ctx.stdout, JSON.stringify({ ...md, reachable: md.nodes.map((node, i) => ({ id: node.id, ...reachable[i] })) }, null, 2));
    return EXIT_OK;
  }
  ctx.stdout.write(statusText(md, reachable));
  return md.controllerLeader > 0 ? EXIT_OK : EXIT_FAILURE;
}

function statusText(md: ClusterMetadata, reachable: ReadonlyArray<{ up: boolean; controllerLeader: number; error?: string }>): string {
  const lines = [`cluster ${md.clusterId}: ${md.nodes.length} node(s), controller leader: ${leaderName(md.controllerLeader)} (as node ${md.nodeId} sees it)`, ""];
  const nodeRows: Array<Array<string | number>> = [["NODE", "ADDRESS", "CONTROLLER", "STATUS"]];
  md.nodes.forEach((node, i) => {
    const r = reachable[i]!;
    const role = node.id === md.controllerLeader ? "leader" : node.controller ? "voter" : "-";
    nodeRows.push([node.id, node.address, role, r.up ? "up" : `unreachable (${r.error ?? "no answer"})`]);
  });
  lines.push(table(nodeRows));
  if (md.topics.length === 0) return lines.join("\n") + "no topics\n";
  const topicRows: Array<Array<string | number>> = [["TOPIC", "PARTITIONS", "REPLICATION", "LEADERS (node:partitions)", "WITHOUT LEADER"]];
  for (const t of md.topics) {
    const counts = new Map<number, number>();
    for (const p of t.partitions) if (p.leader > 0) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
    const leaders = [...counts].sort((a, b) => a[0] - b[0]).map(([id, c]) => `${id}:${c}`).join(" ") || "-";
    topicRows.push([t.name, t.partitions.length, t.replicationFactor, leaders, t.partitions.filter((p) => p.leader === 0).length]);
  }
  lines.push(table(topicRows));
  return lines.join("\n");
}

/**
 * The composition root of a broker node: builds the clock, randomness, logger, storage and
 * transport, wires the multi-raft host, the controller and the broker, serves gRPC (broker API,
 * peer protocol, health, reflection) on one port, and owns the shutdown order.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { ReflectionService } from "@grpc/reflection";
import { parseFailpoints, type Failpoints } from "../lib/failpoints.js";
import type { NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import { SeededRandom } from "../lib/random.js";
import { MultiRaft } from "../multiraft/multiraft.js";
import { openRaftStore } from "../storage/rocks-raft-store.js";
import { GrpcTransport } from "../transport/grpc-transport.js";
import { CONTROLLER_GROUP, MetadataState, initialMetadata } from "../controller/metadata.js";
import { ControllerFrontend } from "../controller/frontend.js";
import { ControllerBackend } from "../controller/backend.js";
import { Broker } from "../broker/broker.js";
import { BrokerPartitions, bootstrapIfNew } from "../broker/partition-manager.js";
import { brokerServiceImplementation } from "./broker-service.js";
import { consumerGroups, internalStateFactory } from "./consumer-groups.js";
import { createGrpcServer } from "./grpc-server.js";
import { createLogger } from "./logger.js";
import { loadBrokerPackage, loadConsumerPackage } from "./protos.js";
import { RealClock } from "./real-clock.js";
import { missingRuntimeFlags } from "./runtime-flags.js";
import { handOffLeaderships } from "./shutdown.js";

export interface NodeOptions {
  readonly id: number;
  /** host:port to serve clients and peers on. */
  readonly listen: string;
  /** Every node of the cluster, this one included: id → host:port. */
  readonly peers: ReadonlyMap<number, string>;
  /**
   * Where this node reaches each peer for the peer protocol, when it differs from the peer's
   * --peers address: a proxy, a NAT. Default: the --peers address. Only the Raft transport uses
   * it; clients and the cluster metadata keep the --peers addresses.
   */
  readonly peerRoutes?: ReadonlyMap<number, string>;
  readonly dataDir: string;
  /** Guards against pointing a node at another cluster's data. Default "raftmq". */
  readonly clusterId?: string;
  readonly logLevel?: string;
  /** Default 100 ms. */
  readonly tickIntervalMs?: number;
  /** Default 10 ticks (an election timeout of 1 to 2 s with the default tick). */
  readonly electionTicks?: number;
  /** Bound on the graceful shutdown. Default 5000 ms. */
  readonly shutdownTimeoutMs?: number;
  /** How often retention runs over the partitions. Default 30000 ms. */
  readonly retentionCheckIntervalMs?: number;
}

export interface RunningNode {
  readonly id: number;
  readonly address: string;
  /** Transfers leaderships away, flushes, stops. Idempotent. */
  close(): Promise<void>;
}

/** How many of the first nodes (by id) vote in the controller group; the others are learners. */
export const CONTROLLER_VOTERS_MAX = 3;
const REQUEST_TIMEOUT_MS = 10_000;

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const nodeId: NodeId = options.id;
  validateOptions(options);
  const clusterId = options.clusterId ?? "raftmq";
  const log = createLogger(nodeId, options.logLevel ?? "info");
  const failpoints = loadFailpoints(process.env["RAFTMQ_FAILPOINTS"], log);
  const clock = new RealClock();
  const random = new SeededRandom(randomBytes(4).readUInt32BE(0));
  mkdirSync(options.dataDir, { recursive: true });
  const store = await openRaftStore({ dir: join(options.dataDir, "db"), clusterId, nodeId, logger: log.child({ component: "storage" }), failpoints });

  const peers = new Map<NodeId, string>(options.peers);
  const ids = [...peers.keys()].sort((a, b) => a - b);
  const controllerVoters = ids.slice(0, CONTROLLER_VOTERS_MAX);
  const transport = new GrpcTransport({ nodeId, clusterId, peers: new Map([...peers, ...(options.peerRoutes ?? [])]), clock, random: random.fork(), logger: log.child({ component: "transport" }) });
  let fatal = false;
  const multiraft = new MultiRaft({
    nodeId,
    store,
    transport,
    clock,
    random: random.fork(),
    logger: log,
    tickIntervalMs: options.tickIntervalMs ?? 100,
    // Idle groups quiesce: no heartbeats, no ticks; node keep-alives stand in (multiraft.ts).
    // Followers learn commits from the next append or heartbeat (src/raft/config.ts).
    raft: { electionTicks: options.electionTicks ?? 10, heartbeatTicks: 1, quiesce: true, lazyCommit: true },
    onFatal: (e) => {
      fatal = true;
      log.error({ err: e.message, stack: e.stack }, "fatal error: stopping the node");
      process.exit(70);
    },
  });

  const metadata = new MetadataState();
  const addressOf = (id: NodeId): string | undefined => metadata.nodes.get(id)?.address ?? peers.get(id);
  const nodes = ids.map((id) => ({ id, address: peers.get(id)! }));
  const freshController = await bootstrapIfNew(store, CONTROLLER_GROUP, { voters: controllerVoters, learners: ids.slice(CONTROLLER_VOTERS_MAX) }, initialMetadata(nodes));
  const partitions = new BrokerPartitions(nodeId, multiraft, store, log.child({ component: "broker" }), internalStateFactory, failpoints);
  const backend = new ControllerBackend(nodeId, metadata, partitions, log.child({ component: "controller" }));
  // Every node answers metadata from its replica and partition leaders fence producers with it:
  // the controller's followers learn each commit at once.
  multiraft.addGroup(CONTROLLER_GROUP, metadata, { lazyCommit: false });
  const frontend = new ControllerFrontend(multiraft, metadata, addressOf, REQUEST_TIMEOUT_MS);
  const broker = new Broker(metadata, partitions, multiraft, store, clock, addressOf, failpoints);
  const groups = consumerGroups({
    nodeId, multiraft, metadata, partitions, frontend, broker, clock, random: random.fork(), addressOf, accepting: () => accepting, log, requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });

  let accepting = true;
  const server = createGrpcServer({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
  const brokerPackage = loadBrokerPackage();
  server.addService(brokerPackage.service, brokerServiceImplementation({
    clusterId, nodeId, metadata, frontend, broker, controllerVoters: () => controllerVoters, accepting: () => accepting,
    log: log.child({ component: "api" }),
  }));
  transport.addTo(server);
  const consumerPackage = loadConsumerPackage();
  server.addService(consumerPackage.groups, groups.services.groups);
  server.addService(consumerPackage.subscriptions, groups.services.subscriptions);
  const health = new HealthImplementation({
    "": "SERVING", "raftmq.broker.v1.Broker": "SERVING", "raftmq.consumer.v1.Groups": "SERVING", "raftmq.consumer.v1.Subscriptions": "SERVING",
  });
  health.addToServer(server);
  new ReflectionService({ ...brokerPackage.definition, ...consumerPackage.definition }).addToServer(server);
  await bindServer(server, options.listen);
  multiraft.start();
  groups.start();
  const retention = startRetention(broker, clock, options.retentionCheckIntervalMs ?? 30_000, log);
  // The first controller voter of a new cluster campaigns at once rather than after a timeout.
  if (freshController && controllerVoters[0] === nodeId) multiraft.campaign(CONTROLLER_GROUP);
  log.info({ listen: options.listen, peers: Object.fromEntries(peers), peerRoutes: Object.fromEntries(options.peerRoutes ?? []), clusterId, controllerVoters }, "node started");
  const missingFlags = missingRuntimeFlags(process.execArgv);
  if (missingFlags.length > 0) {
    log.warn({ missingFlags }, `started without the recommended Node.js flags: start the node as \`node ${missingFlags.join(" ")} .../cli/main.js node ...\` (about 30% more produce throughput; see src/server/runtime-flags.ts)`);
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const deadline = clock.monotonicMs() + (options.shutdownTimeoutMs ?? 5000);
      health.setStatus("", "NOT_SERVING");
      retention.stop();
      groups.stop();
      // Hand-off is bounded tighter than the whole shutdown: when every node stops at once, the
      // peers cannot take over and waiting longer only delays the stop.
      if (!fatal) await handOffLeaderships(multiraft, clock, Math.min(deadline, clock.monotonicMs() + 2000), log);
      accepting = false;
      groups.services.closeStreams();
      // Peer streams never end on their own: close the transport before the server drains.
      await multiraft.close();
      await transport.close();
      await shutdownServer(server, Math.max(100, deadline - clock.monotonicMs()));
      // A reconciliation in progress (creating replicas) must finish before the store closes under it.
      await backend.idle();
      await store.close();
      log.info({}, "node stopped");
    })();
    return closing;
  };
  return { id: nodeId, address: options.listen, close };
}

/** Runs retention periodically, one pass at a time. */
function startRetention(broker: Broker, clock: RealClock, intervalMs: number, log: Logger): { stop(): void } {
  let stopped = false;
  let timer = clock.setTimer(intervalMs, function pass(): void {
    broker.enforceRetention().then(
      (n) => {
        if (n > 0) log.info({ partitions: n }, "retention compacted partitions");
      },
      (e: unknown) => log.warn({ err: String(e) }, "retention pass failed"),
    ).finally(() => {
      if (!stopped) timer = clock.setTimer(intervalMs, pass);
    });
  });
  return {
    stop: () => {
      stopped = true;
      timer.cancel();
    },
  };
}

/**
 * The failpoints of this node from the RAFTMQ_FAILPOINTS spec (lib/failpoints.ts; for fault
 * testing only, never a user option). A crash failpoint writes one line to stderr and kills the
 * process with SIGKILL, as abruptly as kill -9. Throws on a bad spec.
 */
function loadFailpoints(spec: string | undefined, log: Logger): Failpoints {
  let failpoints: Failpoints;
  try {
    failpoints = parseFailpoints(spec ?? "", (name) => {
      writeSync(2, `failpoint ${name}: crashing\n`);
      process.kill(process.pid, "SIGKILL");
    });
  } catch (e) {
    throw new Error(`RAFTMQ_FAILPOINTS is invalid: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (failpoints.active.length > 0) {
    const enabled = failpoints.active.map((a) => (a.action === "on" ? a.name : `${a.name}=crash:${a.atHit}`));
    log.warn({ failpoints: enabled }, "failpoints enabled: this node plants faults on purpose (fault testing only)");
  }
  return failpoints;
}

function validateOptions(o: NodeOptions): void {
  if (!Number.isInteger(o.id) || o.id <= 0) throw new RangeError(`--id must be a positive integer, got ${o.id}`);
  if (!o.peers.has(o.id)) throw new RangeError(`--peers must include this node (${o.id}), got ${[...o.peers.keys()].join(",")}`);
  if (o.peers.get(o.id) !== o.listen) {
    throw new RangeError(`--listen (${o.listen}) must equal this node's address in --peers (${o.peers.get(o.id)})`);
  }
  for (const id of o.peerRoutes?.keys() ?? []) {
    if (id === o.id) throw new RangeError(`--peer-routes must not name this node (${o.id}): a route leads to a peer`);
    if (!o.peers.has(id)) throw new RangeError(`--peer-routes names node ${id}, which is not in --peers (${[...o.peers.keys()].join(",")})`);
  }
}

function bindServer(server: grpc.Server, listen: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new Error(`cannot listen on ${listen}: ${err.message}`));
      else resolve(port);
    });
  });
}

function shutdownServer(server: grpc.Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}


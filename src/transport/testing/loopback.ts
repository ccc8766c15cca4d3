/**
 * Test nodes on loopback: a GrpcTransport on its own gRPC server bound to 127.0.0.1 (port 0 →
 * the bound port), with a ManualClock (reconnect backoff only elapses when a test advances it), a
 * seeded Random, a MemoryLogger, and every handler call recorded.
 */
import * as grpc from "@grpc/grpc-js";
import { ManualClock } from "../../lib/clock.js";
import type { GroupId, NodeId } from "../../lib/ids.js";
import { SeededRandom } from "../../lib/random.js";
import type { GroupMessage } from "../../multiraft/ports.js";
import { message, type Entry, type Message } from "../../raft/index.js";
import { GrpcTransport } from "../grpc-transport.js";
import type { TransportLimits } from "../limits.js";
import { MemoryLogger } from "./memory-logger.js";

export const CLUSTER = "test-cluster";

export interface TestNode {
  readonly id: NodeId;
  readonly transport: GrpcTransport;
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  readonly clock: ManualClock;
  readonly logger: MemoryLogger;
  readonly received: { readonly from: NodeId; readonly messages: readonly GroupMessage[] }[];
  readonly unreachable: { readonly to: NodeId; readonly groups: readonly GroupId[] }[];
  readonly snapshots: { readonly to: NodeId; readonly group: GroupId; readonly ok: boolean }[];
  /** Closes the transport, then the server. */
  close(): Promise<void>;
}

export interface TestNodeOptions {
  readonly id: NodeId;
  readonly clusterId?: string;
  readonly limits?: Partial<TransportLimits>;
  readonly seed?: number;
  /** Bind this port instead of a fresh one (a restarted node). */
  readonly port?: number;
  /** The server's gRPC receive limit, when a test needs it to differ from the transport's. */
  readonly serverReceiveBytesMax?: number;
}

/** Binds a server to 127.0.0.1:port and returns the bound port. */
export function bindLoopback(server: grpc.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}

/** Starts a transport on its own loopback server, recording everything its handlers receive. */
export async function startNode(options: TestNodeOptions): Promise<TestNode> {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const transport = new GrpcTransport({
    nodeId: options.id,
    clusterId: options.clusterId ?? CLUSTER,
    peers: new Map(),
    clock,
    random: new SeededRandom(options.seed ?? options.id),
    logger,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  const node = { received: [], unreachable: [], snapshots: [] } as Pick<TestNode, "received" | "unreachable" | "snapshots">;
  transport.onReceive((from, messages) => node.received.push({ from, messages }));
  transport.onUnreachable((to, groups) => node.unreachable.push({ to, groups }));
  transport.onSnapshotStatus((to, group, ok) => node.snapshots.push({ to, group, ok }));
  const receiveMax = options.serverReceiveBytesMax;
  const server = new grpc.Server(receiveMax === undefined ? transport.serverOptions() : { "grpc.max_receive_message_length": receiveMax });
  transport.addTo(server);
  const port = await bindLoopback(server, options.port ?? 0);
  const close = async (): Promise<void> => {
    await transport.close();
    server.forceShutdown();
  };
  return { ...node, id: options.id, transport, server, port, address: `127.0.0.1:${port}`, clock, logger, close };
}

/** Makes every node a peer of every other. */
export function connectAll(nodes: readonly TestNode[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.setPeer(b.id, b.address);
}

/** Polls `condition` every few milliseconds; fails after `timeoutMs` naming what it waited for. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits for a few event-loop turns (lets flushes and reports run) without a fixed sleep. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Every message `node` received from `from`, in delivery order. */
export function receivedFrom(node: TestNode, from: NodeId): GroupMessage[] {
  return node.received.filter((r) => r.from === from).flatMap((r) => r.messages);
}

/** The groups `node` reported unreachable for `to`. */
export function unreachableGroups(node: TestNode, to: NodeId): Set<GroupId> {
  return new Set(node.unreachable.filter((u) => u.to === to).flatMap((u) => u.groups));
}

/** A heartbeat of `group` from `from` to `to`. */
export function heartbeat(group: GroupId, from: NodeId, to: NodeId, term = 1, commit = 0, context = ""): GroupMessage {
  return { group, message: message({ type: "heartbeat", from, to, term, commit, context }) };
}

/** An append of `datas.length` entries after `index`, each entry's data given. */
export function append(group: GroupId, from: NodeId, to: NodeId, index: number, datas: readonly Uint8Array[], term = 1): GroupMessage {
  const entries: Entry[] = datas.map((data, i) => ({ term, index: index + 1 + i, type: "normal", data }));
  return { group, message: message({ type: "app", from, to, term, logTerm: term, index, entries, commit: index }) };
}

/** A snapshot message carrying `data`. */
export function snap(group: GroupId, from: NodeId, to: NodeId, data: Uint8Array, index = 100): GroupMessage {
  const m: Message = message({
    type: "snap",
    from,
    to,
    term: 3,
    snapshot: { metadata: { index, term: 2, confState: { voters: [from, to], learners: [] } }, data },
  });
  return { group, message: m };
}

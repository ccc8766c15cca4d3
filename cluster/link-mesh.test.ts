/**
 * A real 3-node cluster whose node-to-node traffic goes through a LinkMesh (`linkProxies: true`):
 * it becomes healthy through the proxies; isolating the controller leader makes the two others
 * elect a new one; after heal() all three agree on one controller leader again.
 *
 * Timing: ticks of 50 ms and an election timeout of 10 ticks, drawn from [10, 20) ticks, so the
 * followers of an isolated leader campaign within 1000 ms of its last heartbeat. The bound below
 * leaves room for a split vote and for the followers learning the winner. Every wait is a bounded
 * poll; the cluster's processes are stopped by PID (LocalCluster.stop) and the proxies closed
 * after them, on success and on failure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type RaftmqClient } from "../src/client/index.js";
import { startNode } from "../src/server/node.js";
import { LocalCluster } from "./local-cluster.js";

const TICK_INTERVAL_MS = 50;
const ELECTION_TICKS = 10;
const ELECTION_TIMEOUT_MAX_MS = 2 * ELECTION_TICKS * TICK_INTERVAL_MS;
/** From isolating the leader to both other nodes naming the same new controller leader. */
const NEW_LEADER_BOUND_MS = 5 * ELECTION_TIMEOUT_MAX_MS;
const HEALTHY_TIMEOUT_MS = 15_000;
const HEAL_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const NODE_ARGS = ["--tick-interval-ms", String(TICK_INTERVAL_MS), "--election-ticks", String(ELECTION_TICKS), "--shutdown-timeout-ms", "3000"];

test("through link proxies: healthy, a new controller leader when the leader is isolated, one leader again after heal", { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-link-mesh-"));
  let failed = true;
  const cluster = await LocalCluster.start(3, { dataDir, linkProxies: true, logLevel: "info", nodeArgs: NODE_ARGS, stopTimeoutMs: 10_000 });
  let client: RaftmqClient | undefined;
  // Registered before anything else can throw: the node processes must never outlive the test.
  t.after(async () => {
    await client?.close();
    await cluster.stop();
    if (!failed) rmSync(dataDir, { recursive: true, force: true });
    else {
      console.log(`[link-mesh] kept ${dataDir} (node-N.log); links:\n${cluster.links?.describe() ?? "none"}`);
      for (const node of cluster.nodes) for (const line of cluster.logTail(node.id).slice(-10)) console.log(`  ${node.id} | ${line}`);
    }
  });
  const rpc = connect({ brokers: cluster.brokers() });
  client = rpc;
  const mesh = cluster.links;
  assert.ok(mesh !== undefined);

  /** Each node's controller leader as it reports it (0: none or unreachable). */
  const leaderSeenBy = async (ids: readonly number[]): Promise<number[]> =>
    Promise.all(ids.map(async (id) => {
      try {
        return (await rpc.metadataFrom(cluster.node(id).address, { timeoutMs: 500 })).controllerLeader;
      } catch {
        return 0;
      }
    }));
  /** Polls until every node of `ids` names the same controller leader that `accept` accepts. */
  const agreedLeader = async (ids: readonly number[], accept: (leader: number) => boolean, timeoutMs: number): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = await leaderSeenBy(ids);
      if (seen.every((l) => l === seen[0]) && accept(seen[0]!)) return seen[0]!;
      if (performance.now() > deadline) throw new Error(`nodes ${ids.join(",")} saw controller leaders ${seen.join(",")} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
  const leader = await agreedLeader([1, 2, 3], (l) => l > 0, HEALTHY_TIMEOUT_MS);
  const others = [1, 2, 3].filter((id) => id !== leader);
  for (const id of others) {
    assert.ok(mesh.link(leader, id).stats.bytesToTarget > 0, `the leader's messages to node ${id} went through its proxy`);
    assert.ok(mesh.link(id, leader).stats.bytesToTarget > 0, `node ${id}'s messages to the leader went through its proxy`);
  }

  mesh.isolate(leader);
  const isolatedAt = performance.now();
  const successor = await agreedLeader(others, (l) => l > 0 && l !== leader, NEW_LEADER_BOUND_MS);
  const failoverMs = performance.now() - isolatedAt;
  console.log(`[link-mesh] controller leader ${leader} isolated; ${successor} elected by nodes ${others.join(",")} in ${failoverMs.toFixed(0)} ms`);
  assert.ok(mesh.link(leader, others[0]!).stats.bytesDiscarded > 0, "the isolated leader's messages were discarded");

  mesh.heal();
  assert.equal(mesh.describe(), "all links pass");
  const healedAt = performance.now();
  const final = await agreedLeader([1, 2, 3], (l) => l > 0, HEAL_TIMEOUT_MS);
  console.log(`[link-mesh] healed; all nodes name controller leader ${final} after ${(performance.now() - healedAt).toFixed(0)} ms`);
  failed = false;
});

test("startNode refuses peer routes for itself or for nodes not in peers, before touching anything", async () => {
  const options = { id: 1, listen: "127.0.0.1:1", peers: new Map([[1, "127.0.0.1:1"], [2, "127.0.0.1:2"]]), dataDir: join(tmpdir(), "raftmq-never-created") };
  await assert.rejects(startNode({ ...options, peerRoutes: new Map([[1, "127.0.0.1:9"]]) }), /RangeError: --peer-routes must not name this node \(1\)/);
  await assert.rejects(startNode({ ...options, peerRoutes: new Map([[3, "127.0.0.1:9"]]) }), /RangeError: --peer-routes names node 3, which is not in --peers \(1,2\)/);
});

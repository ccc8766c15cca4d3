import { test } from "node:test";
import assert from "node:assert/strict";
import type { GroupId, NodeId } from "../lib/ids.js";
import { silentLogger } from "../lib/logger.js";
import { SeededRandom } from "../lib/random.js";
import { RealClock } from "../server/real-clock.js";
import { openMemoryRaftStore, type MemoryRaftStore } from "../storage/index.js";
import { bootstrapSnapshot } from "../raft/storage.js";
import type { Entry, RaftConfig, Snapshot } from "../raft/index.js";
import { MultiRaft, type GroupRaftOverrides, type GroupStateMachine } from "./multiraft.js";
import { LoopbackHub } from "./testing/loopback-transport.js";
import type { GroupWrite, RaftStore } from "./ports.js";

const SEED = Number(process.env.MULTIRAFT_SEED ?? 7);
console.log(`multiraft tests: seed ${SEED} (replay with MULTIRAFT_SEED=${SEED})`);

/** Records applied application data. */
class Recorder implements GroupStateMachine {
  readonly applied: string[] = [];
  apply(entries: readonly Entry[]): void {
    for (const e of entries) if (e.type === "normal" && e.data.byteLength > 0) this.applied.push(new TextDecoder().decode(e.data));
  }
  restore(_snapshot: Snapshot): void {
    this.applied.length = 0;
  }
  snapshotData(): Uint8Array {
    return new Uint8Array();
  }
}

/** Counts store writes, to check group commit: one write per round for all groups. */
class CountingStore {
  writes = 0;
  groupsPerWrite: number[] = [];
  constructor(readonly inner: MemoryRaftStore) {}
  wrap(): RaftStore {
    const inner = this.inner;
    return new Proxy(inner, {
      get: (target, prop, receiver) => {
        if (prop === "write") {
          return (writes: readonly GroupWrite[], sync: boolean) => {
            this.writes++;
            this.groupsPerWrite.push(writes.length);
            return target.write(writes, sync);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}

interface TestNode {
  readonly id: NodeId;
  readonly mr: MultiRaft;
  readonly sms: Map<GroupId, Recorder>;
  readonly store: CountingStore;
}

const TICK_MS = 10;
const ELECTION_TICKS = 10;

async function startCluster(
  ids: readonly NodeId[],
  groups: readonly GroupId[],
  raft: Partial<RaftConfig> = {},
  groupRaft: (group: GroupId) => GroupRaftOverrides = () => ({}),
): Promise<{ nodes: TestNode[]; hub: LoopbackHub; close(): Promise<void> }> {
  const hub = new LoopbackHub();
  const clock = new RealClock();
  const nodes: TestNode[] = [];
  for (const id of ids) {
    const inner = await openMemoryRaftStore({ nodeId: id });
    for (const g of groups) await inner.write([{ group: g, snapshot: bootstrapSnapshot(ids), entries: [], hardState: { term: 1, vote: 0, commit: 1 } }], true);
    const store = new CountingStore(inner);
    const mr = new MultiRaft({
      nodeId: id,
      store: store.wrap(),
      transport: hub.endpoint(id),
      clock,
      random: new SeededRandom(SEED * 100 + id),
      logger: silentLogger,
      tickIntervalMs: TICK_MS,
      raft: { electionTicks: ELECTION_TICKS, ...raft },
      onFatal: (e) => {
        throw e;
      },
    });
    const sms = new Map<GroupId, Recorder>();
    for (const g of groups) {
      const sm = new Recorder();
      sms.set(g, sm);
      mr.addGroup(g, sm, groupRaft(g));
    }
    mr.start();
    nodes.push({ id, mr, sms, store });
  }
  return {
    nodes,
    hub,
    close: async () => {
      for (const n of nodes) await n.mr.close();
    },
  };
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function leaderOf(nodes: readonly TestNode[], group: GroupId, except?: NodeId): TestNode | undefined {
  return nodes.find((n) => n.id !== except && n.mr.status(group)?.role === "leader");
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test("three nodes: a proposal resolves once committed and every replica applies it", async () => {
  const c = await startCluster([1, 2, 3], [100]);
  try {
    c.nodes[0]!.mr.campaign(100);
    const leader = await waitFor("a leader", () => leaderOf(c.nodes, 100));
    const index = await leader.mr.propose(100, enc("a"), 2000);
    assert.ok(index >= 2, `index ${index}`);
    for (const n of c.nodes) await waitFor(`node ${n.id} applies`, () => n.sms.get(100)!.applied.length === 1 || undefined);
    for (const n of c.nodes) assert.deepEqual(n.sms.get(100)!.applied, ["a"]);
  } finally {
    await c.close();
  }
});

test("a follower rejects proposals with NOT_LEADER naming the leader", async () => {
  const c = await startCluster([1, 2, 3], [100]);
  try {
    c.nodes[0]!.mr.campaign(100);
    const leader = await waitFor("a leader", () => leaderOf(c.nodes, 100));
    const follower = c.nodes.find((n) => n.id !== leader.id)!;
    await waitFor("the follower knows the leader", () => follower.mr.leader(100) === leader.id || undefined);
    await assert.rejects(follower.mr.propose(100, enc("x"), 1000), (e: Error & { code?: string; leaderId?: number }) => {
      assert.equal(e.code, "NOT_LEADER");
      assert.equal(e.leaderId, leader.id);
      return true;
    });
  } finally {
    await c.close();
  }
});

test("group commit: the entries of many groups in one round go to the store in one write", async () => {
  const groups = Array.from({ length: 20 }, (_, i) => 200 + i);
  const c = await startCluster([1, 2, 3], groups);
  try {
    for (const g of groups) c.nodes[0]!.mr.campaign(g);
    await waitFor("node 1 leads all groups", () => groups.every((g) => c.nodes[0]!.mr.status(g)?.role === "leader") || undefined);
    const leader = c.nodes[0]!;
    await new Promise((r) => setTimeout(r, 50));
    const before = leader.store.groupsPerWrite.length;
    // Proposals made in one event-loop turn land in one round.
    await Promise.all(groups.map((g) => leader.mr.propose(g, enc(`v${g}`), 3000)));
    const widest = Math.max(...leader.store.groupsPerWrite.slice(before));
    assert.equal(widest, groups.length, `expected one write carrying all ${groups.length} groups, saw ${leader.store.groupsPerWrite.slice(before).join(",")}`);
  } finally {
    await c.close();
  }
});

test("after the leader is cut off, a new leader commits and the old one's pending proposal does not resolve", async () => {
  const c = await startCluster([1, 2, 3], [100]);
  try {
    c.nodes[0]!.mr.campaign(100);
    const old = await waitFor("a leader", () => leaderOf(c.nodes, 100));
    await old.mr.propose(100, enc("before"), 2000);
    c.hub.isolate(old.id);
    const stranded = old.mr.propose(100, enc("stranded"), 600).then(
      () => "resolved",
      (e: { code?: string }) => e.code,
    );
    const next = await waitFor("a new leader", () => leaderOf(c.nodes, 100, old.id), 5000);
    await next.mr.propose(100, enc("after"), 2000);
    assert.notEqual(await stranded, "resolved");
    c.hub.isolate(old.id, false);
    await waitFor("the old leader catches up", () => (old.sms.get(100)!.applied.includes("after") ? true : undefined), 5000);
    assert.deepEqual(old.sms.get(100)!.applied, ["before", "after"]);
  } finally {
    await c.close();
  }
});

test("readIndex on the leader resolves at or after the last committed write", async () => {
  const c = await startCluster([1, 2, 3], [100]);
  try {
    c.nodes[0]!.mr.campaign(100);
    const leader = await waitFor("a leader", () => leaderOf(c.nodes, 100));
    const index = await leader.mr.propose(100, enc("w"), 2000);
    const read = await leader.mr.readIndex(100, 2000);
    assert.ok(read >= index, `read index ${read} < write index ${index}`);
  } finally {
    await c.close();
  }
});

// ---------------------------------------------------------------- quiescence and node liveness

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether every replica of every group is quiesced and no node ticks any group. */
function allQuiesced(nodes: readonly TestNode[], groups: readonly GroupId[]): boolean {
  return nodes.every((n) => n.mr.awakeCount() === 0 && groups.every((g) => n.mr.status(g)?.quiesced === true));
}

/** A cluster with quiescence on, node 1 leading every group, each group with one entry applied, all quiesced. */
async function quiescedCluster(groups: readonly GroupId[]): Promise<Awaited<ReturnType<typeof startCluster>>> {
  const c = await startCluster([1, 2, 3], groups, { quiesce: true });
  try {
    for (const g of groups) c.nodes[0]!.mr.campaign(g);
    await waitFor("node 1 leads every group", () => groups.every((g) => c.nodes[0]!.mr.status(g)?.role === "leader") || undefined);
    await Promise.all(groups.map((g) => c.nodes[0]!.mr.propose(g, enc(`v${g}`), 3000)));
    await waitFor("every group quiesced", () => allQuiesced(c.nodes, groups) || undefined);
  } catch (e) {
    await c.close();
    throw e;
  }
  return c;
}

const GROUPS = Array.from({ length: 20 }, (_, i) => 300 + i);

test("quiescence: idle groups stop heartbeating and are not ticked; node keep-alives flow instead", async () => {
  const c = await quiescedCluster(GROUPS);
  try {
    const messages = c.hub.delivered;
    const keepAlives = c.hub.keepAlives;
    await sleep(30 * TICK_MS);
    assert.equal(c.hub.delivered, messages, "no Raft message in 30 ticks");
    const pairs = 3 * 2;
    // One keep-alive per ordered pair of nodes per tick (timers may run late, never early).
    assert.ok(c.hub.keepAlives - keepAlives >= pairs * 15, `${c.hub.keepAlives - keepAlives} keep-alives in 30 ticks`);
    assert.ok(c.hub.keepAlives - keepAlives <= pairs * 31, `${c.hub.keepAlives - keepAlives} keep-alives in 30 ticks`);
    for (const n of c.nodes) for (const g of GROUPS) assert.equal(n.mr.status(g)?.role, n.id === 1 ? "leader" : "follower");
  } finally {
    await c.close();
  }
});

test("quiescence off (the core's default): leaders heartbeat every tick and no keep-alive is sent", async () => {
  const c = await startCluster([1, 2, 3], [100]);
  try {
    c.nodes[0]!.mr.campaign(100);
    await waitFor("a leader", () => leaderOf(c.nodes, 100));
    await sleep(5 * TICK_MS);
    const messages = c.hub.delivered;
    await sleep(10 * TICK_MS);
    assert.ok(c.hub.delivered - messages >= 10, `${c.hub.delivered - messages} messages in 10 ticks`);
    assert.equal(c.hub.keepAlives, 0);
    assert.equal(c.nodes[0]!.mr.awakeCount(), 1);
  } finally {
    await c.close();
  }
});

test("quiescence: a proposal to a quiesced group commits and is applied everywhere; the group quiesces again", async () => {
  const c = await quiescedCluster(GROUPS);
  try {
    const g = GROUPS[7]!;
    const index = await c.nodes[0]!.mr.propose(g, enc("after"), 2000);
    assert.ok(index > 0);
    for (const n of c.nodes) await waitFor(`node ${n.id} applies`, () => n.sms.get(g)!.applied.includes("after") || undefined);
    for (const n of c.nodes) assert.deepEqual(n.sms.get(g)!.applied, [`v${g}`, "after"]);
    await waitFor("quiesced again", () => allQuiesced(c.nodes, GROUPS) || undefined);
  } finally {
    await c.close();
  }
});

test("quiescence: when the leaders' node is cut off, every group elects a new leader after the liveness timeout plus an election timeout", async (t) => {
  const c = await quiescedCluster(GROUPS);
  try {
    await sleep(5 * TICK_MS);
    const cut = Date.now();
    c.hub.isolate(1);
    await waitFor("new leaders on nodes 2 and 3", () => GROUPS.every((g) => leaderOf(c.nodes, g, 1) !== undefined) || undefined, 5000);
    const elapsedMs = Date.now() - cut;
    t.diagnostic(`${GROUPS.length} groups have new leaders ${elapsedMs} ms after the cut (tick ${TICK_MS} ms, electionTicks ${ELECTION_TICKS})`);
    // Silent for more than ELECTION_TICKS ticks, then a randomized election timeout of at least ELECTION_TICKS.
    assert.ok(elapsedMs >= (2 * ELECTION_TICKS - 1) * TICK_MS, `new leaders after ${elapsedMs} ms: the followers did not wait for the liveness timeout`);
    assert.ok(elapsedMs <= 3000, `new leaders only after ${elapsedMs} ms`);
    for (const g of GROUPS.slice(0, 3)) {
      const leader = leaderOf(c.nodes, g, 1)!;
      await leader.mr.propose(g, enc("failover"), 2000);
    }
  } finally {
    await c.close();
  }
});

test("quiescence: a node that is cut off only briefly (less than the liveness timeout) leaves its quiesced groups alone", async () => {
  const c = await quiescedCluster(GROUPS);
  try {
    c.hub.isolate(1);
    await sleep((ELECTION_TICKS / 2) * TICK_MS);
    c.hub.isolate(1, false);
    await sleep(3 * ELECTION_TICKS * TICK_MS);
    assert.ok(allQuiesced(c.nodes, GROUPS));
    for (const g of GROUPS) assert.equal(leaderOf(c.nodes, g)?.id, 1);
  } finally {
    await c.close();
  }
});

test("per-group core settings: on a lazyCommit host, a group added with lazyCommit false tells its followers each commit at once", async () => {
  // Heartbeats every 49 ticks (490 ms): a lazy group's followers would wait up to that long.
  const c = await startCluster([1, 2, 3], [100, 200], { electionTicks: 50, heartbeatTicks: 49, lazyCommit: true }, (g) => (g === 200 ? { lazyCommit: false } : {}));
  try {
    for (const g of [100, 200]) c.nodes[0]!.mr.campaign(g);
    for (const g of [100, 200]) await waitFor(`a leader of ${g}`, () => leaderOf(c.nodes, g));
    const leader = leaderOf(c.nodes, 200)!;
    const index = await leader.mr.propose(200, enc("eager"), 2000);
    for (const n of c.nodes) await waitFor(`node ${n.id} learns commit ${index} of group 200 without a heartbeat`, () => (n.mr.status(200)!.commit >= index) || undefined, 200);
  } finally {
    await c.close();
  }
});

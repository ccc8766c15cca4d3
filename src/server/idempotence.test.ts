/**
 * Exactly-once produce on a real 3-node cluster (`raftmq node` processes, cluster/local-cluster.ts):
 * an idempotent producer keeps producing while the leader of a partition is killed with SIGKILL;
 * afterwards every acknowledged record is in the log exactly once at the offset it was
 * acknowledged with, no record appears twice, each partition holds the producer's records in
 * send order, and offsets are consecutive. Then a second producer of the same name starts, and
 * the first (now a zombie) is fenced: its records are refused with ProducerFencedError, both on a
 * partition the new producer has written to and on one it has not.
 *
 * The cluster runs in a fresh temporary directory; every process is stopped by PID on success and
 * failure (t.after), and the directory is kept (with node-N.log files) only on failure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { LocalCluster } from "../../cluster/local-cluster.js";
import { connect, ProducerFencedError, type ClientOptions, type FetchedRecord, type Producer, type ProduceResult, type RaftmqClient } from "../client/index.js";

const NODE_ARGS = ["--tick-interval-ms", "50", "--election-ticks", "10", "--shutdown-timeout-ms", "3000"];
/** Short per-attempt timeouts, so that a request to a frozen leader is retried elsewhere soon. */
const CLIENT: Omit<ClientOptions, "brokers"> = {
  requestTimeoutMs: 2_000,
  produceTimeoutMs: 1_500,
  metadataTimeoutMs: 1_000,
  retry: { attemptsMax: 1_000, backoffInitialMs: 10, backoffMaxMs: 100, deadlineMs: 20_000 },
};
const TOPIC = "exactly-once";
const PARTITIONS = 3;
const RECORDS = 3_000;
/** The leader of partition 0 is killed once this many records are acknowledged. */
const KILL_AFTER = 1_000;
/** Sends not yet acknowledged, at most (keeps batches flowing while the kill happens). */
const WINDOW = 300;

async function readAll(client: RaftmqClient, partition: number): Promise<FetchedRecord[]> {
  const out: FetchedRecord[] = [];
  let offset = 0;
  for (let page = 0; page < 10_000; page++) {
    const r = await client.fetch(TOPIC, partition, offset, { maxBytes: 256 * 1024 });
    out.push(...r.records);
    if (r.nextOffset >= r.highWatermark) return out;
    offset = r.nextOffset;
  }
  throw new Error(`partition ${partition} did not end within 10000 pages`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = "never probed";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
      last = "not yet";
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The leader of `partition` as the metadata says. */
async function leaderOf(client: RaftmqClient, partition: number): Promise<number> {
  return (await client.metadata()).topics.find((x) => x.name === TOPIC)!.partitions[partition]!.leader;
}

/**
 * Sends records `from` to `to` (ids r-<i>, partition i mod PARTITIONS) with at most WINDOW
 * unacknowledged, runs `disrupt` once KILL_AFTER of them are acknowledged, and waits for all.
 */
async function produce(
  producer: Producer, from: number, to: number, acked: Map<string, ProduceResult>, failures: unknown[], disrupt: () => Promise<number>,
): Promise<{ node: number; atMs: number; elapsedMs: number }> {
  const pending = new Set<Promise<void>>();
  const started = performance.now();
  let disrupted: { node: number; atMs: number } | undefined;
  let ackedHere = 0;
  for (let i = from; i < to; i++) {
    const id = `r-${i}`;
    const p = producer.send(TOPIC, { id, body: `record ${i}`, producerTimestampMs: i }, { partition: i % PARTITIONS }).then(
      (r) => {
        acked.set(id, r);
        ackedHere++;
      },
      (e: unknown) => void failures.push(e),
    );
    const tracked = p.finally(() => pending.delete(tracked));
    pending.add(tracked);
    if (pending.size >= WINDOW) await Promise.race(pending);
    if (disrupted === undefined && ackedHere >= KILL_AFTER) disrupted = { node: await disrupt(), atMs: Math.round(performance.now() - started) };
  }
  await Promise.all(pending);
  await producer.flush();
  assert.ok(disrupted !== undefined, "the disruption happened during production");
  return { ...disrupted, elapsedMs: Math.round(performance.now() - started) };
}

/**
 * Every acknowledged record is in the log exactly once at its acknowledged offset, no record is
 * there twice or unacknowledged, offsets are consecutive, and each partition keeps send order.
 */
async function verify(client: RaftmqClient, acked: ReadonlyMap<string, ProduceResult>): Promise<void> {
  const seen = new Set<string>();
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const records = await waitFor(`partition ${partition} readable`, () => readAll(client, partition));
    records.forEach((r, k) => {
      assert.equal(r.offset, k, `partition ${partition}: offsets are consecutive from 0`);
      assert.ok(!seen.has(r.id), `record ${r.id} appears twice (again at ${partition}:${r.offset})`);
      seen.add(r.id);
      const ack = acked.get(r.id);
      assert.ok(ack !== undefined, `record ${r.id} at ${partition}:${r.offset} was never acknowledged`);
      assert.deepEqual([ack.partition, ack.offset], [partition, r.offset], `record ${r.id} is where its acknowledgement said`);
    });
    const order = records.map((r) => Number(r.id.slice(2)));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `partition ${partition}: records in send order`);
  }
  assert.equal(seen.size, acked.size, "every acknowledged record is in the log");
}

test("kill -9 of a partition leader during idempotent production: every acknowledged record exactly once, no gap; a zombie producer is fenced", { timeout: 120_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-idempotence-"));
  let failed = true;
  const cluster = await LocalCluster.start(3, { dataDir, logLevel: "info", nodeArgs: NODE_ARGS, stopTimeoutMs: 10_000 });
  const client = connect({ brokers: cluster.brokers(), ...CLIENT });
  const zombieClient = connect({ brokers: cluster.brokers(), ...CLIENT });
  t.after(async () => {
    await client.close();
    await zombieClient.close();
    await cluster.stop();
    if (failed) {
      console.log(`[idempotence] kept ${dataDir} (node-N.log) for diagnosis`);
      for (const n of cluster.nodes) console.log(`node ${n.id}:\n  ${cluster.logTail(n.id).slice(-10).join("\n  ")}`);
    } else rmSync(dataDir, { recursive: true, force: true });
  });
  await cluster.waitHealthy(30_000);
  await client.createTopic(TOPIC, { partitions: PARTITIONS, replicationFactor: 3 });
  await waitFor("a leader for every partition", async () => {
    const topic = (await client.metadata()).topics.find((x) => x.name === TOPIC);
    return topic !== undefined && topic.partitions.every((p) => p.leader > 0) ? topic : undefined;
  });

  // ---- phase 1: production with a kill -9 of partition 0's leader in the middle
  const producer = zombieClient.producer({ producerName: "ingest", lingerMs: 2, batchRecordsMax: 50 });
  const acked = new Map<string, ProduceResult>();
  const failures: unknown[] = [];
  const killed = await produce(producer, 0, RECORDS, acked, failures, async () => {
    const leader = await leaderOf(client, 0);
    cluster.kill(leader, "SIGKILL");
    return leader;
  });
  console.log(`[idempotence] phase 1: ${RECORDS} records in ${killed.elapsedMs} ms; node ${killed.node} (leader of partition 0) killed with SIGKILL at ${killed.atMs} ms; ${failures.length} sends failed; ${producer.duplicateBatches} retried batches answered as duplicates`);
  assert.deepEqual(failures.map(String), [], "every send was acknowledged (the client retried through the failover)");
  await verify(client, acked);

  // ---- phase 2: the killed node is back; partition 1's leader is frozen (SIGSTOP) mid-production.
  // Batches it had already replicated commit under the next leader while their answers never
  // come; the client's retries then reach the new leader, which must answer them as duplicates.
  cluster.startNode(killed.node);
  await cluster.waitHealthy(30_000);
  const duplicatesBefore = producer.duplicateBatches;
  const frozen = await produce(producer, RECORDS, 2 * RECORDS, acked, failures, async () => {
    const leader = await leaderOf(client, 1);
    cluster.kill(leader, "SIGSTOP");
    return leader;
  });
  cluster.kill(frozen.node, "SIGCONT");
  console.log(`[idempotence] phase 2: ${RECORDS} records in ${frozen.elapsedMs} ms; node ${frozen.node} (leader of partition 1) stopped with SIGSTOP at ${frozen.atMs} ms; ${failures.length} sends failed; ${producer.duplicateBatches - duplicatesBefore} retried batches answered as duplicates`);
  assert.deepEqual(failures.map(String), [], "every send was acknowledged");
  await verify(client, acked);

  // ---- a second producer of the same name fences the first
  const successor = client.producer({ producerName: "ingest", lingerMs: 0 });
  const after = await successor.send(TOPIC, { id: "successor-0", body: "new session" }, { partition: 0 });
  // Partition 1: the successor has not written there; the partition leader's metadata replica fences the zombie.
  await assert.rejects(producer.send(TOPIC, { id: "zombie-1", body: "late" }, { partition: 1 }), ProducerFencedError);
  await assert.rejects(producer.send(TOPIC, { id: "zombie-0", body: "late" }, { partition: 0 }), ProducerFencedError);
  assert.equal((await successor.send(TOPIC, { id: "successor-1", body: "goes on" }, { partition: 0 })).offset, after.offset + 1);
  const tail = await readAll(client, 0);
  assert.deepEqual(tail.slice(-2).map((r) => r.id), ["successor-0", "successor-1"]);
  assert.ok(!(await readAll(client, 1)).some((r) => r.id.startsWith("zombie")), "nothing of the zombie was written");
  failed = false;
});

/**
 * The lossy engine (failpoint storage/lose-unsynced): acknowledged writes wait in memory until a
 * read, a clear, close() or the write-back timer writes them out; abandoning it (a crash: the
 * inner engine closed without the queue written out) loses them. Deterministic: the timer is set
 * to an hour except in the one test about the timer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine, type Engine, type EngineOp } from "./engine.js";
import { LossyEngine } from "./lossy-engine.js";

const HOUR_MS = 3_600_000;
const put = (k: string, v: string): EngineOp => ({ type: "put", key: Buffer.from(k), value: Buffer.from(v) });
const del = (k: string): EngineOp => ({ type: "del", key: Buffer.from(k) });
const range = (gte: string, lt: string) => ({ gte: Buffer.from(gte), lt: Buffer.from(lt) });

async function keys(engine: Engine, gte = "a", lt = "z"): Promise<string[]> {
  const out: string[] = [];
  for await (const { key, value } of engine.scan(range(gte, lt))) out.push(`${key.toString()}=${value.toString()}`);
  return out;
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "raftmq-lossy-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("writes are acknowledged without reaching the inner engine, and reads see them over it without writing them out", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const lossy = new LossyEngine(inner, { writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("a1", "x"), put("a2", "y")], true);
    await lossy.write([del("a1"), put("a3", "z")], true);
    assert.equal(lossy.queuedBatches, 2);
    assert.equal(await inner.get(Buffer.from("a2")), undefined, "not written");
    assert.equal((await lossy.get(Buffer.from("a2")))?.toString(), "y");
    assert.equal(await lossy.get(Buffer.from("a1")), undefined, "a queued delete hides the queued put");
    assert.equal(lossy.queuedBatches, 2, "reads do not write the queue out");
    assert.deepEqual(await keys(lossy), ["a2=y", "a3=z"], "a scan sees the queue over the engine");
    await lossy.writeBack();
    assert.equal(lossy.queuedBatches, 0);
    assert.deepEqual(await keys(inner), ["a2=y", "a3=z"], "written out in order");
    await lossy.write([put("b1", "1")], false);
    assert.deepEqual(await keys(lossy), ["a2=y", "a3=z", "b1=1"], "a scan sees queued writes too");
    // Clears and later writes keep their order.
    await lossy.write([put("c1", "old")], false);
    await lossy.clear(range("c", "d"));
    await lossy.write([put("c2", "new")], false);
    assert.deepEqual(await keys(lossy, "c", "d"), ["c2=new"]);
    await lossy.close();
  });
});

test("a crash (the inner engine closed without a write-back) loses the queued writes; written-out ones survive", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const lossy = new LossyEngine(inner, { writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("k1", "kept")], true);
    await lossy.writeBack();
    await lossy.write([put("k2", "lost")], true);
    await lossy.write([put("k1", "overwritten, lost")], true);
    assert.equal((await inner.get(Buffer.from("k1")))?.toString(), "kept");
    await inner.close(); // the crash: the queue is never written out
    const after = await openEngine(dir);
    try {
      assert.deepEqual(await keys(after), ["k1=kept"]);
    } finally {
      await after.close();
    }
  });
});

test("close() writes the queue out, so the writes survive a reopen", async () => {
  await withDir(async (dir) => {
    const lossy = new LossyEngine(await openEngine(dir), { writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("m1", "1")], true);
    await lossy.write([put("m2", "2")], false);
    await lossy.close();
    await lossy.close(); // idempotent
    await assert.rejects(lossy.write([put("m3", "3")], true), /closed/);
    const after = await openEngine(dir);
    try {
      assert.deepEqual(await keys(after), ["m1=1", "m2=2"]);
    } finally {
      await after.close();
    }
  });
});

test("the write-back timer writes acknowledged writes out on its own", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const lossy = new LossyEngine(inner, { writeBackIntervalMs: 20 });
    await lossy.write([put("t1", "1")], true);
    const deadline = Date.now() + 5_000;
    while ((await inner.get(Buffer.from("t1"))) === undefined) {
      assert.ok(Date.now() < deadline, "the write-back timer did not write within 5 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(lossy.queuedBatches, 0);
    await lossy.close();
  });
});

test("a queue over queuedBytesMax is written out before the write is acknowledged", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const lossy = new LossyEngine(inner, { writeBackIntervalMs: HOUR_MS, queuedBytesMax: 100 });
    await lossy.write([put("q1", "x".repeat(50))], true);
    assert.equal(lossy.queuedBatches, 1);
    await lossy.write([put("q2", "y".repeat(60))], true);
    assert.equal(lossy.queuedBatches, 0);
    assert.deepEqual((await keys(inner)).map((kv) => kv.slice(0, 2)), ["q1", "q2"]);
    await lossy.close();
  });
});

test("a failed write-back fails every later call", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const failing: Engine = { ...bindAll(inner), write: () => Promise.reject(new Error("disk full")) };
    const lossy = new LossyEngine(failing, { writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("f1", "1")], true);
    await assert.rejects(lossy.writeBack(), /disk full/);
    await assert.rejects(lossy.write([put("f2", "2")], true), /write-back of the lossy engine failed/);
    await assert.rejects(lossy.clear(range("a", "z")), /write-back of the lossy engine failed/);
    await lossy.close();
  });
});

function bindAll(e: Engine): Engine {
  return {
    dir: e.dir,
    get: (k) => e.get(k),
    write: (ops, sync) => e.write(ops, sync),
    scan: (r, o) => e.scan(r, o),
    clear: (r) => e.clear(r),
    compactRange: (r) => e.compactRange(r),
    close: () => e.close(),
  };
}

test("power-loss emulation (honourSync): a synced write makes every earlier write durable; a crash loses only unsynced writes after it", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    const lossy = new LossyEngine(inner, { honourSync: true, writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("a1", "1")], false);
    assert.equal(lossy.queuedBatches, 1, "an unsynced write waits in memory");
    await lossy.write([put("a2", "2")], true);
    assert.equal(lossy.queuedBatches, 0, "a synced write writes the queue and itself out before resolving");
    await lossy.write([put("a3", "3")], false);
    await inner.close(); // the crash: the unsynced a3 never reached the disk
    const reopened = await openEngine(dir);
    try {
      assert.deepEqual(await keys(reopened), ["a1=1", "a2=2"]);
    } finally {
      await reopened.close();
    }
  });
});

test("a scan lays the queue over the engine: queued puts replace or add pairs, queued deletes hide them, in order, reverse and limited", async () => {
  await withDir(async (dir) => {
    const inner = await openEngine(dir);
    await inner.write([put("k1", "a"), put("k3", "a"), put("k5", "a")], true);
    const lossy = new LossyEngine(inner, { writeBackIntervalMs: HOUR_MS });
    await lossy.write([put("k2", "b"), del("k3"), put("k5", "b"), put("k6", "b")], false);
    assert.deepEqual(await keys(lossy, "k", "l"), ["k1=a", "k2=b", "k5=b", "k6=b"]);
    const reversed: string[] = [];
    for await (const { key, value } of lossy.scan(range("k", "l"), { reverse: true, limit: 3 })) reversed.push(`${key.toString()}=${value.toString()}`);
    assert.deepEqual(reversed, ["k6=b", "k5=b", "k2=b"]);
    const limited: string[] = [];
    for await (const { key } of lossy.scan(range("k", "l"), { limit: 2 })) limited.push(key.toString());
    assert.deepEqual(limited, ["k1", "k2"]);
    assert.equal(await inner.get(Buffer.from("k2")), undefined, "still only queued");
    await lossy.close();
  });
});

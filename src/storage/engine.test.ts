import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine, type Engine } from "./engine.js";

async function withEngine(body: (e: Engine) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "raftmq-engine-"));
  const engine = await openEngine(join(dir, "nested", "db"));
  try {
    await body(engine);
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const k = (n: number): Buffer => Buffer.of(n);
const all = { gte: k(0), lt: k(255) };

async function keys(e: Engine, range = all, options = {}): Promise<number[]> {
  const out: number[] = [];
  for await (const kv of e.scan(range, options)) out.push(kv.key[0]!);
  return out;
}

test("get, atomic batches in order, and a missing key", () => withEngine(async (e) => {
  assert.equal(await e.get(k(1)), undefined);
  await e.write([{ type: "put", key: k(1), value: Buffer.from("a") }, { type: "del", key: k(1) }, { type: "put", key: k(1), value: Buffer.from("b") }, { type: "put", key: k(2), value: Buffer.alloc(0) }], true);
  assert.equal((await e.get(k(1)))?.toString(), "b", "later operations of a batch win");
  assert.deepEqual(await e.get(k(2)), Buffer.alloc(0), "an empty value is not a missing one");
}));

test("scans go forward or in reverse, bounded by range and limit; breaking out releases the iterator", () => withEngine(async (e) => {
  await e.write([1, 2, 3, 4, 5].map((n) => ({ type: "put" as const, key: k(n), value: Buffer.of(n * 10) })), false);
  assert.deepEqual(await keys(e), [1, 2, 3, 4, 5]);
  assert.deepEqual(await keys(e, { gte: k(2), lt: k(5) }), [2, 3, 4]);
  assert.deepEqual(await keys(e, all, { reverse: true, limit: 2 }), [5, 4]);
  for await (const kv of e.scan(all)) {
    assert.equal(kv.value[0], 10);
    break;
  }
  await e.clear({ gte: k(2), lt: k(4) });
  assert.deepEqual(await keys(e), [1, 4, 5]);
  await e.compactRange(all);
  assert.deepEqual(await keys(e), [1, 4, 5]);
}));

test("a scan sees the data as of its start", () => withEngine(async (e) => {
  await e.write([{ type: "put", key: k(1), value: Buffer.of(1) }, { type: "put", key: k(2), value: Buffer.of(2) }], false);
  const seen: number[] = [];
  for await (const kv of e.scan(all)) {
    seen.push(kv.key[0]!);
    if (seen.length === 1) await e.write([{ type: "del", key: k(2) }, { type: "put", key: k(3), value: Buffer.of(3) }], false);
  }
  assert.deepEqual(seen, [1, 2]);
}));

/**
 * Flow control of a partition subscription: the pump never sends more records than the record
 * credit, never starts a record without byte credit, overshoots the byte credit by at most the
 * first record of a message, waits for credits, follows the log with long polls, and ends with
 * the source's error (a leader change). A property test drives random grants against a fake log;
 * one test runs against a real partition leader of an in-process cluster.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BrokerError } from "../lib/errors.js";
import { recordCreditBytes, Subscription, type RecordSource, type SizedRecord, type SubscriptionBatch } from "./subscription.js";
import { InProcessCluster } from "./testing/in-process-cluster.js";

interface Rec extends SizedRecord {
  readonly id: string;
}

const rec = (offset: number, bodyBytes: number): Rec => ({ offset, id: `r${offset}`, key: new Uint8Array(), body: new Uint8Array(bodyBytes), headers: [] });

/** A log in memory; fetch returns up to maxBytes of records from offset (at least one), waiting a little when none. */
class FakeLog implements RecordSource<Rec> {
  records: Rec[] = [];
  failWith: Error | undefined;
  fetches = 0;

  append(...sizes: number[]): void {
    for (const s of sizes) this.records.push(rec(this.records.length, s));
  }

  async fetch(_topic: string, _partition: number, offset: number, maxBytes: number, maxWaitMs: number) {
    this.fetches++;
    if (this.failWith !== undefined) throw this.failWith;
    if (offset >= this.records.length) await new Promise((r) => setTimeout(r, Math.min(maxWaitMs, 5)));
    const out: Rec[] = [];
    let bytes = 0;
    for (const r of this.records.slice(offset)) {
      bytes += r.body.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(r);
    }
    return { records: out, highWatermark: this.records.length, nextOffset: offset + out.length };
  }
}

function harness(log: FakeLog, offset = 0) {
  const got: SubscriptionBatch<Rec>[] = [];
  const sub = new Subscription<Rec>({ source: log, topic: "t", partition: 0, offset, pollWaitMs: 5, send: async (b) => void got.push(b) });
  const done = sub.run();
  const received = (): number[] => got.flatMap((b) => b.records.map((r) => r.offset));
  return { sub, done, got, received };
}

const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("records are sent only against record credit, in order, from the start offset", async () => {
  const log = new FakeLog();
  log.append(...Array.from({ length: 20 }, () => 10));
  const h = harness(log, 3);
  await settle();
  assert.deepEqual(h.received(), [], "no credit, nothing sent");
  h.sub.grant(5, 1_000_000);
  await settle();
  assert.deepEqual(h.received(), [3, 4, 5, 6, 7]);
  h.sub.grant(100, 1_000_000);
  await settle();
  assert.deepEqual(h.received(), Array.from({ length: 17 }, (_, i) => i + 3));
  log.append(10, 10);
  await settle();
  assert.deepEqual(h.received().slice(-2), [20, 21], "new records follow by long poll");
  assert.equal(h.sub.credits.records, 100 - 12 - 2 + 0);
  h.sub.close();
  await h.done;
});

test("byte credit: a record starts only with credit left, and only the first of a message may overshoot", async () => {
  const log = new FakeLog();
  log.append(40, 40, 40, 500, 10);
  const h = harness(log);
  h.sub.grant(100, 100);
  await settle();
  assert.deepEqual(h.got[0]!.records.map((r) => r.offset), [0, 1], "the third 40-byte record does not fit in the 20 bytes left of the message");
  assert.deepEqual(h.received(), [0, 1, 2], "it starts the next message, overshooting by 20");
  assert.equal(h.sub.credits.bytes, -20);
  h.sub.grant(0, 15);
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2], "nothing while the byte credit is not positive");
  h.sub.grant(0, 15); // 10 bytes of credit: the 500-byte record goes alone
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2, 3]);
  assert.equal(h.sub.credits.bytes, 10 - 500);
  h.sub.grant(0, 500);
  await settle();
  assert.deepEqual(h.received(), [0, 1, 2, 3, 4]);
  for (const b of h.got) assert.equal(b.chargedBytes, b.records.reduce((n, r) => n + recordCreditBytes(r), 0));
  h.sub.close();
  await h.done;
});

test("the source's error ends the subscription (a leader change)", async () => {
  const log = new FakeLog();
  log.append(1);
  const h = harness(log);
  h.sub.grant(10, 100);
  await settle();
  log.failWith = new BrokerError("NOT_LEADER", "moved");
  await assert.rejects(h.done, /moved/);
});

test("property: whatever the grants, received ≤ granted records, bytes ≤ granted + one record, in order, no gaps", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 8 }),
      async (sizes, grants) => {
        const log = new FakeLog();
        log.append(...sizes);
        const h = harness(log);
        let records = 0;
        let bytes = 0;
        for (const [r, b] of grants) {
          h.sub.grant(r, b);
          records += r;
          bytes += b;
          await settle(3);
          const got = h.received();
          assert.ok(got.length <= records, `${got.length} records sent against ${records} granted`);
          const sent = got.reduce((n, o) => n + sizes[o]!, 0);
          const largest = Math.max(0, ...got.map((o) => sizes[o]!));
          assert.ok(sent <= bytes + largest, `${sent} bytes sent against ${bytes} granted`);
          assert.deepEqual(got, got.map((_, i) => i), "in order, from 0, without gaps");
        }
        h.sub.close();
        await h.done;
      },
    ),
    { numRuns: 40 },
  );
});

test("against a real partition leader: credits bound delivery, and a leader change ends the stream with NOT_LEADER", async () => {
  const c = await InProcessCluster.start({ nodes: 3, seed: 5 });
  try {
    await c.createTopic({ name: "s" });
    const leader = await c.partitionLeader("s");
    const records = Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, key: new Uint8Array(), headers: [], body: new Uint8Array(8), producerTimestampMs: 1 }));
    await leader.broker.produce("s", 0, records as never, 3_000);
    const got: number[] = [];
    const sub = new Subscription({ source: leader.broker, topic: "s", partition: 0, offset: 0, pollWaitMs: 50, send: async (b) => void got.push(...b.records.map((r) => r.offset)) });
    const done = sub.run();
    sub.grant(12, 1 << 20);
    await settle(100);
    assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i));
    sub.grant(100, 1 << 20);
    await settle(100);
    assert.equal(got.length, 30);
    const other = c.nodes.find((n) => n.id !== leader.id)!;
    leader.multiraft.transferLeadership(c.node(leader.id).metadata.topics.get("s")!.partitions[0]!.group, other.id);
    await assert.rejects(done, (e: unknown) => e instanceof BrokerError && e.code === "NOT_LEADER");
  } finally {
    await c.close();
  }
});

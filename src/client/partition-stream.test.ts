/**
 * A partition stream's handling of Consume messages, against a fake stream (no server): it asks
 * for stored batches, decodes them with the fetch's decoder, skips the records below its position
 * (the first batch may start before it) and the expired ones (by the leader's time in the
 * message), delivers the same ConsumedRecord objects as from a leader that sends decoded records,
 * counts the credits each message says it used, and drops a stream whose batch does not decode,
 * resubscribing from the offset after the last record it delivered.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { ManualClock } from "../lib/clock.js";
import { silentLogger } from "../lib/logger.js";
import { decodeBatch, encodeBatch, isExpired, type ProducedRecord, type StoredRecord } from "../format/index.js";
import type { ConsumeMessage, ConsumeStart, GroupChannels } from "./group-channels.js";
import type { GroupClient } from "./groups.js";
import { PartitionStream, type ConsumedRecord } from "./partition-stream.js";
import type { WireRecord } from "./wire.js";

const BROKER_MS = 1_700_000_000_000;

class FakeStream extends EventEmitter {
  readonly writes: { start?: ConsumeStart; credit?: { records: number; bytes: number } }[] = [];
  cancelled = false;

  write(m: { start?: ConsumeStart; credit?: { records: number; bytes: number } }): boolean {
    this.writes.push(m);
    return true;
  }

  cancel(): void {
    this.cancelled = true;
  }
}

function setup(position: number) {
  const clock = new ManualClock();
  const streams: FakeStream[] = [];
  const delivered: ConsumedRecord[][] = [];
  const channels = { consume: () => (streams.push(new FakeStream()), streams[streams.length - 1]!) } as unknown as GroupChannels;
  const deps = {
    channels,
    groups: {} as GroupClient,
    clock,
    logger: silentLogger,
    leaderOf: async () => ({ id: 1, address: "127.0.0.1:1" }),
    noteLeader: () => {},
    invalidateMetadata: () => {},
  };
  const stream = new PartitionStream(deps, "t", 2, position, {
    initialCredit: () => ({ records: 100, bytes: 100_000 }),
    onRecords: (records) => void delivered.push(records),
  });
  return { clock, streams, delivered, stream };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const record = (i: number, ttlMs = 0): ProducedRecord => ({
  id: `id-${i}`, key: i % 2 === 0 ? new Uint8Array() : Buffer.from(`k${i}`), headers: [{ key: "h", value: Buffer.from([i]) }], body: Buffer.from(`body-${i}`),
  producerTimestampMs: 5 + i, correlationId: i === 3 ? "c" : "", replyTo: "", contentType: "text/plain", ttlMs, priority: i % 3,
});

/** A Consume message of stored batches, as a leader sends it with ConsumeStart.batches. */
function batchMessage(batches: { baseOffset: number; data: Uint8Array }[], o: { chargedRecords: number; nextOffset: number; brokerTimeMs: number }): ConsumeMessage {
  return { records: [], batches, highWatermark: o.nextOffset, nextOffset: o.nextOffset, chargedRecords: o.chargedRecords, chargedBytes: 1_000, brokerTimeMs: o.brokerTimeMs };
}

/** The wire form a leader sends without batches (server/broker-service.ts toWire). */
function wireOf(r: StoredRecord): WireRecord {
  return { ...r, key: Buffer.from(r.key), body: Buffer.from(r.body), headers: r.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value) })), expired: false };
}

test("stored batches are decoded, records below the position and expired ones skipped, as the same records a record stream delivers", async () => {
  const s = setup(3);
  s.stream.start();
  await tick();
  assert.equal(s.streams[0]!.writes[0]!.start?.batches, true, "asks for stored batches");
  assert.equal(s.streams[0]!.writes[0]!.start?.offset, 3);
  // Offsets 0..4 and 5..7; record 4 expired at the leader's time (TTL 10 ms after its broker timestamp).
  const first = encodeBatch([0, 1, 2, 3, 4].map((i) => record(i, i === 4 ? 10 : 0)), BROKER_MS);
  const second = encodeBatch([5, 6, 7].map((i) => record(i, 60_000)), BROKER_MS);
  const nowMs = BROKER_MS + 20;
  s.streams[0]!.emit("data", batchMessage([{ baseOffset: 0, data: first }, { baseOffset: 5, data: second }], { chargedRecords: 5, nextOffset: 8, brokerTimeMs: nowMs }));
  assert.deepEqual(s.delivered.map((m) => m.map((r) => r.offset)), [[3, 5, 6, 7]]);
  assert.equal(s.stream.position, 8);
  assert.equal(s.stream.inflightRecords, 100 - 5, "the records the message says it charged, the expired one included");
  assert.equal(s.stream.inflightBytes, 100_000 - 1_000);

  // The same records from a leader that sends them decoded (and leaves out the expired one).
  const old = setup(3);
  old.stream.start();
  await tick();
  const stored = [...decodeBatch(first, 0), ...decodeBatch(second, 5)].filter((r) => r.offset >= 3 && !isExpired(r, nowMs));
  old.streams[0]!.emit("data", { records: stored.map(wireOf), batches: [], highWatermark: 8, nextOffset: 8, chargedRecords: 0, chargedBytes: 1_000, brokerTimeMs: 0 });
  assert.deepEqual(s.delivered, old.delivered);
  assert.equal(old.stream.inflightRecords, 100 - 4, "a record stream charges each record it sends");
  const r3 = s.delivered[0]![0]!;
  assert.deepEqual(r3, {
    partition: 2, offset: 3, key: Buffer.from("k3"), headers: [{ key: "h", value: Buffer.from([3]) }], body: Buffer.from("body-3"), id: "id-3",
    producerTimestampMs: 8, brokerTimestampMs: BROKER_MS, correlationId: "c", replyTo: "", contentType: "text/plain", ttlMs: 0, priority: 0, expired: false, topic: "t",
  });
  s.stream.stop();
  old.stream.stop();
});

test("a message whose records were all expired still reports (it used credits) and moves the position", async () => {
  const s = setup(0);
  s.stream.start();
  await tick();
  const data = encodeBatch([record(0, 5), record(1, 5)], BROKER_MS);
  s.streams[0]!.emit("data", batchMessage([{ baseOffset: 0, data }], { chargedRecords: 2, nextOffset: 2, brokerTimeMs: BROKER_MS + 5 }));
  assert.deepEqual(s.delivered, [[]]);
  assert.equal(s.stream.position, 2);
  assert.equal(s.stream.inflightRecords, 98);
  s.stream.stop();
});

test("a batch that does not decode drops the stream, which resubscribes from after the last record delivered", async () => {
  const s = setup(0);
  s.stream.start();
  await tick();
  s.streams[0]!.emit("data", batchMessage([{ baseOffset: 0, data: encodeBatch([record(0), record(1)], BROKER_MS) }], { chargedRecords: 2, nextOffset: 2, brokerTimeMs: BROKER_MS }));
  const damaged = Buffer.from(encodeBatch([record(2), record(3)], BROKER_MS));
  damaged[damaged.length - 1]! ^= 0xff;
  s.streams[0]!.emit("data", batchMessage([{ baseOffset: 2, data: damaged }], { chargedRecords: 2, nextOffset: 4, brokerTimeMs: BROKER_MS }));
  assert.deepEqual(s.delivered.map((m) => m.map((r) => r.offset)), [[0, 1]], "nothing of the damaged message is delivered");
  assert.equal(s.streams[0]!.cancelled, true);
  assert.equal(s.stream.position, 2);
  s.clock.advance(1_000);
  await tick();
  assert.equal(s.streams.length, 2, "a new stream after the backoff");
  assert.equal(s.streams[1]!.writes[0]!.start?.offset, 2);
  s.stream.stop();
});

test("OFFSET_OUT_OF_RANGE from a leader whose end is before the position (a new leader catching up) never moves the position back", async () => {
  const { Metadata, status } = await import("@grpc/grpc-js");
  const s = setup(8);
  let asked = 0;
  const skips: [number, number][] = [];
  (s.stream as unknown as { deps: { groups: GroupClient } }).deps.groups = {
    partitionOffsetsAt: async () => {
      asked++;
      return { logStartOffset: 0, highWatermark: asked === 1 ? 5 : 8 };
    },
  } as unknown as GroupClient;
  (s.stream as unknown as { handlers: { onSkip: (from: number, to: number) => void } }).handlers.onSkip = (from, to) => void skips.push([from, to]);
  s.stream.start();
  await tick();
  const outOfRange = (): Error => {
    const metadata = new Metadata();
    metadata.set("raftmq-error-code", "OFFSET_OUT_OF_RANGE");
    return Object.assign(new Error("out of range"), { code: status.OUT_OF_RANGE, details: "offset 8 is out of range", metadata });
  };
  s.streams[0]!.emit("error", outOfRange());
  await tick();
  await tick();
  assert.equal(asked, 1, "asked the leader for its offsets");
  assert.equal(s.streams.length, 1, "no new stream while the leader is behind");
  s.clock.advance(5_000);
  for (let i = 0; i < 5; i++) await tick();
  const starts = s.streams.map((x) => x.writes[0]?.start?.offset);
  assert.ok(starts.length >= 2, `resubscribed after a backoff (${starts.length} streams)`);
  assert.ok(starts.every((o) => o === 8), `every subscription starts at 8, never before: ${starts.join(",")}`);
  assert.deepEqual(skips, [], "nothing was skipped");
  s.stream.stop();
});

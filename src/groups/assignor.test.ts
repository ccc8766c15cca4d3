/**
 * Property tests of the sticky assignor: valid (every subscribed partition to exactly one live
 * subscriber), balanced within one (equal subscriptions) or locally balanced (any subscriptions),
 * minimal movement on membership change, stable and deterministic. fast-check prints the seed of
 * a failure; replay with ASSIGNOR_TEST_SEED.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { assign, tpKey, type AssignorMember, type Assignment, type TopicPartition } from "./assignor.js";

const SEED = process.env["ASSIGNOR_TEST_SEED"] === undefined ? undefined : Number(process.env["ASSIGNOR_TEST_SEED"]);
const RUNS = 300;
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const TOPICS = ["a", "b", "c", "d"];
const topicCountsArb = fc.tuple(...TOPICS.map(() => fc.integer({ min: 0, max: 12 }))).map((ns) => new Map(TOPICS.map((t, i) => [t, ns[i]!])));
const memberIdsArb = fc.uniqueArray(fc.integer({ min: 1, max: 40 }).map((n) => `m${n}`), { minLength: 0, maxLength: 9 });
const subscriptionArb = fc.subarray(TOPICS, { minLength: 1 });

/** Junk-tolerant previous assignments: departed members, unknown topics, out-of-range and duplicate partitions. */
const previousArb = fc.array(
  fc.tuple(fc.integer({ min: 1, max: 45 }).map((n) => `m${n}`), fc.array(fc.record({ topic: fc.constantFrom(...TOPICS, "zz"), partition: fc.integer({ min: 0, max: 14 }) }), { maxLength: 10 })),
  { maxLength: 10 },
).map((entries) => new Map<string, TopicPartition[]>(entries));

function universe(members: readonly AssignorMember[], counts: ReadonlyMap<string, number>): Set<string> {
  const out = new Set<string>();
  for (const m of members) for (const t of m.topics) for (let p = 0; p < (counts.get(t) ?? 0); p++) out.add(tpKey({ topic: t, partition: p }));
  return out;
}

function assertValid(members: readonly AssignorMember[], counts: ReadonlyMap<string, number>, out: Assignment): void {
  assert.deepEqual([...out.keys()].sort(), members.map((m) => m.id).sort(), "every member has an entry, and only members");
  const seen = new Map<string, string>();
  for (const m of members) {
    for (const tp of out.get(m.id)!) {
      const key = tpKey(tp);
      assert.ok(!seen.has(key), `${key} assigned to both ${seen.get(key)} and ${m.id}`);
      seen.set(key, m.id);
      assert.ok(m.topics.includes(tp.topic), `${m.id} got ${key} without subscribing to ${tp.topic}`);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), [...universe(members, counts)].sort(), "every subscribed partition is assigned");
}

/** No partition can move from a member with c partitions to an eligible member with c - 2 or fewer. */
function assertLocallyBalanced(members: readonly AssignorMember[], out: Assignment): void {
  for (const from of members) {
    for (const to of members) {
      const nFrom = out.get(from.id)!.length;
      const nTo = out.get(to.id)!.length;
      if (nFrom < nTo + 2) continue;
      const movable = out.get(from.id)!.find((tp) => to.topics.includes(tp.topic));
      assert.equal(movable, undefined, `${from.id} has ${nFrom}, ${to.id} has ${nTo} and could take ${movable && tpKey(movable)}`);
    }
  }
}

function counts(out: Assignment): number[] {
  return [...out.values()].map((ps) => ps.length);
}

test("every subscribed partition goes to exactly one subscribing member, for any subscriptions and any previous assignment", () => {
  fc.assert(
    fc.property(memberIdsArb, fc.array(subscriptionArb, { minLength: 9, maxLength: 9 }), topicCountsArb, previousArb, (ids, subs, partitionCounts, previous) => {
      const members = ids.map((id, i) => ({ id, topics: subs[i]! }));
      const out = assign({ members, partitionCounts, previous });
      assertValid(members, partitionCounts, out);
      assertLocallyBalanced(members, out);
    }),
    params,
  );
});

test("with equal subscriptions the counts differ by at most one", () => {
  fc.assert(
    fc.property(memberIdsArb, subscriptionArb, topicCountsArb, previousArb, (ids, topics, partitionCounts, previous) => {
      const members = ids.map((id) => ({ id, topics }));
      const out = assign({ members, partitionCounts, previous });
      assertValid(members, partitionCounts, out);
      if (members.length > 0) assert.ok(Math.max(...counts(out)) - Math.min(...counts(out)) <= 1, `unbalanced: ${JSON.stringify([...out])}`);
    }),
    params,
  );
});

test("a membership change moves the fewest partitions any balanced assignment could", () => {
  fc.assert(
    fc.property(
      memberIdsArb.filter((ids) => ids.length > 0),
      fc.uniqueArray(fc.integer({ min: 50, max: 60 }).map((n) => `n${n}`), { maxLength: 4 }),
      fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
      subscriptionArb,
      topicCountsArb,
      (ids, joining, leaving, topics, partitionCounts) => {
        const before = ids.map((id) => ({ id, topics }));
        const previous = assign({ members: before, partitionCounts, previous: new Map() });
        const after = [...before.filter((_, i) => !leaving[i]), ...joining.map((id) => ({ id, topics }))];
        fc.pre(after.length > 0);
        const out = assign({ members: after, partitionCounts, previous });
        assertValid(after, partitionCounts, out);
        const kept = after.reduce((n, m) => n + out.get(m.id)!.filter((tp) => (previous.get(m.id) ?? []).some((p) => tpKey(p) === tpKey(tp))).length, 0);
        assert.equal(kept, keptMax(after.map((m) => previous.get(m.id)?.length ?? 0), universe(after, partitionCounts).size), "partitions kept by their owner");
        for (const m of after) {
          const prev = new Set((previous.get(m.id) ?? []).map(tpKey));
          const now = out.get(m.id)!.map(tpKey);
          const gained = now.some((k) => !prev.has(k));
          const lost = [...prev].some((k) => !now.includes(k));
          assert.ok(!(gained && lost), `${m.id} both gained and lost partitions`);
        }
      },
    ),
    params,
  );
});

/** The most partitions a balanced assignment of `total` over members with these previous counts can leave in place. */
function keptMax(previousCounts: readonly number[], total: number): number {
  const m = previousCounts.length;
  const base = Math.floor(total / m);
  const extra = total % m;
  return [...previousCounts].sort((a, b) => b - a).reduce((n, prev, i) => n + Math.min(prev, base + (i < extra ? 1 : 0)), 0);
}

test("an unchanged group keeps its assignment exactly, and member order does not matter", () => {
  fc.assert(
    fc.property(memberIdsArb, fc.array(subscriptionArb, { minLength: 9, maxLength: 9 }), topicCountsArb, previousArb, (ids, subs, partitionCounts, previous) => {
      const members = ids.map((id, i) => ({ id, topics: subs[i]! }));
      const first = assign({ members, partitionCounts, previous });
      assert.deepEqual(assign({ members, partitionCounts, previous: first }), first, "stable");
      assert.deepEqual(assign({ members: [...members].reverse(), partitionCounts, previous }), first, "deterministic");
    }),
    params,
  );
});

test("the worked example of the module comment", () => {
  const members = ["A", "B", "C"].map((id) => ({ id, topics: ["t"] }));
  const tps = (...ps: number[]): TopicPartition[] => ps.map((partition) => ({ topic: "t", partition }));
  const out = assign({ members, partitionCounts: new Map([["t", 7]]), previous: new Map([["A", tps(0, 1, 2, 3)], ["B", tps(4, 5, 6)]]) });
  assert.deepEqual(Object.fromEntries(out), { A: tps(0, 1), B: tps(4, 5, 6), C: tps(2, 3) });
});

test("negative control: the validity check catches a partition given to two members", () => {
  const members = [{ id: "x", topics: ["t"] }, { id: "y", topics: ["t"] }];
  const bad: Assignment = new Map([["x", [{ topic: "t", partition: 0 }]], ["y", [{ topic: "t", partition: 0 }]]]);
  assert.throws(() => assertValid(members, new Map([["t", 1]]), bad), /assigned to both/);
  const unbalanced: Assignment = new Map([["x", [{ topic: "t", partition: 0 }, { topic: "t", partition: 1 }]], ["y", []]]);
  assert.throws(() => assertLocallyBalanced(members, unbalanced), /could take/);
});

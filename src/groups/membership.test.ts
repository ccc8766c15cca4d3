/**
 * The coordinator's membership state: joins, cooperative hand-over (a partition is granted to its
 * new owner only after the old owner gave it up), session expiry, leaving, rebuilding from
 * recorded members, and a model-based run of random heartbeats, leaves and expiries checking that
 * no partition is ever owned by two members and that a quiet group converges to the assignment.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { tpKey, type TopicPartition } from "./assignor.js";
import { GroupMembership, type HeartbeatDecision } from "./membership.js";

const counts = (n: number) => (topic: string): number | undefined => (topic === "t" ? n : undefined);
const keys = (tps: readonly TopicPartition[]): string[] => tps.map(tpKey);
const tp = (partition: number): TopicPartition => ({ topic: "t", partition });

function hb(g: GroupMembership, now: number, memberId: string, owned: readonly TopicPartition[], n = 6, sessionTimeoutMs = 1000): HeartbeatDecision {
  return g.heartbeat(now, { memberId, clientId: "test", topics: ["t"], owned, sessionTimeoutMs }, counts(n));
}

test("the first member gets every partition; a second one gets its share only after the first revokes it", () => {
  const g = new GroupMembership("g", [], 0);
  const a1 = hb(g, 0, "a", []);
  assert.deepEqual(keys(a1.assigned), ["t/0", "t/1", "t/2", "t/3", "t/4", "t/5"]);
  assert.deepEqual(keys(a1.granted), keys(a1.assigned));
  const gen1 = a1.generation;

  const b1 = hb(g, 10, "b", []);
  assert.deepEqual(b1.assigned, [], "nothing is free yet");
  assert.equal(b1.pending.length, 3);
  assert.ok(b1.generation > gen1, "a new target bumps the generation");

  const a2 = hb(g, 20, "a", a1.assigned);
  assert.equal(a2.revoke.length, 3, "a learns what to give up");
  assert.deepEqual(keys(a2.revoke), keys(b1.pending));
  assert.equal(g.phase(), "rebalancing");

  const b2 = hb(g, 30, "b", []);
  assert.deepEqual(b2.assigned, [], "still owned by a until a acknowledges");

  const kept = a1.assigned.filter((x) => !keys(a2.revoke).includes(tpKey(x)));
  const a3 = hb(g, 40, "a", kept);
  assert.deepEqual(a3.revoke, []);
  const b3 = hb(g, 50, "b", []);
  assert.deepEqual(keys(b3.granted), keys(b1.pending), "granted after the acknowledgement");
  assert.equal(g.phase(), "stable");
  assert.ok(g.owns("b", b3.granted[0]!));
  assert.ok(!g.owns("a", b3.granted[0]!));
});

test("a silent member expires after its session timeout and its partitions go to the others at once", () => {
  const g = new GroupMembership("g", [], 0);
  const a = hb(g, 0, "a", []);
  const b = hb(g, 0, "b", []);
  hb(g, 1, "a", a.assigned.filter((x) => !keys(b.pending).includes(tpKey(x))));
  const b2 = hb(g, 2, "b", []);
  assert.equal(b2.assigned.length, 3);
  // a goes silent; b keeps heartbeating.
  const b3 = hb(g, 900, "b", b2.assigned);
  assert.equal(b3.assigned.length, 3, "a's session has not ended yet");
  const b4 = hb(g, 1100, "b", b3.assigned);
  assert.equal(b4.assigned.length, 6, "a expired: b takes everything without waiting for a revocation");
  assert.deepEqual([...g.members.keys()], ["b"]);
});

test("leaving frees the partitions at once", () => {
  const g = new GroupMembership("g", [], 0);
  hb(g, 0, "a", []);
  const b = hb(g, 0, "b", []);
  assert.equal(b.assigned.length, 0);
  assert.ok(g.leave("a"));
  assert.equal(hb(g, 1, "b", []).assigned.length, 6);
  assert.ok(!g.leave("a"), "unknown the second time");
});

test("a coordinator rebuilt from recorded members grants nothing they own until they give it up or expire", () => {
  const recorded = [{ id: "a", clientId: "c", topics: ["t"], sessionTimeoutMs: 1000, owned: [tp(0), tp(1), tp(2), tp(3), tp(4), tp(5)] }];
  const g = new GroupMembership("g", recorded, 5_000);
  const b = hb(g, 5_001, "b", []);
  assert.deepEqual(b.assigned, [], "a may still be consuming");
  assert.equal(b.pending.length, 3);
  // a reports what it owns after the change (it kept consuming), and learns what to revoke.
  const a = hb(g, 5_002, "a", recorded[0]!.owned);
  assert.equal(a.revoke.length, 3);
  assert.equal(a.assigned.length, 3);
  // Had a never come back, b would get everything once a's session (counted from the rebuild) ended.
  const g2 = new GroupMembership("g", recorded, 5_000);
  assert.equal(hb(g2, 5_500, "b", []).assigned.length, 0);
  assert.equal(hb(g2, 6_001, "b", []).assigned.length, 6);
});

test("a zombie that reports a partition already moved to another member is told to revoke it", () => {
  const g = new GroupMembership("g", [], 0);
  const a = hb(g, 0, "a", []);
  const b = hb(g, 2000, "b", []); // a expired by now
  assert.equal(b.assigned.length, 6);
  const zombie = hb(g, 2001, "a", a.assigned);
  assert.ok(zombie.revoke.length >= 3, "a must give up what b owns");
  for (const x of zombie.assigned) assert.ok(!g.owns("b", x), `${tpKey(x)} is not granted to a while b owns it`);
});

test("membersImage is sorted and equal for equal states", () => {
  const g = new GroupMembership("g", [], 0);
  hb(g, 0, "z", []);
  hb(g, 0, "a", []);
  assert.deepEqual(g.membersImage().map((m) => m.id), ["a", "z"]);
  const again = new GroupMembership("g", g.membersImage(), 0);
  assert.deepEqual(again.membersImage(), g.membersImage());
});

/**
 * Model-based: members follow the client protocol (consume what is assigned, give up what is
 * revoked on their next heartbeat) while the run heartbeats, leaves and advances time at random.
 * Invariant after every step: no partition is owned by two live members, and every member owns
 * only what it was assigned. At the end, a few quiet rounds reach a stable, valid assignment.
 */
test("property: random heartbeats, leaves and expiries never give a partition to two members, and quiet rounds converge", () => {
  type Step = { kind: "hb"; member: number } | { kind: "leave"; member: number } | { kind: "time"; ms: number };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("hb" as const), member: fc.integer({ min: 0, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("leave" as const), member: fc.integer({ min: 0, max: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 1500 }) }) },
  );
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 80 }), fc.integer({ min: 1, max: 9 }), (steps, n) => {
      const g = new GroupMembership("g", [], 0);
      /** What each client believes it owns (consumes). */
      const clients = new Map<string, TopicPartition[]>();
      let now = 0;
      const heartbeat = (id: string): void => {
        const d = hb(g, now, id, clients.get(id) ?? [], n);
        const revoked = new Set(keys(d.revoke));
        clients.set(id, [...d.assigned.filter((x) => !revoked.has(tpKey(x)))]);
      };
      for (const s of steps) {
        if (s.kind === "time") now += s.ms;
        else if (s.kind === "leave") {
          g.leave(`m${s.member}`);
          clients.delete(`m${s.member}`);
        } else heartbeat(`m${s.member}`);
        // Clients whose session ended stop on their own (consumer.ts does this).
        for (const id of [...clients.keys()]) if (!g.members.has(id)) clients.delete(id);
        const owners = new Map<string, string>();
        for (const [id, owned] of clients) {
          for (const x of owned) {
            assert.ok(!owners.has(tpKey(x)), `${tpKey(x)} consumed by ${owners.get(tpKey(x))} and ${id}`);
            owners.set(tpKey(x), id);
          }
        }
      }
      // Quiet rounds: every live client heartbeats a few times, no time passes.
      const live = [...clients.keys()];
      for (let round = 0; round < 4; round++) for (const id of live) heartbeat(id);
      if (live.length === 0) return;
      assert.equal(g.phase(), "stable");
      const all = live.flatMap((id) => keys(clients.get(id)!)).sort();
      assert.deepEqual(all, Array.from({ length: n }, (_, p) => `t/${p}`).sort(), "every partition consumed exactly once");
      const sizes = live.map((id) => clients.get(id)!.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced: ${sizes}`);
    }),
    { numRuns: 300 },
  );
});

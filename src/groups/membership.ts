/**
 * The live membership of one consumer group on its coordinator: who is in the group, what each
 * member owns (is consuming now), the target assignment, and the cooperative hand-over between
 * them. Soft state, kept only by the coordinator (the leader of the group's offsets partition);
 * pure: time comes in as `nowMs`.
 *
 * The protocol is one call, the heartbeat: a member sends what it owns and gets back what it may
 * consume, what it must give up, and what is still waiting for another member to give it up.
 *
 *   - Members that have not heartbeated for their session timeout are removed; what they owned
 *     becomes free.
 *   - The target assignment comes from the sticky assignor (assignor.ts), fed with the previous
 *     target, so it changes only when members, subscriptions or partition counts change. Each
 *     change bumps the generation.
 *   - revoke  = owned − target: the member must stop consuming these, commit its offsets for them,
 *     and then heartbeat without them (its acknowledgement). A member that re-joins claiming a
 *     partition another member now holds (a zombie back after its session ended) must revoke it.
 *   - granted = target partitions that no other member owns: the member may consume them now; the
 *     coordinator counts them as owned at once, so that nobody else is granted them meanwhile.
 *   - pending = target partitions still owned by another member: granted on a later heartbeat,
 *     after that member acknowledged their revocation.
 *
 * So a partition moves from A to B only after A gave it up: two live, well-behaved members never
 * consume the same partition at the same time. A member that stops heartbeating loses its
 * partitions after its session timeout; if it is in fact still running (a long pause), it may
 * overlap with the new owner until its next heartbeat tells it to revoke — the at-least-once
 * window. The client also stops consuming on its own when it has not reached the coordinator for
 * a session timeout (consumer.ts).
 *
 * What a member reports as owned is the truth about that member (it rebuilds this state after a
 * coordinator change). The coordinator records (membersImage) who owns what in the replicated
 * state before it answers with a grant, so a new coordinator starts from the recorded owners,
 * with every recorded member given a full session timeout to come back.
 */
import { assign, compareTp, parseTpKey, tpKey, type Assignment, type TopicPartition } from "./assignor.js";
import type { RecordedMember } from "./coordinator-state.js";

export interface MemberState {
  readonly id: string;
  clientId: string;
  topics: readonly string[];
  sessionTimeoutMs: number;
  /** When the member last heartbeated (the coordinator's monotonic clock). */
  lastSeenMs: number;
  /** Partitions (tpKeys) the member consumes: reported by it, plus those granted since. */
  owned: Set<string>;
}

export interface HeartbeatInput {
  readonly memberId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly owned: readonly TopicPartition[];
  readonly sessionTimeoutMs: number;
}

export interface HeartbeatDecision {
  readonly generation: number;
  /** Every partition the member may consume now (those it kept and those granted by this heartbeat). */
  readonly assigned: readonly TopicPartition[];
  /** Partitions granted by this heartbeat (a subset of `assigned`). */
  readonly granted: readonly TopicPartition[];
  /** Partitions the member must stop consuming, commit, and then stop reporting. */
  readonly revoke: readonly TopicPartition[];
  /** Partitions the member will get once their current owner gives them up. */
  readonly pending: readonly TopicPartition[];
}

export type GroupPhase = "empty" | "stable" | "rebalancing";

/** Partition count of a topic, undefined if it does not exist. */
export type PartitionCounts = (topic: string) => number | undefined;

export class GroupMembership {
  readonly members = new Map<string, MemberState>();
  /** The target assignment as last computed. */
  private target: Assignment = new Map();
  /** Members, subscriptions and partition counts the target was computed for. */
  private targetInputs = "";
  generation = 0;

  /** Starts from the recorded members (after a coordinator change), each with a full session from `nowMs`. */
  constructor(readonly name: string, recorded: readonly RecordedMember[], nowMs: number) {
    for (const r of recorded) {
      this.members.set(r.id, {
        id: r.id,
        clientId: r.clientId,
        topics: [...r.topics],
        sessionTimeoutMs: r.sessionTimeoutMs,
        lastSeenMs: nowMs,
        owned: new Set(r.owned.map(tpKey)),
      });
    }
  }

  /** Removes members silent for longer than their session timeout; returns their ids. */
  expire(nowMs: number): string[] {
    const gone: string[] = [];
    for (const m of this.members.values()) {
      if (nowMs - m.lastSeenMs > m.sessionTimeoutMs) gone.push(m.id);
    }
    for (const id of gone) this.members.delete(id);
    return gone;
  }

  /** A member joins or heartbeats (see the module comment). */
  heartbeat(nowMs: number, input: HeartbeatInput, counts: PartitionCounts): HeartbeatDecision {
    this.expire(nowMs);
    let m = this.members.get(input.memberId);
    const joining = m === undefined;
    if (m === undefined) {
      m = { id: input.memberId, clientId: input.clientId, topics: [], sessionTimeoutMs: input.sessionTimeoutMs, lastSeenMs: nowMs, owned: new Set() };
      this.members.set(m.id, m);
    }
    m.clientId = input.clientId;
    m.topics = [...new Set(input.topics)].sort();
    m.sessionTimeoutMs = input.sessionTimeoutMs;
    m.lastSeenMs = nowMs;
    m.owned = new Set(input.owned.map(tpKey));
    // A member that (re)joins claiming what another member holds is a zombie whose session
    // ended: the partition stays with the member that held on, and the zombie must give it up.
    const contested = new Set<string>();
    if (joining) {
      for (const k of m.owned) if (this.ownerOtherThan(m.id, k) !== undefined) contested.add(k);
      for (const k of contested) m.owned.delete(k);
    }
    this.recompute(counts);
    return this.decide(m, contested);
  }

  /** Removes a member that leaves on purpose (it committed and stopped first). Returns whether it was known. */
  leave(memberId: string): boolean {
    return this.members.delete(memberId);
  }

  /** Whether `memberId` is a live member that owns `tp`. */
  owns(memberId: string, tp: TopicPartition): boolean {
    return this.members.get(memberId)?.owned.has(tpKey(tp)) ?? false;
  }

  /** The target partitions of a member (empty if unknown). */
  targetOf(memberId: string): TopicPartition[] {
    return this.target.get(memberId) ?? [];
  }

  phase(): GroupPhase {
    if (this.members.size === 0) return "empty";
    for (const m of this.members.values()) {
      const target = (this.target.get(m.id) ?? []).map(tpKey);
      if (target.length !== m.owned.size || target.some((k) => !m.owned.has(k))) return "rebalancing";
    }
    return "stable";
  }

  /** The members and what they own, as recorded in the replicated state. Sorted, so equal states give equal images. */
  membersImage(): RecordedMember[] {
    return [...this.members.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => ({ id: m.id, clientId: m.clientId, topics: m.topics, sessionTimeoutMs: m.sessionTimeoutMs, owned: [...m.owned].map(parseTpKey).sort(compareTp) }));
  }

  /** Recomputes the target from the previous one, plus owners' claims on partitions no target names. */
  recompute(counts: PartitionCounts): void {
    const members = [...this.members.values()];
    const partitionCounts = new Map<string, number>();
    for (const m of members) for (const t of m.topics) partitionCounts.set(t, counts(t) ?? 0);
    // The assignor is stable on its own output: with the same inputs the target stays as it is
    // (and then covers every partition, so owners' claims change nothing).
    const inputs = JSON.stringify([members.map((m) => [m.id, m.topics]).sort(), [...partitionCounts].sort()]);
    if (inputs === this.targetInputs) return;
    this.targetInputs = inputs;
    const previous = new Map<string, TopicPartition[]>();
    const targeted = new Set<string>();
    for (const m of members) {
      const prev = this.target.get(m.id) ?? [];
      previous.set(m.id, [...prev]);
      for (const tp of prev) targeted.add(tpKey(tp));
    }
    for (const m of [...members].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      for (const key of m.owned) if (!targeted.has(key)) previous.get(m.id)!.push(parseTpKey(key));
    }
    const next = assign({ members: members.map((m) => ({ id: m.id, topics: m.topics })), partitionCounts, previous });
    if (!sameAssignment(this.target, next)) this.generation++;
    this.target = next;
  }

  /** `contested`: partitions the member claimed but another member holds (removed from its owned set). */
  private decide(m: MemberState, contested: ReadonlySet<string>): HeartbeatDecision {
    const target = this.target.get(m.id) ?? [];
    const targetKeys = new Set(target.map(tpKey));
    const revoke = [...m.owned, ...contested].filter((k) => !targetKeys.has(k) || contested.has(k)).map(parseTpKey).sort(compareTp);
    const assigned: TopicPartition[] = [];
    const granted: TopicPartition[] = [];
    const pending: TopicPartition[] = [];
    for (const tp of target) {
      const key = tpKey(tp);
      if (m.owned.has(key)) {
        assigned.push(tp);
      } else if (this.ownerOtherThan(m.id, key) === undefined) {
        m.owned.add(key);
        assigned.push(tp);
        granted.push(tp);
      } else {
        pending.push(tp);
      }
    }
    return { generation: this.generation, assigned, granted, revoke, pending };
  }

  private ownerOtherThan(memberId: string, key: string): string | undefined {
    for (const other of this.members.values()) if (other.id !== memberId && other.owned.has(key)) return other.id;
    return undefined;
  }
}

function sameAssignment(a: Assignment, b: Assignment): boolean {
  if (a.size !== b.size) return false;
  for (const [id, tps] of b) {
    const other = a.get(id);
    if (other === undefined || other.length !== tps.length) return false;
    for (let i = 0; i < tps.length; i++) if (tpKey(tps[i]!) !== tpKey(other[i]!)) return false;
  }
  return true;
}

/**
 * The group coordinator of a node: serves the consumer groups whose offsets partition this node
 * leads. A group belongs to partition fnv1a(group) mod 8 of `__consumer_offsets`; the Raft leader
 * of that partition is the group's coordinator. Elsewhere every call fails with NOT_LEADER naming
 * the leader (or, on a node without a replica, a replica that knows it), so clients follow the
 * redirect as they do for partitions.
 *
 * Per offsets partition led here the coordinator keeps a shard: the Raft term it belongs to and the
 * live membership of its groups (membership.ts). A shard starts with a ReadIndex, so it reads the
 * replicated state only once it has applied everything committed before it; it is dropped when the
 * term changes, and the next leader's shard starts from the members recorded in the replicated
 * state (coordinator-state.ts). Offset commits and member records are Raft proposals; a grant is
 * answered only once its record is committed, so a deposed leader (whose proposals cannot
 * commit) never hands out a partition.
 */
import type { Clock, TimerHandle } from "../lib/clock.js";
import { BrokerError, NotLeaderError } from "../lib/errors.js";
import type { GroupId, LogIndex, NodeId } from "../lib/ids.js";
import type { Logger } from "../lib/logger.js";
import type { Random } from "../lib/random.js";
import type { MultiRaft } from "../multiraft/multiraft.js";
import type { MetadataState, PartitionRecord, TopicRecord } from "../controller/metadata.js";
import { TOPIC_NAME_PATTERN } from "../controller/frontend.js";
import { compareTp, parseTpKey, tpKey, type TopicPartition } from "./assignor.js";
import { encodeCoordinatorCommand, type CoordinatorCommand, type GroupCoordinatorState, type OffsetTuple } from "./coordinator-state.js";
import { GroupMembership, type GroupPhase } from "./membership.js";

export const OFFSETS_TOPIC = "__consumer_offsets";
export const OFFSETS_TOPIC_PARTITIONS = 8;
export const GROUP_NAME_PATTERN = TOPIC_NAME_PATTERN;
export const MEMBER_ID_CHARS_MAX = 200;
export const CLIENT_ID_CHARS_MAX = 200;
export const SESSION_TIMEOUT_MS_MIN = 1_000;
export const SESSION_TIMEOUT_MS_MAX = 300_000;
export const MEMBERS_PER_GROUP_MAX = 1_000;
export const TOPICS_PER_MEMBER_MAX = 100;
export const OFFSETS_PER_REQUEST_MAX = 10_000;
/** Live groups (with membership state) per offsets partition on its coordinator. */
export const GROUPS_PER_SHARD_MAX = 10_000;
const HEARTBEAT_INTERVAL_MS_MIN = 100;
const HEARTBEAT_INTERVAL_MS_MAX = 3_000;
/** How often expired members are removed and offsets partitions considered for compaction. */
const MAINTENANCE_INTERVAL_MS = 1_000;
/** An offsets partition is compacted (snapshot + log truncation) after this many applied entries. */
export const COMPACT_EVERY_ENTRIES = 1_000;

export interface GroupCoordinatorDeps {
  readonly nodeId: NodeId;
  readonly multiraft: MultiRaft;
  readonly metadata: MetadataState;
  /** The coordinator state of an offsets partition's Raft group, if this node hosts a replica. */
  readonly stateOf: (group: GroupId) => GroupCoordinatorState | undefined;
  /** This node's view of a user partition's offsets, if it hosts a replica (for lag). */
  readonly partitionOffsets: (topic: string, partition: number) => { logStartOffset: number; highWatermark: number } | undefined;
  readonly clock: Clock;
  readonly random: Random;
  readonly addressOf: (id: NodeId) => string | undefined;
  readonly log: Logger;
  /** Bound on each proposal and read. */
  readonly requestTimeoutMs: number;
}

export interface HeartbeatRequest {
  readonly group: string;
  /** Empty on the first heartbeat: the coordinator picks an id. */
  readonly memberId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly owned: readonly TopicPartition[];
  readonly sessionTimeoutMs: number;
}

export interface HeartbeatResult {
  readonly memberId: string;
  readonly generation: number;
  readonly assigned: readonly TopicPartition[];
  readonly revoke: readonly TopicPartition[];
  readonly pending: readonly TopicPartition[];
  readonly heartbeatIntervalMs: number;
}

export interface OffsetToCommit extends TopicPartition {
  readonly offset: number;
}

export interface GroupOffset extends TopicPartition {
  /** -1 if the group has no committed offset for the partition. */
  readonly offset: number;
  readonly committedAtMs: number;
}

export interface DescribedOffset extends GroupOffset {
  /** -1 when this node hosts no replica of the partition. */
  readonly highWatermark: number;
  /** highWatermark − offset, or -1 when either is unknown. */
  readonly lag: number;
}

export interface DescribedMember {
  readonly memberId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly owned: readonly TopicPartition[];
  readonly target: readonly TopicPartition[];
  readonly sessionTimeoutMs: number;
  readonly sinceHeartbeatMs: number;
}

export interface GroupDescription {
  readonly group: string;
  readonly coordinator: NodeId;
  readonly phase: GroupPhase;
  readonly generation: number;
  readonly members: readonly DescribedMember[];
  readonly offsets: readonly DescribedOffset[];
}

export interface GroupListing {
  readonly group: string;
  readonly coordinator: NodeId;
  /** Members: live ones on the coordinator, recorded ones elsewhere. */
  readonly members: number;
}

interface Shard {
  readonly term: number;
  readonly ready: Promise<void>;
  readonly groups: Map<string, GroupMembership>;
  /** The member records last proposed per group (JSON), to propose only changes. */
  readonly recorded: Map<string, string>;
}

interface Routed {
  readonly shard: Shard;
  readonly state: GroupCoordinatorState;
  readonly partition: PartitionRecord;
  readonly membership: GroupMembership;
}

export class GroupCoordinator {
  private readonly shards = new Map<GroupId, Shard>();
  /** Applied index of the last compaction per offsets partition. */
  private readonly compactedAt = new Map<GroupId, LogIndex>();
  private timer: TimerHandle | undefined;
  private maintaining = false;
  private closed = false;

  constructor(private readonly deps: GroupCoordinatorDeps) {}

  /** The offsets partition number of a group: FNV-1a (32-bit) of its UTF-8 name, modulo the partition count. */
  static partitionFor(group: string, partitions: number): number {
    return fnv1a(group) % partitions;
  }

  /** Starts the periodic maintenance (expiring members, compacting offsets partitions). */
  start(): void {
    const loop = (): void => {
      if (this.closed) return;
      void this.maintain().finally(() => {
        if (!this.closed) this.timer = this.deps.clock.setTimer(MAINTENANCE_INTERVAL_MS, loop);
      });
    };
    this.timer = this.deps.clock.setTimer(MAINTENANCE_INTERVAL_MS, loop);
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  /** Joins or heartbeats (membership.ts has the protocol). */
  async heartbeat(req: HeartbeatRequest): Promise<HeartbeatResult> {
    validateHeartbeat(req);
    const routed = await this.route(req.group, true);
    const { shard, membership } = routed;
    const memberId = req.memberId === "" ? this.newMemberId(req.clientId) : req.memberId;
    if (!membership.members.has(memberId) && membership.members.size >= MEMBERS_PER_GROUP_MAX) {
      throw new BrokerError("OVERLOADED", `group "${req.group}" already has ${MEMBERS_PER_GROUP_MAX} members`);
    }
    const decision = membership.heartbeat(this.deps.clock.monotonicMs(), { ...req, memberId }, (t) => this.partitionCount(t));
    // A grant is answered only once recorded: a later coordinator must know who may be consuming.
    await this.record(routed, req.group, decision.granted.length > 0);
    return {
      memberId,
      generation: decision.generation,
      assigned: decision.assigned,
      revoke: decision.revoke,
      pending: decision.pending,
      heartbeatIntervalMs: heartbeatIntervalMs(req.sessionTimeoutMs),
    };
  }

  /** A member leaves on purpose (after committing): its partitions are free at once. */
  async leave(group: string, memberId: string): Promise<void> {
    validateGroup(group);
    const routed = await this.route(group, false);
    if (routed.membership.leave(memberId)) await this.record(routed, group, true);
  }

  /**
   * Commits offsets (each the offset of the next record to consume). With a member id the member
   * must own every partition; without one the group must have no live members (a simple consumer
   * that manages its own partitions). An offset lower than the committed one is ignored (offsets
   * never go backwards). Answers with the committed offsets after the commit.
   */
  async commit(group: string, memberId: string, offsets: readonly OffsetToCommit[]): Promise<GroupOffset[]> {
    validateGroup(group);
    const tuples = this.offsetTuples(offsets);
    const routed = await this.route(group, false);
    const { membership } = routed;
    membership.expire(this.deps.clock.monotonicMs());
    if (memberId === "" && membership.members.size > 0) {
      throw new BrokerError("UNKNOWN_MEMBER", `group "${group}" has ${membership.members.size} live member(s); offsets are committed by the member that owns each partition`);
    }
    if (memberId !== "") {
      for (const tp of offsets) {
        if (!membership.owns(memberId, tp)) {
          const why = membership.members.has(memberId) ? `does not own ${tpKey(tp)}` : "is not a member (its session expired or the coordinator changed)";
          throw new BrokerError("UNKNOWN_MEMBER", `member ${memberId} of group "${group}" ${why}; heartbeat to learn the current assignment`);
        }
      }
    }
    await this.propose(routed.partition, { op: "commit", group, atMs: this.deps.clock.wallMs(), offsets: tuples });
    return offsets.map((tp) => this.committedOffset(routed.state, group, tp));
  }

  /** The group's committed offsets for the partitions of `topics` (all committed ones if empty). */
  async fetchOffsets(group: string, topics: readonly string[]): Promise<GroupOffset[]> {
    validateGroup(group);
    const routed = await this.route(group, false);
    return this.offsetsFor(routed.state, group, topics);
  }

  /**
   * Sets offsets on purpose, backwards too (an operator's reset). The group must have no live
   * members: a running consumer would commit over the reset. Answers with the offsets set.
   */
  async reset(group: string, offsets: readonly OffsetToCommit[]): Promise<GroupOffset[]> {
    validateGroup(group);
    const tuples = this.offsetTuples(offsets);
    const routed = await this.route(group, false);
    routed.membership.expire(this.deps.clock.monotonicMs());
    const live = routed.membership.members.size;
    if (live > 0) {
      throw new BrokerError("GROUP_NOT_EMPTY", `group "${group}" has ${live} live member(s); stop its consumers (or wait for their sessions to expire) before resetting offsets`);
    }
    await this.propose(routed.partition, { op: "reset", group, atMs: this.deps.clock.wallMs(), offsets: tuples });
    return offsets.map((tp) => this.committedOffset(routed.state, group, tp));
  }

  /** Members, assignment, committed offsets and lag of a group. */
  async describe(group: string): Promise<GroupDescription> {
    validateGroup(group);
    const routed = await this.route(group, false);
    const { membership, state } = routed;
    const now = this.deps.clock.monotonicMs();
    membership.expire(now);
    membership.recompute((t) => this.partitionCount(t));
    const members = [...membership.members.values()].map((m) => ({
      memberId: m.id,
      clientId: m.clientId,
      topics: m.topics,
      owned: [...m.owned].map(parseTpKey).sort(compareTp),
      target: membership.targetOf(m.id),
      sessionTimeoutMs: m.sessionTimeoutMs,
      sinceHeartbeatMs: Math.round(now - m.lastSeenMs),
    }));
    const topics = new Set<string>();
    for (const m of membership.members.values()) for (const t of m.topics) topics.add(t);
    const offsets = this.offsetsFor(state, group, [...topics], true).map((o) => {
      const view = this.deps.partitionOffsets(o.topic, o.partition);
      const highWatermark = view?.highWatermark ?? -1;
      return { ...o, highWatermark, lag: highWatermark >= 0 && o.offset >= 0 ? Math.max(0, highWatermark - o.offset) : -1 };
    });
    return { group, coordinator: this.deps.nodeId, phase: membership.phase(), generation: membership.generation, members, offsets };
  }

  /**
   * The groups this node knows of: those with committed offsets or recorded members in the offsets
   * partitions it hosts, and those with live members where it coordinates. Also returns which
   * offsets partitions it hosts, so a caller can tell whether the list is complete.
   */
  listGroups(): { groups: GroupListing[]; partitions: number[] } {
    const topic = this.deps.metadata.internalTopics.get(OFFSETS_TOPIC);
    const groups = new Map<string, GroupListing>();
    const partitions: number[] = [];
    for (const p of topic?.partitions ?? []) {
      const state = this.deps.stateOf(p.group);
      if (state === undefined) continue;
      partitions.push(p.partition);
      const coordinator = this.deps.multiraft.leader(p.group);
      for (const name of state.groupNames()) groups.set(name, { group: name, coordinator, members: state.membersOf(name).length });
      const shard = this.shards.get(p.group);
      if (shard === undefined || !this.leads(p.group, shard.term)) continue;
      for (const [name, m] of shard.groups) groups.set(name, { group: name, coordinator, members: m.members.size });
    }
    return { groups: [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1)), partitions };
  }

  // ------------------------------------------------------------------ routing and shards

  /** The shard, state and membership of `group` on this node, which must coordinate it. */
  private async route(group: string, creating: boolean): Promise<Routed> {
    const partition = this.offsetsPartition(group);
    for (let attempt = 1; ; attempt++) {
      const shard = this.currentShard(group, partition);
      await shard.ready.catch((e: unknown) => {
        if (this.shards.get(partition.group) === shard) this.shards.delete(partition.group);
        throw this.withLeaderAddress(e, partition);
      });
      // Leadership may have moved while waiting: use the shard only if it is still current.
      if (this.shards.get(partition.group) === shard && this.leads(partition.group, shard.term)) return this.routed(group, shard, partition, creating);
      if (attempt >= 3) throw this.notCoordinator(group, partition);
    }
  }

  /** The group's membership in `shard`, loaded from the recorded members the first time. */
  private routed(group: string, shard: Shard, partition: PartitionRecord, creating: boolean): Routed {
    const state = this.deps.stateOf(partition.group)!;
    let membership = shard.groups.get(group);
    if (membership === undefined) {
      if (creating && shard.groups.size >= GROUPS_PER_SHARD_MAX) throw new BrokerError("OVERLOADED", `this coordinator already serves ${GROUPS_PER_SHARD_MAX} live groups in one partition`);
      const recorded = state.membersOf(group);
      membership = new GroupMembership(group, recorded, this.deps.clock.monotonicMs());
      membership.recompute((t) => this.partitionCount(t));
      // Reads of unknown groups leave nothing behind; maintenance drops groups that empty.
      if (creating || membership.members.size > 0) {
        shard.groups.set(group, membership);
        shard.recorded.set(group, JSON.stringify(recorded));
      }
    }
    return { shard, state, partition, membership };
  }

  private offsetsPartition(group: string): PartitionRecord {
    const topic = this.deps.metadata.internalTopics.get(OFFSETS_TOPIC);
    if (topic === undefined) throw new BrokerError("UNAVAILABLE", "the consumer group coordinator topic is being created; retry shortly");
    return topic.partitions[GroupCoordinator.partitionFor(group, topic.partitions.length)]!;
  }

  /** The shard of the current term, started (with a ReadIndex) if new; NOT_LEADER if not the leader. */
  private currentShard(group: string, partition: PartitionRecord): Shard {
    const status = this.deps.multiraft.status(partition.group);
    const state = this.deps.stateOf(partition.group);
    if (status?.role !== "leader" || state === undefined) throw this.notCoordinator(group, partition);
    let shard = this.shards.get(partition.group);
    if (shard === undefined || shard.term !== status.term) {
      const ready = this.deps.multiraft.readIndex(partition.group, this.deps.requestTimeoutMs).then(() => undefined);
      ready.catch(() => {}); // observed by route(); this only keeps an unobserved rejection quiet
      shard = { term: status.term, ready, groups: new Map(), recorded: new Map() };
      this.shards.set(partition.group, shard);
      this.deps.log.info({ group: partition.group, term: status.term }, "coordinating consumer groups of offsets partition");
    }
    return shard;
  }

  private leads(group: GroupId, term: number): boolean {
    const status = this.deps.multiraft.status(group);
    return status?.role === "leader" && status.term === term;
  }

  /** NOT_LEADER naming the coordinator, or on a node without a replica, a replica that knows it. */
  private notCoordinator(group: string | undefined, partition: PartitionRecord): NotLeaderError {
    const status = this.deps.multiraft.status(partition.group);
    const what = group === undefined ? `offsets partition ${partition.partition}` : `consumer group "${group}" (offsets partition ${partition.partition})`;
    if (status === undefined) {
      const replica = partition.replicas.find((id) => id !== this.deps.nodeId) ?? 0;
      return new NotLeaderError(partition.group, replica, `${what} is coordinated by its leader; this node hosts no replica, ask a replica`, this.deps.addressOf(replica));
    }
    return new NotLeaderError(partition.group, status.lead, `${what} is coordinated by the leader of that partition`, this.deps.addressOf(status.lead));
  }

  private withLeaderAddress(e: unknown, partition: PartitionRecord): unknown {
    if (e instanceof NotLeaderError && e.leaderAddress === undefined) return this.notCoordinator(undefined, partition);
    return e;
  }

  // ------------------------------------------------------------------ proposals and reads

  private async propose(partition: PartitionRecord, cmd: CoordinatorCommand): Promise<void> {
    try {
      await this.deps.multiraft.propose(partition.group, encodeCoordinatorCommand(cmd), this.deps.requestTimeoutMs);
    } catch (e) {
      throw this.withLeaderAddress(e, partition);
    }
  }

  /** Proposes the group's member records if they changed; waits for the commit when `wait`. */
  private async record(routed: Routed, group: string, wait: boolean): Promise<void> {
    const { shard, membership, partition } = routed;
    const members = membership.membersImage();
    const image = JSON.stringify(members);
    if (shard.recorded.get(group) === image) return;
    shard.recorded.set(group, image);
    const done = this.propose(partition, { op: "members", group, members });
    if (!wait) {
      done.catch((e: unknown) => {
        // The next change re-proposes the whole image.
        if (shard.recorded.get(group) === image) shard.recorded.delete(group);
        this.deps.log.debug({ group, err: String(e) }, "recording group members failed");
      });
      return;
    }
    try {
      await done;
    } catch (e) {
      if (shard.recorded.get(group) === image) shard.recorded.delete(group);
      throw e;
    }
  }

  private offsetsFor(state: GroupCoordinatorState, group: string, topics: readonly string[], withSubscribed = false): GroupOffset[] {
    const out = new Map<string, GroupOffset>();
    const wanted = new Set(topics);
    for (const [key, c] of state.offsetsOf(group)) {
      const tp = parseTpKey(key);
      if (!withSubscribed && wanted.size > 0 && !wanted.has(tp.topic)) continue;
      if (this.deps.metadata.topics.get(tp.topic)?.id !== c.topicId) continue; // a deleted (or re-created) topic's offsets
      out.set(key, { ...tp, offset: c.offset, committedAtMs: c.atMs });
    }
    for (const topic of topics) {
      const n = this.partitionCount(topic) ?? 0;
      for (let partition = 0; partition < n; partition++) {
        const key = tpKey({ topic, partition });
        if (!out.has(key)) out.set(key, { topic, partition, offset: -1, committedAtMs: 0 });
      }
    }
    return [...out.values()].sort(compareTp);
  }

  private committedOffset(state: GroupCoordinatorState, group: string, tp: TopicPartition): GroupOffset {
    const c = state.committed(group, tp);
    return { topic: tp.topic, partition: tp.partition, offset: c?.offset ?? -1, committedAtMs: c?.atMs ?? 0 };
  }

  /** Validated offset tuples (existing topic and partition, offset ≥ 0, no partition twice). */
  private offsetTuples(offsets: readonly OffsetToCommit[]): OffsetTuple[] {
    if (!Array.isArray(offsets) || offsets.length === 0) throw invalid("at least one offset is required");
    if (offsets.length > OFFSETS_PER_REQUEST_MAX) throw invalid(`at most ${OFFSETS_PER_REQUEST_MAX} offsets per request, got ${offsets.length}`);
    const seen = new Set<string>();
    return offsets.map((o) => {
      const topic = this.userTopic(o.topic);
      if (!Number.isInteger(o.partition) || o.partition < 0 || o.partition >= topic.partitions.length) {
        throw new BrokerError("UNKNOWN_PARTITION", `topic "${o.topic}" has partitions 0 to ${topic.partitions.length - 1}; there is no partition ${o.partition}`);
      }
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw invalid(`offset of ${o.topic}/${o.partition} must be a non-negative integer, got ${o.offset}`);
      const key = tpKey(o);
      if (seen.has(key)) throw invalid(`${key} appears twice`);
      seen.add(key);
      return [o.topic, o.partition, o.offset, topic.id] as const;
    });
  }

  private userTopic(name: string): TopicRecord {
    const topic = typeof name === "string" ? this.deps.metadata.topics.get(name) : undefined;
    if (topic === undefined) throw new BrokerError("UNKNOWN_TOPIC", `topic "${name}" does not exist`);
    return topic;
  }

  private partitionCount(topic: string): number | undefined {
    return this.deps.metadata.topics.get(topic)?.partitions.length;
  }

  private newMemberId(clientId: string): string {
    const hex = Array.from({ length: 4 }, () => this.deps.random.nextUint32().toString(16).padStart(8, "0")).join("");
    const prefix = clientId.replace(/[^a-zA-Z0-9._-]/g, "").slice(0, 40) || "member";
    return `${prefix}-${hex}`;
  }

  // ------------------------------------------------------------------ maintenance

  /** Expires silent members (recording the change) and compacts offsets partitions that grew. */
  private async maintain(): Promise<void> {
    if (this.maintaining) return;
    this.maintaining = true;
    try {
      const now = this.deps.clock.monotonicMs();
      for (const [group, shard] of this.shards) {
        if (!this.leads(group, shard.term)) {
          this.shards.delete(group);
          continue;
        }
        const state = this.deps.stateOf(group);
        const partition = this.deps.metadata.internalTopics.get(OFFSETS_TOPIC)?.partitions.find((p) => p.group === group);
        if (state === undefined || partition === undefined) continue;
        for (const [name, membership] of shard.groups) {
          if (membership.expire(now).length > 0) {
            membership.recompute((t) => this.partitionCount(t));
            await this.record({ shard, state, partition, membership }, name, false);
          }
          if (membership.members.size === 0 && shard.recorded.get(name) === "[]") {
            shard.groups.delete(name);
            shard.recorded.delete(name);
          }
        }
      }
      await this.compactAll();
    } catch (e) {
      this.deps.log.warn({ err: String(e) }, "group coordinator maintenance failed");
    } finally {
      this.maintaining = false;
    }
  }

  private async compactAll(): Promise<void> {
    for (const p of this.deps.metadata.internalTopics.get(OFFSETS_TOPIC)?.partitions ?? []) {
      const state = this.deps.stateOf(p.group);
      if (state === undefined) continue;
      const since = state.appliedIndex - (this.compactedAt.get(p.group) ?? state.appliedIndex - state.appliedSinceRestore);
      if (since < COMPACT_EVERY_ENTRIES) continue;
      // Snapshot data and index are taken together, with no await in between.
      const index = state.appliedIndex;
      const compacted = this.deps.multiraft.compactTo(p.group, index, state.confState, state.snapshotData());
      this.compactedAt.set(p.group, index);
      if (await compacted) this.deps.log.info({ group: p.group, index }, "compacted offsets partition");
    }
  }
}

function validateGroup(group: string): void {
  if (typeof group !== "string" || !GROUP_NAME_PATTERN.test(group)) {
    throw invalid(`group name ${JSON.stringify(group)} is not valid: use 1-249 characters of letters, digits, '.', '_' and '-'`);
  }
}

function validateHeartbeat(req: HeartbeatRequest): void {
  validateGroup(req.group);
  if (typeof req.memberId !== "string" || req.memberId.length > MEMBER_ID_CHARS_MAX || /[\u0000-\u001f]/.test(req.memberId)) {
    throw invalid(`member id must be at most ${MEMBER_ID_CHARS_MAX} printable characters`);
  }
  if (typeof req.clientId !== "string" || req.clientId.length > CLIENT_ID_CHARS_MAX) throw invalid(`client id must be at most ${CLIENT_ID_CHARS_MAX} characters`);
  if (!Array.isArray(req.topics) || req.topics.length === 0 || req.topics.length > TOPICS_PER_MEMBER_MAX) {
    throw invalid(`a member subscribes to 1 to ${TOPICS_PER_MEMBER_MAX} topics, got ${Array.isArray(req.topics) ? req.topics.length : "none"}`);
  }
  for (const t of req.topics) if (typeof t !== "string" || !TOPIC_NAME_PATTERN.test(t)) throw invalid(`topic name ${JSON.stringify(t)} is not valid`);
  const s = req.sessionTimeoutMs;
  if (!Number.isInteger(s) || s < SESSION_TIMEOUT_MS_MIN || s > SESSION_TIMEOUT_MS_MAX) {
    throw invalid(`session timeout must be from ${SESSION_TIMEOUT_MS_MIN} to ${SESSION_TIMEOUT_MS_MAX} ms, got ${s}`);
  }
  if (!Array.isArray(req.owned) || req.owned.length > OFFSETS_PER_REQUEST_MAX) throw invalid(`a member reports at most ${OFFSETS_PER_REQUEST_MAX} owned partitions`);
  for (const tp of req.owned) {
    if (typeof tp.topic !== "string" || !Number.isInteger(tp.partition) || tp.partition < 0) throw invalid(`owned partition ${JSON.stringify(tp)} is not valid`);
  }
}

/** A third of the session, within [100 ms, 3 s]: two heartbeats may be lost before the session ends. */
export function heartbeatIntervalMs(sessionTimeoutMs: number): number {
  return Math.max(HEARTBEAT_INTERVAL_MS_MIN, Math.min(HEARTBEAT_INTERVAL_MS_MAX, Math.floor(sessionTimeoutMs / 3)));
}

/** FNV-1a, 32-bit, over the UTF-8 bytes of `s`. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function invalid(message: string): BrokerError {
  return new BrokerError("INVALID_ARGUMENT", message);
}

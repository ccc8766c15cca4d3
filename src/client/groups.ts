/**
 * Consumer group calls of the client: routing to the group's coordinator (any broker redirects
 * with NOT_LEADER and the coordinator's address; the client remembers it per group), partition
 * offset lookups on partition leaders, and the administrative operations behind
 * `client.listGroups()`, `describeGroup()` and `resetOffsets()`.
 *
 * Every group call is idempotent (a heartbeat reports state, a commit of the same offset again is
 * a no-op, offsets never go backwards), so all of them are retried after timeouts and lost
 * connections as well as redirects, within the client's retry policy.
 */
import { BrokerError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { InvalidArgumentError, UnavailableError } from "./errors.js";
import type { GroupChannels, GroupDescription, GroupMethod, GroupMethods, WirePartitionOffset } from "./group-channels.js";
import { withRetries, type RetryDecision, type RetryDeps, type RetryPolicy } from "./retry.js";

export interface GroupClientDeps {
  readonly channels: GroupChannels;
  readonly logger: Logger;
  readonly policy: RetryPolicy;
  readonly retryDeps: RetryDeps;
  readonly requestTimeoutMs: number;
  /** Brokers to ask when no coordinator is known: the bootstrap list and every known node. */
  readonly addresses: () => string[];
  /** The partition's leader from the metadata cache (retryable error when unknown). */
  readonly leaderOf: (topic: string, partition: number) => Promise<{ id: number; address: string }>;
  /** Records a leader learned from a redirect. */
  readonly noteLeader: (topic: string, partition: number, id: number, address: string | undefined) => void;
  readonly invalidateMetadata: () => void;
  /** The number of partitions of a topic (UnknownTopicError if it does not exist). */
  readonly partitionCount: (topic: string) => Promise<number>;
  readonly assertOpen: () => void;
}

/** Where a reset moves a group's offsets. */
export type ResetTarget = "earliest" | "latest" | { readonly offset: number } | { readonly timestampMs: number };

export interface GroupSummary {
  readonly group: string;
  /** The coordinator's node id as the answering broker knows it (0 if unknown). */
  readonly coordinator: number;
  readonly members: number;
}

export interface PartitionOffsetsAt {
  readonly logStartOffset: number;
  readonly highWatermark: number;
  /** The first offset accepted at or after the asked timestamp (the high watermark if none). */
  readonly offsetForTimestamp: number;
}

/** Remembered coordinators, at most. */
const COORDINATORS_MAX = 1_000;

export class GroupClient {
  private readonly coordinators = new Map<string, string>();

  constructor(private readonly deps: GroupClientDeps) {}

  /** One Groups call to the coordinator of `group`, following redirects, with bounded retries. */
  coordinatorCall<M extends GroupMethod>(group: string, method: M, request: GroupMethods[M]["request"], policy: RetryPolicy = this.deps.policy): Promise<GroupMethods[M]["response"]> {
    this.deps.assertOpen();
    let redirect: string | undefined;
    return withRetries(policy, this.deps.retryDeps, async (n) => {
      const address = redirect ?? this.coordinators.get(group) ?? this.candidate(n);
      redirect = undefined;
      const response = await this.deps.channels.group(address, method, request, this.deps.requestTimeoutMs);
      this.remember(group, address);
      return response;
    }, (error) => {
      const decision = this.classify(error, false);
      if (decision === "retry-now" && error instanceof BrokerError) redirect = error.leaderAddress;
      if (decision !== "fail") this.coordinators.delete(group);
      this.deps.logger.debug({ group, method, decision, err: String(error) }, "group call failed");
      return decision;
    });
  }

  /** A partition's log start, high watermark and offset for a timestamp (0: none), from its leader. */
  partitionOffsetsAt(topic: string, partition: number, timestampMs = 0): Promise<PartitionOffsetsAt> {
    this.deps.assertOpen();
    let redirect: string | undefined;
    return withRetries(this.deps.policy, this.deps.retryDeps, async () => {
      const address = redirect ?? (await this.deps.leaderOf(topic, partition)).address;
      redirect = undefined;
      return this.deps.channels.listOffsets(address, { topic, partition, timestampMs }, this.deps.requestTimeoutMs);
    }, (error) => {
      const decision = this.classify(error, true);
      if (decision === "retry-now" && error instanceof BrokerError) {
        redirect = error.leaderAddress;
        if (error.leaderId !== undefined) this.deps.noteLeader(topic, partition, error.leaderId, error.leaderAddress);
      }
      if (decision === "retry-after-backoff") this.deps.invalidateMetadata();
      return decision;
    });
  }

  /** The groups of the cluster: asks brokers in turn until the answers cover every offsets partition. */
  async listGroups(): Promise<GroupSummary[]> {
    this.deps.assertOpen();
    const groups = new Map<string, GroupSummary>();
    const covered = new Set<number>();
    const failures: string[] = [];
    for (const address of this.deps.addresses()) {
      try {
        const r = await this.deps.channels.group(address, "ListGroups", {}, this.deps.requestTimeoutMs);
        for (const g of r.groups) if (!groups.has(g.group) || g.coordinator > 0) groups.set(g.group, { group: g.group, coordinator: g.coordinator, members: g.members });
        for (const p of r.offsetsPartitions) covered.add(p);
        if (covered.size >= r.offsetsPartitionCount) return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1));
      } catch (e) {
        failures.push(`${address}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (covered.size === 0) throw new UnavailableError(`no broker listed the consumer groups (${failures.join("; ")})`);
    throw new UnavailableError(`only ${covered.size} offsets partitions could be listed; some brokers did not answer (${failures.join("; ")})`);
  }

  /** A group's members, assignment, offsets and lag (lag completed from partition leaders where the coordinator hosts no replica). */
  async describeGroup(group: string): Promise<GroupDescription> {
    const d = await this.coordinatorCall(group, "DescribeGroup", { group });
    for (const o of d.offsets) {
      if (o.highWatermark >= 0) continue;
      const offsets = await this.partitionOffsetsAt(o.topic, o.partition).catch(() => undefined);
      if (offsets === undefined) continue;
      o.highWatermark = offsets.highWatermark;
      o.lag = o.offset >= 0 ? Math.max(0, offsets.highWatermark - o.offset) : -1;
    }
    return d;
  }

  /**
   * Moves the group's committed offsets for `topic` (all partitions, or `partitions`) to the
   * earliest or latest offset, a given offset (clamped into the retained range), or the first
   * record at or after a timestamp. The group must have no live members (GroupNotEmptyError).
   */
  async resetOffsets(group: string, topic: string, target: ResetTarget, partitions?: readonly number[]): Promise<WirePartitionOffset[]> {
    const count = await this.deps.partitionCount(topic);
    const list = partitions ?? Array.from({ length: count }, (_, p) => p);
    const offsets: WirePartitionOffset[] = [];
    for (const partition of list) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
        throw new InvalidArgumentError(`topic "${topic}" has partitions 0 to ${count - 1}; there is no partition ${partition}`);
      }
      offsets.push({ topic, partition, offset: await this.resolve(topic, partition, target) });
    }
    return (await this.coordinatorCall(group, "ResetOffsets", { group, offsets })).offsets;
  }

  private async resolve(topic: string, partition: number, target: ResetTarget): Promise<number> {
    const timestampMs = typeof target === "object" && "timestampMs" in target ? target.timestampMs : 0;
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new InvalidArgumentError(`the timestamp must be a Unix time in ms, got ${timestampMs}`);
    const at = await this.partitionOffsetsAt(topic, partition, timestampMs);
    if (target === "earliest") return at.logStartOffset;
    if (target === "latest") return at.highWatermark;
    if ("timestampMs" in target) return at.offsetForTimestamp;
    if (!Number.isSafeInteger(target.offset) || target.offset < 0) throw new InvalidArgumentError(`the offset must be a non-negative integer, got ${target.offset}`);
    return Math.min(Math.max(target.offset, at.logStartOffset), at.highWatermark);
  }

  private candidate(attempt: number): string {
    const all = this.deps.addresses();
    if (all.length === 0) throw new UnavailableError("no broker address is known");
    return all[(attempt - 1) % all.length]!;
  }

  private remember(group: string, address: string): void {
    this.coordinators.delete(group);
    this.coordinators.set(group, address);
    if (this.coordinators.size > COORDINATORS_MAX) this.coordinators.delete(this.coordinators.keys().next().value!);
  }

  /** Group calls are idempotent: retry redirects at once, and transient failures (timeouts too) after a backoff. */
  private classify(error: unknown, partitionCall: boolean): RetryDecision {
    if (!(error instanceof BrokerError) || this.deps.retryDeps.signal?.aborted) return "fail";
    switch (error.code) {
      case "NOT_LEADER":
        return error.leaderAddress !== undefined ? "retry-now" : "retry-after-backoff";
      case "UNAVAILABLE":
      case "SHUTTING_DOWN":
      case "OVERLOADED":
      case "PROPOSAL_DROPPED":
      case "TIMEOUT":
        return "retry-after-backoff";
      case "UNKNOWN_TOPIC":
      case "UNKNOWN_PARTITION":
        // A broker may lag the controller; a partition call retries on fresh metadata.
        return partitionCall ? "retry-after-backoff" : "fail";
      default:
        return "fail";
    }
  }
}

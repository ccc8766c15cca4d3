/**
 * Schedules: what fast-check generates and shrinks. A schedule is an initial cluster size, a seed
 * for the simulated world's randomness (latencies, election timeouts, which in-flight messages a
 * strike hits) and a list of steps.
 *
 * Steps name nodes by `pick` numbers that are resolved against the cluster as it is when the step
 * runs (`pick mod candidates`), never by id, so every schedule stays executable however fast-check
 * shrinks it: a step whose target does not exist (no leader, nothing crashed) does nothing.
 * Fractions and rates are integer percents so that they shrink towards small numbers. A strike on
 * in-flight messages carries its own `salt` (the seed of its choices), so that removing a step
 * while shrinking does not shift the randomness of every later step.
 */
import fc from "fast-check";
import type { PartitionShape } from "./partition.js";

/** One step of a schedule (see the README's table). */
export type Step =
  | { readonly kind: "advance"; readonly ms: number }
  | { readonly kind: "propose"; readonly to: "leader" | "other"; readonly pick: number; readonly count: number }
  | { readonly kind: "drop"; readonly percent: number; readonly salt: number }
  | { readonly kind: "duplicate"; readonly percent: number; readonly salt: number }
  | { readonly kind: "delay"; readonly percent: number; readonly maxMs: number; readonly salt: number }
  | { readonly kind: "reorder"; readonly salt: number }
  | { readonly kind: "weather"; readonly drop: number; readonly duplicate: number; readonly delay: number; readonly delayMaxMs: number }
  | { readonly kind: "partition"; readonly shape: PartitionShape; readonly mask: number; readonly focusLeader: boolean }
  | { readonly kind: "heal" }
  | { readonly kind: "crash"; readonly pick: number; readonly leader: boolean }
  | { readonly kind: "restart"; readonly pick: number }
  | { readonly kind: "snapshot"; readonly pick: number; readonly lag: number }
  | { readonly kind: "addLearner" }
  | { readonly kind: "promote"; readonly pick: number }
  | { readonly kind: "remove"; readonly pick: number; readonly leader: boolean }
  | { readonly kind: "transfer"; readonly pick: number }
  | { readonly kind: "read"; readonly pick: number }
  | { readonly kind: "campaign"; readonly pick: number; readonly count: number }
  | { readonly kind: "voteCrash"; readonly restartMs: number }
  | { readonly kind: "churn"; readonly count: number; readonly afterMs: number; readonly how: "crash" | "isolate" };

/** The kinds of steps. */
export type StepKind = Step["kind"];

/**
 * The core's tuning knobs a schedule may set (anything absent keeps the core's default). Small
 * limits push the core through its flow-control, batching and overload paths.
 */
export interface RaftKnobs {
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly maxMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  readonly maxCommittedBytesPerReady?: number;
  readonly maxUncommittedBytes?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Idle groups quiesce (production's setting); the hosts then model node liveness (node.ts). */
  readonly quiesce?: boolean;
  /** Followers learn commits from the next append or heartbeat (production's setting). */
  readonly lazyCommit?: boolean;
}

/** Upper bounds of network and disk latency, when a schedule changes them from the defaults. */
export interface WorldKnobs {
  readonly maxLatencyMs?: number;
  readonly maxDiskMs?: number;
}

/**
 * When the simulated host sends a Ready's messages (node.ts): "multiraft" sends the leader-only
 * ones (app, heartbeat, snap, timeoutNow) before the write, as src/multiraft does; "simple" sends
 * everything after it.
 */
export type HostModel = "multiraft" | "simple";

/** A whole run: initial size, core knobs, world timing, host model, world seed, steps. */
export interface Schedule {
  /** Initial number of voters, 3..7. */
  readonly nodes: number;
  readonly raft: RaftKnobs;
  readonly world?: WorldKnobs;
  /** Absent means "multiraft" (production's host). */
  readonly host?: HostModel;
  /** Seed of the simulated world's randomness. */
  readonly seed: number;
  readonly steps: readonly Step[];
}

/** The shape of generated schedules. */
export interface ScheduleOptions {
  /** Fix the initial size (and disable membership changes, so that it stays fixed). */
  readonly nodes?: number | undefined;
  /** Maximum number of steps; lengths are spread over [1, maxSteps] (no larger minimum, so shrinking can remove any step). */
  readonly maxSteps: number;
}

const pick = fc.nat({ max: 1000 });
const percent = fc.integer({ min: 1, max: 100 });
const salt = fc.nat();
/** Proposals per propose step: mostly one, sometimes a burst. */
const burst = fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, { arbitrary: fc.integer({ min: 2, max: 12 }), weight: 1 });

function stepArbitraries(membership: boolean): { arbitrary: fc.Arbitrary<Step>; weight: number }[] {
  const w = (weight: number, arbitrary: fc.Arbitrary<Step>): { arbitrary: fc.Arbitrary<Step>; weight: number } => ({ arbitrary, weight });
  const steps = [
    w(30, fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 250 }) })),
    w(14, fc.record({ kind: fc.constant("propose" as const), to: fc.constant("leader" as const), pick, count: burst })),
    w(3, fc.record({ kind: fc.constant("propose" as const), to: fc.constant("other" as const), pick, count: fc.constant(1) })),
    w(3, fc.record({ kind: fc.constant("drop" as const), percent, salt })),
    w(3, fc.record({ kind: fc.constant("duplicate" as const), percent, salt })),
    w(3, fc.record({ kind: fc.constant("delay" as const), percent, maxMs: fc.integer({ min: 1, max: 300 }), salt })),
    w(2, fc.record({ kind: fc.constant("reorder" as const), salt })),
    w(3, fc.record({
      kind: fc.constant("weather" as const),
      drop: fc.integer({ min: 0, max: 30 }),
      duplicate: fc.integer({ min: 0, max: 30 }),
      delay: fc.integer({ min: 0, max: 50 }),
      delayMaxMs: fc.integer({ min: 1, max: 200 }),
    })),
    w(5, fc.record({ kind: fc.constant("partition" as const), shape: fc.constantFrom<PartitionShape>("symmetric", "oneWay", "bridge"), mask: fc.nat({ max: 0xffff }), focusLeader: fc.boolean() })),
    w(3, fc.record({ kind: fc.constant("heal" as const) })),
    w(4, fc.record({ kind: fc.constant("crash" as const), pick, leader: fc.boolean() })),
    w(4, fc.record({ kind: fc.constant("restart" as const), pick })),
    w(4, fc.record({ kind: fc.constant("snapshot" as const), pick, lag: fc.integer({ min: 0, max: 5 }) })),
    w(2, fc.record({ kind: fc.constant("transfer" as const), pick })),
    w(4, fc.record({ kind: fc.constant("read" as const), pick })),
    w(3, fc.record({ kind: fc.constant("campaign" as const), pick, count: fc.integer({ min: 1, max: 2 }) })),
    w(2, fc.record({ kind: fc.constant("voteCrash" as const), restartMs: fc.integer({ min: 1, max: 60 }) })),
    w(3, fc.record({ kind: fc.constant("churn" as const), count: fc.integer({ min: 1, max: 6 }), afterMs: fc.integer({ min: 0, max: 8 }), how: fc.constantFrom("crash" as const, "isolate" as const) })),
  ];
  if (membership) {
    steps.push(
      w(2, fc.record({ kind: fc.constant("addLearner" as const) })),
      w(4, fc.record({ kind: fc.constant("promote" as const), pick })),
      w(2, fc.record({ kind: fc.constant("remove" as const), pick, leader: fc.boolean() })),
    );
  }
  return steps;
}

/** Initial sizes: mostly 3 and 5, sometimes 4, 6, 7. */
const sizeArbitrary = fc.oneof(
  { arbitrary: fc.constant(3), weight: 9 },
  { arbitrary: fc.constant(5), weight: 7 },
  { arbitrary: fc.constant(4), weight: 2 },
  { arbitrary: fc.constant(6), weight: 1 },
  { arbitrary: fc.constant(7), weight: 1 },
);

/** Half the schedules keep the core's defaults; the others get small limits and random toggles. */
const baseKnobsArbitrary: fc.Arbitrary<RaftKnobs> = fc.oneof(
  fc.constant({}),
  fc.record(
    {
      electionTicks: fc.integer({ min: 4, max: 20 }),
      heartbeatTicks: fc.integer({ min: 1, max: 3 }),
      maxMsgBytes: fc.constantFrom(1, 40, 100, 1024),
      maxInflightMsgs: fc.integer({ min: 1, max: 8 }),
      maxCommittedBytesPerReady: fc.constantFrom(1, 30, 100),
      maxUncommittedBytes: fc.constantFrom(4, 16, 64),
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
    },
    { requiredKeys: [] },
  ).map((k) => (k.heartbeatTicks !== undefined && k.heartbeatTicks >= (k.electionTicks ?? 10) ? { ...k, heartbeatTicks: 1 } : k)),
);

/**
 * Besides, half the schedules quiesce idle groups (as production does), half propagate commits
 * lazily (as production does), and 40% of the schedules
 * send one entry per append (maxMsgBytes 1). Then a new leader brings a lagging follower up to
 * date entry by entry, and gets acknowledgements at indexes of older terms above its commit
 * index: the setting of the thesis's Figure 8 (§3.6.2), where only the rule "commit by counting
 * only entries of the current term" keeps a leader from committing an entry that a later leader
 * may overwrite. With larger appends the new leader's no-op rides along and every
 * acknowledgement lands in its own term.
 */
const knobsArbitrary: fc.Arbitrary<RaftKnobs> = fc
  .tuple(baseKnobsArbitrary, fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: fc.constant(1), weight: 2 }), fc.boolean(), fc.boolean())
  .map(([k, maxMsgBytes, quiesce, lazyCommit]) => {
    const withQuiesce = { ...k, ...(quiesce ? { quiesce } : {}), ...(lazyCommit ? { lazyCommit } : {}) };
    return maxMsgBytes === undefined ? withQuiesce : { ...withQuiesce, maxMsgBytes };
  });

/** Mostly production's host model (see {@link HostModel}). */
const hostArbitrary: fc.Arbitrary<HostModel> = fc.oneof({ arbitrary: fc.constant("multiraft" as const), weight: 3 }, { arbitrary: fc.constant("simple" as const), weight: 1 });

/** Mostly the default timing; sometimes a slow network or a slow disk (fsync). */
const worldArbitrary: fc.Arbitrary<WorldKnobs> = fc.oneof(
  { arbitrary: fc.constant({}), weight: 3 },
  { arbitrary: fc.record({ maxLatencyMs: fc.integer({ min: 2, max: 40 }), maxDiskMs: fc.integer({ min: 1, max: 40 }) }, { requiredKeys: [] }), weight: 1 },
);

/** Tick length of the simulated world (cluster.ts DEFAULT_WORLD). */
const TICK_MS = 10;
/** The core's default electionTicks. */
const CORE_ELECTION_TICKS = 10;

/**
 * Keeps Raft's timing requirement (thesis §3.6: broadcast time << election timeout): one election
 * round trip (persist the vote, send, persist, answer) must fit well inside the shortest election
 * timeout, or elections may churn for as long as the liveness budget. So the slowest network
 * latency plus the slowest fsync stay within a quarter of it.
 */
export function fitTiming(world: WorldKnobs, raft: RaftKnobs): WorldKnobs {
  if (world.maxLatencyMs === undefined && world.maxDiskMs === undefined) return world;
  const budget = Math.floor(((raft.electionTicks ?? CORE_ELECTION_TICKS) * TICK_MS) / 4);
  const latency = Math.min(world.maxLatencyMs ?? 6, budget - 1);
  const disk = Math.max(1, Math.min(world.maxDiskMs ?? 4, budget - latency));
  return { maxLatencyMs: Math.max(2, latency), maxDiskMs: disk };
}

/** The arbitrary of whole schedules. */
export function scheduleArbitrary(opts: ScheduleOptions): fc.Arbitrary<Schedule> {
  const membership = opts.nodes === undefined;
  return fc.record({
    nodes: opts.nodes === undefined ? sizeArbitrary : fc.constant(opts.nodes),
    raft: knobsArbitrary,
    world: worldArbitrary,
    host: hostArbitrary,
    seed: fc.nat(),
    steps: fc.array(fc.oneof(...stepArbitraries(membership)), { minLength: 1, maxLength: opts.maxSteps, size: "max" }),
  }).map((s) => ({ ...s, world: fitTiming(s.world, s.raft) }));
}

/** One line per step, for failure reports. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case "advance":
      return `advance ${s.ms}ms`;
    case "propose":
      return `propose ${s.count === 1 ? "" : `${s.count}× `}to ${s.to} (pick ${s.pick})`;
    case "drop":
    case "duplicate":
      return `${s.kind} ${s.percent}% of in-flight messages`;
    case "delay":
      return `delay ${s.percent}% of in-flight messages by up to ${s.maxMs}ms`;
    case "reorder":
      return "reorder in-flight messages";
    case "weather":
      return `weather drop ${s.drop}% dup ${s.duplicate}% delay ${s.delay}% up to ${s.delayMaxMs}ms`;
    case "partition":
      return `partition ${s.shape} mask ${s.mask}${s.focusLeader ? " around the leader" : ""}`;
    case "heal":
      return "heal";
    case "crash":
      return s.leader ? "crash the leader" : `crash (pick ${s.pick})`;
    case "restart":
      return `restart (pick ${s.pick})`;
    case "snapshot":
      return `snapshot + compact, lag ${s.lag} (pick ${s.pick})`;
    case "addLearner":
      return "add a new node as learner";
    case "promote":
      return `promote a learner (pick ${s.pick})`;
    case "remove":
      return s.leader ? "remove the leader" : `remove a member (pick ${s.pick})`;
    case "transfer":
      return `transfer leadership (pick ${s.pick})`;
    case "read":
      return `readIndex (pick ${s.pick})`;
    case "campaign":
      return s.count === 1 ? `campaign now (pick ${s.pick})` : `${s.count} nodes campaign at once (pick ${s.pick})`;
    case "voteCrash":
      return `the next node to grant a vote crashes right after, restarts ${s.restartMs}ms later`;
    case "churn":
      return `propose ${s.count}× to the leader, ${s.afterMs}ms later ${s.how === "crash" ? "crash" : "isolate"} it`;
  }
}

/** A schedule as a numbered listing. */
export function describeSchedule(s: Schedule): string {
  const lines = [`nodes=${s.nodes} worldSeed=${s.seed} raft=${JSON.stringify(s.raft)} world=${JSON.stringify(s.world ?? {})} host=${s.host ?? "multiraft"} steps=${s.steps.length}`];
  s.steps.forEach((step, i) => lines.push(`  ${String(i).padStart(3)}: ${describeStep(step)}`));
  return lines.join("\n");
}

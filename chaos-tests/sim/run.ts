/**
 * One simulated run: build the cluster a schedule describes, let it elect a leader, execute the
 * steps with the checks after each, then check liveness. Everything is derived from the schedule
 * (its world seed included), so the same schedule always gives the same trace and trace hash.
 */
import { StepExecutor } from "./actions.js";
import { Cluster, DEFAULT_WORLD, type ClusterOptions } from "./cluster.js";
import type { Coverage } from "./coverage.js";
import { checkLiveness } from "./liveness.js";
import { describeStep, type Schedule } from "./schedule.js";

/** The core's default election timeout in ticks (config.ts). */
const CORE_ELECTION_TICKS = 10;

/** How to run a schedule (beyond what the schedule itself says). */
export interface RunOptions {
  /** Keep the readable trace lines (slower). */
  readonly record?: boolean;
  /** Overrides of the default timing (see cluster.ts). */
  readonly timing?: Partial<typeof DEFAULT_WORLD>;
  /** The liveness budget in election timeouts (of electionTicks ticks). Default 30. */
  readonly livenessElectionTimeouts?: number;
  /** Virtual time before the first step, to let a first leader emerge. Default 300 ms. */
  readonly warmUpMs?: number;
  /**
   * Check the host contract directly (durability before acknowledgement, commit durability, the
   * leader commit rule; checker.ts). Default true; false measures what the end-to-end invariants
   * alone find.
   */
  readonly contractChecks?: boolean;
}

/** What a successful run produced. */
export interface RunResult {
  readonly hash: string;
  readonly steps: number;
  readonly virtualMs: number;
  readonly events: number;
  readonly messages: number;
  readonly coverage: Coverage;
  readonly lines: readonly string[] | undefined;
}

/** A run that failed: the error (usually an InvariantViolation) plus where and the trace so far. */
export class SimulationFailure extends Error {
  override readonly name = "SimulationFailure";
  constructor(
    readonly error: unknown,
    /** The step being executed (0-based), "warm-up" before the first, or "liveness" after the last. */
    readonly at: number | "warm-up" | "liveness",
    readonly virtualMs: number,
    readonly hash: string,
    readonly lines: readonly string[] | undefined,
  ) {
    super(`${at === "liveness" ? "during the liveness check" : at === "warm-up" ? "during warm-up" : `at step ${at}`}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Runs `schedule`; throws {@link SimulationFailure} on any violation or core exception. */
export function runSchedule(schedule: Schedule, opts: RunOptions = {}): RunResult {
  const timing = { ...DEFAULT_WORLD, ...opts.timing };
  const raft = { ...timing.raft, ...schedule.raft };
  const clusterOpts: ClusterOptions = {
    ...timing,
    ...schedule.world,
    raft,
    host: schedule.host ?? timing.host,
    contractChecks: opts.contractChecks ?? timing.contractChecks,
    size: schedule.nodes,
    seed: schedule.seed,
    record: opts.record ?? false,
  };
  const c = new Cluster(clusterOpts);
  const exec = new StepExecutor(c);
  let at: number | "warm-up" | "liveness" = "warm-up";
  try {
    c.runFor(opts.warmUpMs ?? 300);
    c.checkStep();
    for (const [i, step] of schedule.steps.entries()) {
      at = i;
      exec.execute(step, i, () => describeStep(step));
      c.checkStep();
    }
    at = "liveness";
    c.disarmVoteCrash();
    checkLiveness(c, exec, (opts.livenessElectionTimeouts ?? 30) * (raft.electionTicks ?? CORE_ELECTION_TICKS) * timing.tickMs);
  } catch (e) {
    throw new SimulationFailure(e, at, c.queue.now, c.trace.hash(), c.trace.lines);
  }
  return {
    hash: c.trace.hash(),
    steps: schedule.steps.length,
    virtualMs: c.queue.now,
    events: c.trace.events,
    messages: c.network.sent,
    coverage: c.coverage,
    lines: c.trace.lines,
  };
}

/**
 * Bounded retries: every operation gets at most `attemptsMax` attempts and gives up once the
 * next backoff would end past `deadlineMs` from the first attempt. Backoff doubles from
 * `backoffInitialMs` up to `backoffMaxMs`, with "equal jitter" (half fixed, half random) so that
 * many clients do not retry in lockstep. A redirect to a known leader is retried at once (still
 * counted as an attempt). Time comes from the injected Clock, so tests drive it by hand.
 */
import type { Clock } from "../lib/clock.js";
import type { Random } from "../lib/random.js";

export interface RetryPolicy {
  /** Attempts per operation, the first included. */
  readonly attemptsMax: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** No attempt starts later than this after the first one. */
  readonly deadlineMs: number;
}

export const RETRY_POLICY_DEFAULT: RetryPolicy = {
  attemptsMax: 10,
  backoffInitialMs: 50,
  backoffMaxMs: 1_000,
  deadlineMs: 30_000,
};

/** What to do after a failed attempt. */
export type RetryDecision = "fail" | "retry-now" | "retry-after-backoff";

export interface RetryDeps {
  readonly clock: Clock;
  readonly random: Random;
  /** Aborting rejects a pending backoff with the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * Runs `attempt(n)` (n from 1) until it succeeds, `decide` says "fail", or the policy's bounds are
 * reached; then rethrows the last error, its message suffixed with the attempt count and time.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  deps: RetryDeps,
  attempt: (n: number) => Promise<T>,
  decide: (error: unknown) => RetryDecision,
): Promise<T> {
  const startMs = deps.clock.monotonicMs();
  let backoffs = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const decision = decide(error);
      if (decision === "fail" || deps.signal?.aborted) throw error;
      const delayMs = decision === "retry-now" ? 0 : backoffMs(policy, backoffs++, deps.random);
      const elapsedMs = deps.clock.monotonicMs() - startMs;
      if (n >= policy.attemptsMax || elapsedMs + delayMs > policy.deadlineMs) throw gaveUp(error, n, elapsedMs);
      if (delayMs > 0) await sleep(deps.clock, delayMs, deps.signal);
    }
  }
}

/** The delay before retry number `k` (from 0): exponential, capped, half of it jittered. */
export function backoffMs(policy: RetryPolicy, k: number, random: Random): number {
  const capped = Math.min(policy.backoffMaxMs, policy.backoffInitialMs * 2 ** Math.min(k, 30));
  return Math.round(capped / 2 + random.float() * (capped / 2));
}

/** Resolves after `ms` on `clock`; rejects with the signal's reason when aborted first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(signal!.reason);
    };
    const timer = clock.setTimer(ms, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function gaveUp(error: unknown, attempts: number, elapsedMs: number): unknown {
  if (error instanceof Error) {
    error.message += ` (gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${Math.round(elapsedMs)} ms)`;
  }
  return error;
}

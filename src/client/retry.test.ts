import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../lib/clock.js";
import { SeededRandom } from "../lib/random.js";
import { backoffMs, sleep, withRetries, type RetryPolicy } from "./retry.js";

const policy: RetryPolicy = { attemptsMax: 5, backoffInitialMs: 100, backoffMaxMs: 400, deadlineMs: 10_000 };

test("backoff doubles up to its cap, with half of it jittered", () => {
  const random = new SeededRandom(1);
  for (let k = 0; k < 10; k++) {
    const cap = Math.min(400, 100 * 2 ** k);
    const d = backoffMs(policy, k, random);
    assert.ok(d >= cap / 2 && d <= cap, `retry ${k}: ${d} not in [${cap / 2}, ${cap}]`);
  }
});

/** Advances the manual clock in steps until `promise` settles (bounded). */
async function drive<T>(clock: ManualClock, promise: Promise<T>, stepMs = 10, stepsMax = 10_000): Promise<T> {
  let settled = false;
  const observed = promise.finally(() => (settled = true));
  observed.catch(() => undefined); // the caller asserts on `observed`; meanwhile it is not unhandled
  for (let i = 0; i < stepsMax && !settled; i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(stepMs);
  }
  return observed;
}

test("attempts are bounded in count, and the last error says so", async () => {
  const clock = new ManualClock();
  let attempts = 0;
  const run = withRetries(policy, { clock, random: new SeededRandom(2) }, async () => {
    attempts++;
    throw new Error("still down");
  }, () => "retry-after-backoff");
  await assert.rejects(drive(clock, run), /still down \(gave up after 5 attempts in \d+ ms\)/);
  assert.equal(attempts, 5);
});

test("attempts are bounded in time: no attempt starts past the deadline", async () => {
  const clock = new ManualClock();
  const starts: number[] = [];
  const run = withRetries({ ...policy, attemptsMax: 1000, deadlineMs: 1_000 }, { clock, random: new SeededRandom(3) }, async () => {
    starts.push(clock.monotonicMs());
    throw new Error("down");
  }, () => "retry-after-backoff");
  await assert.rejects(drive(clock, run), /gave up/);
  assert.ok(starts.length >= 3 && starts.length < 20, `${starts.length} attempts`);
  assert.ok(starts.at(-1)! <= 1_000, `an attempt started at ${starts.at(-1)} ms`);
});

test("retry-now does not wait, fail stops at once, success returns", async () => {
  const clock = new ManualClock();
  let n = 0;
  const value = await withRetries(policy, { clock, random: new SeededRandom(4) }, async () => {
    if (++n < 3) throw new Error("redirect");
    return "ok";
  }, () => "retry-now");
  assert.equal(value, "ok");
  assert.equal(clock.monotonicMs(), 0, "redirects never sleep");
  let m = 0;
  await assert.rejects(withRetries(policy, { clock, random: new SeededRandom(4) }, async () => {
    m++;
    throw new Error("bad request");
  }, () => "fail"), /^Error: bad request$/);
  assert.equal(m, 1);
});

test("an abort rejects a pending backoff at once", async () => {
  const clock = new ManualClock();
  const controller = new AbortController();
  const pending = sleep(clock, 60_000, controller.signal);
  controller.abort(new Error("closed"));
  await assert.rejects(pending, /closed/);
});

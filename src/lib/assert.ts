/**
 * Invariant checks that stay on in production. A failed assertion is a programmer error: the
 * process must stop rather than serve wrong data (a supervisor restarts it from durable state).
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/** Throws {@link AssertionError} when `condition` is false. The message is built lazily. */
export function assert(condition: unknown, message?: string | (() => string)): asserts condition {
  if (!condition) {
    const text = typeof message === "function" ? message() : message;
    throw new AssertionError(text ?? "assertion failed");
  }
}

/** Marks a branch the type checker proves unreachable; fails loudly if it is reached anyway. */
export function unreachable(value: never, what = "value"): never {
  throw new AssertionError(`unreachable: unexpected ${what} ${JSON.stringify(value)}`);
}

/**
 * Failpoints: named hooks in production code for fault testing (after etcd's gofail). Each hook
 * does nothing unless the node was started with the failpoint enabled; the chaos tests enable them
 * with an environment variable that only the composition root (server/node.ts) reads, holding a
 * spec such as `raft-store/before-write=crash:40`. They are never a user option.
 *
 * Two kinds:
 *
 *  - a **crash** point is passed on a code path with `hit(name)`. Its action `crash:N` (`crash` is
 *    `crash:1`) calls the injected crash callback at the Nth hit, exactly once; the node's callback
 *    kills the process at once, like `kill -9`, so the disk holds what it held at that instant.
 *  - a **switch** (`on`) changes a behaviour for the whole life of the node (`enabled(name)`),
 *    planting a known bug that the chaos checker must catch (its negative controls).
 *
 * Spec syntax: comma-separated `name=action`, e.g. `broker/dedup-off=on,raft-store/after-write=crash:3`.
 * Unknown names, an action of the wrong kind, a malformed action and a name given twice are errors.
 *
 * The objects are injected (store options, broker and partition construction), never global; the
 * inert {@link NO_FAILPOINTS} is every default, and code on hot paths reads a switch once, when it
 * is built.
 */

/** Every failpoint, with its kind and a one-line description (the single list of known names). */
export const FAILPOINTS = {
  "raft-store/before-write": {
    kind: "crash",
    description: "crash just before a write round's batch goes to RocksDB (the leader's appends are already sent): after append, before fsync",
  },
  "raft-store/after-write": {
    kind: "crash",
    description: "crash right after a write round's batch is fsynced, before any reply or acknowledgement goes out",
  },
  "raft-store/snapshot-write": {
    kind: "crash",
    description: "crash after the batch that stores a snapshot (compaction, or a snapshot installed over stored entries), before the replaced entries are cleared",
  },
  "storage/lose-unsynced": {
    kind: "switch",
    description: "fsync disabled, with power loss: writes are acknowledged unwritten and reach RocksDB (unsynced) about once a second, so a crash loses up to the last second",
  },
  "storage/power-loss": {
    kind: "switch",
    description: "power-loss emulation on a correct disk: unsynced writes wait in memory until the next synced write, so a crash loses exactly the writes that were never fsynced",
  },
  "broker/ack-before-quorum": {
    kind: "switch",
    description: "the leader answers a produce once the batch is proposed, with a tentative offset, without waiting for the quorum commit",
  },
  "broker/dedup-off": {
    kind: "switch",
    description: "idempotent producers are not deduplicated: every batch is appended as new (no duplicate answer, no sequence or epoch checks); enable on every node",
  },
} as const satisfies Record<string, { readonly kind: "crash" | "switch"; readonly description: string }>;

export type FailpointName = keyof typeof FAILPOINTS;
/** Failpoints passed on a code path with `hit()`. */
export type CrashFailpoint = { [K in FailpointName]: (typeof FAILPOINTS)[K]["kind"] extends "crash" ? K : never }[FailpointName];
/** Failpoints read with `enabled()`. */
export type SwitchFailpoint = { [K in FailpointName]: (typeof FAILPOINTS)[K]["kind"] extends "switch" ? K : never }[FailpointName];

/** What the node does when a crash failpoint fires: in production, kill the process at once. */
export type CrashCallback = (name: CrashFailpoint) => void;

/** One enabled failpoint. */
export type FailpointAction = { readonly name: SwitchFailpoint; readonly action: "on" } | { readonly name: CrashFailpoint; readonly action: "crash"; readonly atHit: number };

/** The failpoints of one node. */
export interface Failpoints {
  /** Whether switch `name` is on. Constant for the object's life: callers may read it once. */
  enabled(name: SwitchFailpoint): boolean;
  /** Counts one pass through crash point `name`; at the configured Nth pass, calls the crash callback (once). */
  hit(name: CrashFailpoint): void;
  /** The enabled failpoints, in spec order (for the start-up warning). */
  readonly active: readonly FailpointAction[];
}

/** The inert default: every switch off, every hit a no-op. */
export const NO_FAILPOINTS: Failpoints = Object.freeze({
  enabled: () => false,
  hit: () => {},
  active: Object.freeze([]) as readonly FailpointAction[],
});

/** The error a crash failpoint throws when no crash callback was injected (tests). */
export class FailpointCrash extends Error {
  override readonly name = "FailpointCrash";
  constructor(readonly failpoint: CrashFailpoint) {
    super(`failpoint ${failpoint}: crashing`);
  }
}

const throwCrash: CrashCallback = (name) => {
  throw new FailpointCrash(name);
};

/**
 * Parses a failpoint spec (see the module comment); an empty spec enables nothing. `crash` is
 * what a crash point does when it fires; by default it throws {@link FailpointCrash}. Throws an
 * Error naming the bad entry and listing the known failpoints.
 */
export function parseFailpoints(spec: string, crash: CrashCallback = throwCrash): Failpoints {
  const actions: FailpointAction[] = [];
  for (const raw of spec.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const action = parseEntry(entry);
    if (actions.some((a) => a.name === action.name)) throw specError(entry, `failpoint ${action.name} is given twice`);
    actions.push(action);
  }
  return actions.length === 0 ? NO_FAILPOINTS : new ConfiguredFailpoints(actions, crash);
}

function parseEntry(entry: string): FailpointAction {
  const eq = entry.indexOf("=");
  if (eq < 0) throw specError(entry, "expected name=action");
  const name = entry.slice(0, eq).trim();
  const action = entry.slice(eq + 1).trim();
  if (!isFailpointName(name)) throw specError(entry, `unknown failpoint "${name}"`);
  const point = FAILPOINTS[name];
  if (point.kind === "switch") {
    if (action !== "on") throw specError(entry, `${name} is a switch: its action is "on", got "${action}"`);
    return { name: name as SwitchFailpoint, action: "on" };
  }
  const m = /^crash(?::(\d+))?$/.exec(action);
  const atHit = m === null ? NaN : m[1] === undefined ? 1 : Number(m[1]);
  if (!Number.isSafeInteger(atHit) || atHit < 1) {
    throw specError(entry, `${name} is a crash point: its action is "crash" or "crash:N" with N >= 1 (crash at the Nth hit), got "${action}"`);
  }
  return { name: name as CrashFailpoint, action: "crash", atHit };
}

function isFailpointName(name: string): name is FailpointName {
  return Object.hasOwn(FAILPOINTS, name);
}

/** The known failpoints, one per line: `name (kind): description`. */
export function describeFailpoints(): string {
  return Object.entries(FAILPOINTS)
    .map(([name, p]) => `  ${name} (${p.kind === "crash" ? "crash, crash:N" : "on"}): ${p.description}`)
    .join("\n");
}

function specError(entry: string, problem: string): Error {
  return new Error(`bad failpoint spec entry "${entry}": ${problem}. Known failpoints:\n${describeFailpoints()}`);
}

class ConfiguredFailpoints implements Failpoints {
  private readonly switches = new Set<SwitchFailpoint>();
  /** Per crash point: the hit that crashes, and the hits so far. */
  private readonly crashes = new Map<CrashFailpoint, { readonly atHit: number; hits: number }>();

  constructor(readonly active: readonly FailpointAction[], private readonly crash: CrashCallback) {
    for (const a of active) {
      if (a.action === "on") this.switches.add(a.name);
      else this.crashes.set(a.name, { atHit: a.atHit, hits: 0 });
    }
  }

  enabled(name: SwitchFailpoint): boolean {
    return this.switches.has(name);
  }

  hit(name: CrashFailpoint): void {
    const c = this.crashes.get(name);
    if (c === undefined) return;
    c.hits++;
    if (c.hits === c.atHit) this.crash(name);
  }
}

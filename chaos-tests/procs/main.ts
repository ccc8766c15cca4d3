/**
 * The real-process chaos command line:
 *
 *   npm run chaos -- --runs N --duration S [--seed X] [--rate R] [--nodes K] [--partitions P]
 *                    [--kinds kill,pause,...] [--power-loss alternate|always|never] [--control NAME] [--expect-violations]
 *                    [--dir DIR] [--keep]
 *
 * Each run starts its own 3-node cluster (free loopback ports, data under --dir), runs a fault
 * schedule drawn from its seed (seed X + run index) for S seconds under R records/s, heals,
 * drains and checks the history. With power-loss emulation (every other run by default) the nodes
 * keep unsynced writes in memory until the next fsync, so that every kill -9 is also a power loss.
 * Prints one line per run and the totals, and exits 1 on any
 * violation (with --expect-violations: on any run WITHOUT one, for negative controls), printing
 * the seed and command that replay a failed run. A failed run's data, logs and history are kept.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatCheckResult } from "./checker.js";
import { FAULT_KINDS, generateSchedule, type FaultKind } from "./faults.js";
import { CONTROLS, runChaos, SetupError, type Control, type RunReport } from "./run.js";

/** Faults that reveal each planted bug (a control draws only from these). */
const CONTROL_KINDS: Readonly<Record<Control, readonly FaultKind[]>> = {
  // Power cuts of every node, each after a quiet time (CONTROL_GAP_MS) in which records are acknowledged.
  "lose-unsynced": ["kill-all"],
  "ack-before-quorum": ["kill", "pause", "partition"],
  "dedup-off": ["transfer", "kill"],
};

const SETTLE_MS = 5_000;
/** Quiet time after each fault of a negative control: the cluster recovers and acknowledges records before the next fault. */
const CONTROL_GAP_MS = { min: 4_000, max: 8_000 };

function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name} must be an integer from ${min} to ${max}, got ${value}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string" },
      duration: { type: "string" },
      seed: { type: "string" },
      rate: { type: "string" },
      nodes: { type: "string" },
      partitions: { type: "string" },
      kinds: { type: "string" },
      control: { type: "string" },
      "power-loss": { type: "string" },
      "expect-violations": { type: "boolean", default: false },
      dir: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run chaos -- --runs N --duration SECONDS [--seed X] [--rate RECORDS_PER_S] [--nodes K] [--partitions P]\n" +
      `       [--kinds ${FAULT_KINDS.join(",")}] [--power-loss alternate|always|never] [--control ${Object.keys(CONTROLS).join("|")}] [--expect-violations] [--dir DIR] [--keep]`);
    return 0;
  }
  const seed = intOption("seed", values.seed, Date.now() % 2 ** 31, 0, 2 ** 31 - 1);
  console.log(`seed: ${seed}`);
  const runs = intOption("runs", values.runs, 1, 1, 100_000);
  const durationMs = intOption("duration", values.duration, 60, 5, 86_400) * 1000;
  const rate = intOption("rate", values.rate, 1_000, 1, 1_000_000);
  const nodes = intOption("nodes", values.nodes, 3, 3, 7);
  const partitions = intOption("partitions", values.partitions, 6, 1, 1_000);
  const control = values.control as Control | undefined;
  if (control !== undefined && !(control in CONTROLS)) throw new RangeError(`--control must be one of ${Object.keys(CONTROLS).join(", ")}, got ${control}`);
  const kinds = parseKinds(values.kinds) ?? (control !== undefined ? CONTROL_KINDS[control] : FAULT_KINDS);
  const expectViolations = values["expect-violations"];
  const powerLossMode = values["power-loss"] ?? "alternate";
  if (!["alternate", "always", "never"].includes(powerLossMode)) throw new RangeError(`--power-loss must be alternate, always or never, got ${powerLossMode}`);
  const root = resolve(values.dir ?? mkdtempSync(join(tmpdir(), "raftmq-chaos-")));
  console.log(`runs: ${runs} × ${durationMs / 1000} s at ${rate} records/s, ${nodes} nodes, ${partitions} partitions; faults: ${kinds.join(",")}` +
    `; power-loss emulation ${powerLossMode}${control !== undefined ? `; NEGATIVE CONTROL ${control}` : ""}; data under ${root}`);

  const reports: RunReport[] = [];
  const unexpected: number[] = [];
  const errored: number[] = [];
  for (let i = 0; i < runs; i++) {
    const runSeed = (seed + i) % 2 ** 31;
    const gaps = control === undefined ? {} : { gapMsMin: CONTROL_GAP_MS.min, gapMsMax: CONTROL_GAP_MS.max };
    const schedule = generateSchedule({ seed: runSeed, budgetMs: durationMs - SETTLE_MS, kinds, ...gaps });
    const dir = join(root, `run-${runSeed}`);
    const powerLoss = powerLossMode === "always" || (powerLossMode === "alternate" && runSeed % 2 === 0);
    const replay = `npm run chaos -- --runs 1 --duration ${durationMs / 1000} --seed ${runSeed}${replayFlags(values, control)}`;
    const t0 = Date.now();
    let report: RunReport;
    try {
      report = await runChaos({ seed: runSeed, schedule, durationMs, dir, nodes, partitions, rate, control, powerLoss, log: (l) => console.log(`  [${runSeed} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${l}`) });
    } catch (e) {
      if (e instanceof SetupError) {
        // Not a verdict on raftmq either way (a control that cannot start has caught nothing).
        console.log(`run ${i + 1}/${runs} seed ${runSeed}: SETUP FAILED ${(e as Error).stack ?? String(e)}`);
        console.log(`  data kept in ${dir}`);
        return 2;
      }
      // The cluster did not recover: a failed run, kept for diagnosis.
      errored.push(runSeed);
      console.log(`run ${i + 1}/${runs} seed ${runSeed}: ERROR (a failed run) ${(e as Error).stack ?? String(e)}`);
      console.log(`  data kept in ${dir}; replay: ${replay}`);
      if (!expectViolations) unexpected.push(runSeed);
      continue;
    }
    reports.push(report);
    const c = report.check;
    console.log(`run ${i + 1}/${runs} seed ${runSeed}${powerLoss ? " (power-loss emulation)" : ""}: ${report.valid ? "ok" : "VIOLATIONS"} in ${(report.wallMs / 1000).toFixed(0)} s; ` +
      `faults ${schedule.length} (${Object.entries(report.faults).map(([k, v]) => `${k} ${v}`).join(", ")}); ` +
      `acknowledged ${c.acknowledged}, lost ${c.lost}, duplicated ${c.duplicated}, reordered ${c.reordered}, unseen ${c.unseen}, ` +
      `max unavailability ${(c.maxUnavailabilityMs / 1000).toFixed(1)} s; failpoints fired ${report.failpointsFired}/${report.failpointsArmed}; corruption undetected ${report.corruptionUndetected}; ` +
      `unexpected node exits ${report.unexpectedExits.length}`);
    if (!report.valid) console.log(indent(formatCheckResult(c)));
    for (const e of report.unexpectedExits) console.log(`    ${e}`);
    if (report.valid === expectViolations) {
      unexpected.push(runSeed);
      console.log(`  data kept in ${dir}; replay: ${replay}`);
    } else if (!values.keep) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  printTotals(reports, errored);
  if (unexpected.length > 0) {
    console.log(expectViolations
      ? `FAILED: ${unexpected.length} of ${runs} runs found no violation although a fault was planted (seeds ${unexpected.join(", ")})`
      : `FAILED: ${unexpected.length} of ${runs} runs failed (seeds ${unexpected.join(", ")})`);
    return 1;
  }
  console.log(expectViolations ? "every run failed (violations or no recovery), as the planted fault requires" : `no violation in ${runs} runs`);
  return 0;
}

function printTotals(reports: readonly RunReport[], errored: readonly number[]): void {
  const sum = (f: (r: RunReport) => number): number => reports.reduce((a, r) => a + f(r), 0);
  const faults = new Map<string, number>();
  for (const r of reports) for (const [k, v] of Object.entries(r.faults)) faults.set(k, (faults.get(k) ?? 0) + v);
  console.log(`total: ${reports.length + errored.length} schedules (${errored.length} did not recover), ${sum((r) => Object.values(r.faults).reduce((a, v) => a + v, 0))} faults ` +
    `(${[...faults].map(([k, v]) => `${k} ${v}`).join(", ")}); acknowledged ${sum((r) => r.check.acknowledged)}, lost ${sum((r) => r.check.lost)}, ` +
    `duplicated ${sum((r) => r.check.duplicated)}, reordered ${sum((r) => r.check.reordered)}, unseen ${sum((r) => r.check.unseen)}, ` +
    `max unavailability ${(Math.max(0, ...reports.map((r) => r.check.maxUnavailabilityMs)) / 1000).toFixed(1)} s, ` +
    `failpoints fired ${sum((r) => r.failpointsFired)}/${sum((r) => r.failpointsArmed)}, corruption undetected ${sum((r) => r.corruptionUndetected)}, ` +
    `unexpected node exits ${sum((r) => r.unexpectedExits.length)}`);
}

function parseKinds(text: string | undefined): FaultKind[] | undefined {
  if (text === undefined) return undefined;
  const kinds = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new RangeError(`--kinds: unknown fault kind "${k}"; kinds are ${FAULT_KINDS.join(", ")}`);
  return kinds as FaultKind[];
}

function replayFlags(values: Record<string, unknown>, control: Control | undefined): string {
  const flags: string[] = [];
  for (const name of ["rate", "nodes", "partitions", "kinds"]) if (values[name] !== undefined) flags.push(`--${name} ${String(values[name])}`);
  if (values["power-loss"] !== undefined) flags.push(`--power-loss ${String(values["power-loss"])}`);
  if (control !== undefined) flags.push(`--control ${control}`);
  return flags.length === 0 ? "" : " " + flags.join(" ");
}

function indent(text: string): string {
  return text.split("\n").map((l) => `    ${l}`).join("\n");
}

// Ctrl-C or SIGTERM: exit through process.exit, so that the local clusters' exit hooks SIGKILL
// their nodes by PID (a signal's default action would leave them running).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`${signal}: stopping; the nodes of the current run are killed, its data kept`);
    process.exit(130);
  });
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(2);
});

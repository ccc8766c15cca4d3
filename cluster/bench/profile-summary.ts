/**
 * `node dist/cluster/bench/profile-summary.js FILE.cpuprofile [--top N]`: where a V8 CPU profile
 * (as written by `node --cpu-prof`, e.g. by `npm run bench -- --cpu-prof DIR`) spends its time.
 *
 * Prints three tables: time per module (a package under node_modules, a folder of src/, a Node.js
 * internal, or V8's own "(garbage collector)", "(program)", "(idle)"), the functions with the most
 * self time, and the functions with the most total time (self plus callees, each sample counted
 * once per function even under recursion). Times are sums of the profile's sample intervals, and
 * percentages are of the non-idle time, so they read as "share of the CPU this process used".
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly wallMs: number;
  /** Sampled time not idle, in ms. */
  readonly busyMs: number;
  readonly modules: ReadonlyArray<{ readonly name: string; readonly selfMs: number }>;
  readonly self: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
  readonly total: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
}

/** The module a frame belongs to, from its script URL. */
export function moduleOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg !== null) return pkg[1]!;
  const own = /\/dist\/((?:src|cluster|chaos-tests)\/[^/]+)\//.exec(url);
  if (own !== null) return own[1]!;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url.split("/").slice(-2).join("/");
}

function frameName(frame: CallFrame): string {
  const file = frame.url === "" ? "" : ` ${frame.url.replace(/^.*\/(node_modules|dist)\//, "").replace(/^file:\/\//, "")}:${frame.lineNumber + 1}`;
  return `${frame.functionName === "" ? "(anonymous)" : frame.functionName}${file}`;
}

export function summarize(profile: CpuProfile, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const modules = new Map<string, number>();
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busyMs = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") continue;
    busyMs += ms;
    add(modules, moduleOf(node.callFrame), ms);
    add(self, frameName(node.callFrame), ms);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = frameName(byId.get(cur)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      add(total, name, ms);
    }
  }
  const sorted = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  return {
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs,
    modules: sorted(modules, top).map(([name, ms]) => ({ name, selfMs: ms })),
    self: sorted(self, top).map(([name, ms]) => ({ name, ms })),
    total: sorted(total, top).filter(([name]) => name !== "(root)").map(([name, ms]) => ({ name, ms })),
  };
}

function add(m: Map<string, number>, key: string, ms: number): void {
  m.set(key, (m.get(key) ?? 0) + ms);
}

function format(s: ProfileSummary): string {
  const pct = (ms: number): string => `${((100 * ms) / s.busyMs).toFixed(1).padStart(5)}%`;
  const rows = (list: ReadonlyArray<{ name: string; ms?: number; selfMs?: number }>): string[] =>
    list.map((r) => `  ${pct(r.ms ?? r.selfMs ?? 0)}  ${(r.ms ?? r.selfMs ?? 0).toFixed(0).padStart(7)} ms  ${r.name}`);
  return [
    `wall ${(s.wallMs / 1000).toFixed(1)} s, busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s = ${((100 * s.busyMs) / s.wallMs).toFixed(0)}% of the main thread`,
    "",
    "self time by module:",
    ...rows(s.modules),
    "",
    "functions by self time:",
    ...rows(s.self),
    "",
    "functions by total time (self + callees):",
    ...rows(s.total),
  ].join("\n");
}

function main(argv: readonly string[]): number {
  const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { top: { type: "string", default: "25" } } });
  if (positionals.length === 0) {
    process.stderr.write("usage: node dist/cluster/bench/profile-summary.js FILE.cpuprofile... [--top N]\n");
    return 2;
  }
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    process.stdout.write(`== ${file}\n${format(summarize(profile, Number(values.top)))}\n\n`);
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) process.exitCode = main(process.argv.slice(2));

/**
 * CPU, memory and disk writes of processes, read from Linux's /proc: `/proc/PID/stat` gives user
 * + system CPU time in clock ticks (fields 14 and 15), `/proc/PID/status` gives VmRSS, and
 * `/proc/PID/io` gives write_bytes (bytes this process caused to be sent to the block device).
 * A ProcSampler reads them every `intervalMs` between start() and stop() and reports, per
 * process, the CPU used over the whole window as a percentage of one core (100 = one core busy),
 * the mean and peak RSS and the disk write rate. All threads count (RocksDB's background
 * threads, libuv's pool, V8's GC threads).
 *
 * It also reads the machine's busy time from `/proc/stat`, so a report can say how much CPU
 * processes other than the sampled ones took meanwhile: on a shared 2-core machine another
 * process's load changes the figures, and the report should show it.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export interface ProcSample {
  /** utime + stime, in seconds. */
  readonly cpuS: number;
  readonly rssBytes: number;
  /** write_bytes of /proc/PID/io; NaN where it cannot be read. */
  readonly diskWriteBytes: number;
}

export interface ProcUsage {
  readonly label: string;
  readonly pid: number;
  /** CPU time over the window / wall time of the window, in percent of one core. */
  readonly cpuPct: number;
  readonly rssMeanMiB: number;
  readonly rssMaxMiB: number;
  /** Bytes written to the block device per second, in MB (10^6 bytes). */
  readonly diskWriteMBps: number;
  /**
   * CPU per kind of thread, in percent of one core, from /proc/PID/task/TID/stat at start() and
   * stop(): `main` (the JavaScript thread), `rocksdb:low` (RocksDB compaction), `rocksdb:high`
   * (memtable flushes), `other` (libuv's pool, which runs the binding's writes, fsyncs and reads,
   * and V8's GC and compiler helpers). Empty where /proc cannot be read.
   */
  readonly threadsCpuPct: Readonly<Record<string, number>>;
  /** Samples taken; 0 if the process could not be read. */
  readonly samples: number;
}

const CLOCK_TICKS_PER_S_DEFAULT = 100;
let clockTicksPerS: number | undefined;

/** sysconf(_SC_CLK_TCK), asked of getconf once; 100 (Linux's USER_HZ) if that fails. */
function ticksPerS(): number {
  if (clockTicksPerS === undefined) {
    try {
      const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
      clockTicksPerS = Number.isInteger(n) && n > 0 ? n : CLOCK_TICKS_PER_S_DEFAULT;
    } catch {
      clockTicksPerS = CLOCK_TICKS_PER_S_DEFAULT;
    }
  }
  return clockTicksPerS;
}

/** One reading of `pid`, or undefined if it is gone (or this is not Linux). */
export function readProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKiB = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
    if (!Number.isFinite(ticks) || !Number.isFinite(rssKiB)) return undefined;
    return { cpuS: ticks / ticksPerS(), rssBytes: rssKiB * 1024, diskWriteBytes: readWriteBytes(pid) };
  } catch {
    return undefined;
  }
}

/** CPU seconds of each thread of `pid`, grouped by threadKind(). */
export function readThreads(pid: number): Map<string, number> {
  const kinds = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return kinds;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const kind = threadKind(Number(tid) === pid, comm);
      kinds.set(kind, (kinds.get(kind) ?? 0) + (Number(fields[11]) + Number(fields[12])) / ticksPerS());
    } catch {
      // the thread ended meanwhile
    }
  }
  return kinds;
}

function threadKind(isMain: boolean, comm: string): string {
  if (isMain) return "main";
  const rocks = /^rocksdb:(low|high)/.exec(comm);
  return rocks !== null ? `rocksdb:${rocks[1]}` : "other";
}

function readWriteBytes(pid: number): number {
  try {
    return Number(/^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** CPU time the whole machine spent busy (all cores, all processes and the kernel), in seconds; NaN off Linux. */
export function readMachineBusyS(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice: busy = all but idle and iowait;
    // guest time is already counted in user.
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / ticksPerS();
  } catch {
    return NaN;
  }
}

interface Tracked {
  readonly label: string;
  readonly pid: number;
  first: ProcSample | undefined;
  last: ProcSample | undefined;
  threadsFirst: Map<string, number>;
  threadsLast: Map<string, number>;
  rssSumBytes: number;
  rssMaxBytes: number;
  samples: number;
}

/** Samples a fixed set of processes at a fixed interval. */
export class ProcSampler {
  private readonly tracked: Tracked[];
  private timer: NodeJS.Timeout | undefined;
  private startedAtMs = 0;
  private stoppedAtMs = 0;
  private machineBusyStartS = NaN;
  private machineBusyStopS = NaN;

  constructor(processes: ReadonlyArray<{ label: string; pid: number }>, private readonly intervalMs: number) {
    this.tracked = processes.map((p) => ({
      ...p, first: undefined, last: undefined, threadsFirst: new Map(), threadsLast: new Map(), rssSumBytes: 0, rssMaxBytes: 0, samples: 0,
    }));
  }

  /** Takes the first sample now, then one every intervalMs. */
  start(): void {
    this.startedAtMs = performance.now();
    this.machineBusyStartS = readMachineBusyS();
    for (const t of this.tracked) t.threadsFirst = readThreads(t.pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Takes a last sample and returns the usage over the window from start(). */
  stop(): ProcUsage[] {
    clearInterval(this.timer);
    this.sample();
    this.machineBusyStopS = readMachineBusyS();
    for (const t of this.tracked) t.threadsLast = readThreads(t.pid);
    this.stoppedAtMs = performance.now();
    const wallS = (this.stoppedAtMs - this.startedAtMs) / 1000;
    return this.tracked.map((t) => ({
      label: t.label,
      pid: t.pid,
      cpuPct: t.first !== undefined && t.last !== undefined && wallS > 0 ? (100 * (t.last.cpuS - t.first.cpuS)) / wallS : NaN,
      rssMeanMiB: t.samples > 0 ? t.rssSumBytes / t.samples / 2 ** 20 : NaN,
      rssMaxMiB: t.samples > 0 ? t.rssMaxBytes / 2 ** 20 : NaN,
      diskWriteMBps: t.first !== undefined && t.last !== undefined && wallS > 0 ? (t.last.diskWriteBytes - t.first.diskWriteBytes) / wallS / 1e6 : NaN,
      threadsCpuPct: Object.fromEntries([...t.threadsLast].map(([kind, s]) => [kind, wallS > 0 ? (100 * (s - (t.threadsFirst.get(kind) ?? 0))) / wallS : NaN])),
      samples: t.samples,
    }));
  }

  /**
   * CPU the whole machine used over the last start()..stop() window, in percent of one core
   * (200 = both cores of a 2-core machine busy). Call after stop().
   */
  machineCpuPct(): number {
    const wallS = (this.stoppedAtMs - this.startedAtMs) / 1000;
    return wallS > 0 ? (100 * (this.machineBusyStopS - this.machineBusyStartS)) / wallS : NaN;
  }

  private sample(): void {
    for (const t of this.tracked) {
      const s = readProc(t.pid);
      if (s === undefined) continue;
      t.first ??= s;
      t.last = s;
      t.rssSumBytes += s.rssBytes;
      t.rssMaxBytes = Math.max(t.rssMaxBytes, s.rssBytes);
      t.samples++;
    }
  }
}

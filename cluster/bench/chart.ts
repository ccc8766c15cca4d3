/**
 * The SVG chart of a sweep: renderSweepChart() is a pure function from a SweepResult to the text
 * of a self-contained SVG (no scripts, no external fonts or styles, white background), so it reads
 * the same in a browser, in GitHub and in an image viewer, and a test can check it.
 *
 * Layout: a header (title with the date, the machine, the fixed parameters), then one panel per
 * swept dimension, each with two plots over the same x axis (the dimension, log scale, a tick at
 * every point):
 *
 *   throughput: records/s (left axis, linear) and MB/s (right axis, linear)
 *   latency:    produce-acknowledgement p50 and p99 of the throughput run (solid), and of the
 *               latency scenario, one record in flight (dashed, with --sweep-latency); ms, log scale
 *               (ticks at 1, 2, 5 x 10^k over up to 2.5 decades, at whole decades beyond)
 *
 * Throughput and latency get a plot each rather than sharing one with two right axes: MB/s and
 * records/s move in opposite directions along record size, and three scales on one plot are not
 * readable. Every series is one <polyline> (data-series names it) plus a marker per point with a
 * <title> tooltip; a point whose run was disturbed (other processes above 10% of a core) has a
 * hollow marker, and a point whose run failed has a red cross on the x axis.
 */
import { fmtBytes, formatDimensionValue, OTHER_CPU_WARN_PCT, type BenchResult, type SweepAxisResult, type SweepResult } from "./report.js";
import type { SweepDimension } from "./options.js";

const WIDTH = 960;
const MARGIN_LEFT = 90;
const MARGIN_RIGHT = 90;
const PLOT_WIDTH = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
const HEADER_HEIGHT = 128;
const PANEL_HEIGHT = 540;
const FOOTER_HEIGHT = 56;
const THROUGHPUT_TOP = 48;
const THROUGHPUT_HEIGHT = 190;
const LATENCY_TOP = 300;
const LATENCY_HEIGHT = 170;
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
/** Approximate width of a character of the 12px font, for laying out legends. */
const CHAR_WIDTH_PX = 6.6;

const COLORS = {
  records: "#1f77b4",
  mb: "#ff7f0e",
  p50: "#2ca02c",
  p99: "#d62728",
  axis: "#333333",
  grid: "#e5e5e5",
  muted: "#666666",
} as const;

const DIMENSION_TITLES: Readonly<Record<SweepDimension, string>> = {
  "record-bytes": "Record size",
  partitions: "Partitions of the topic",
  producers: "Producers (each its own client)",
};

const X_AXIS_TITLES: Readonly<Record<SweepDimension, string>> = {
  "record-bytes": "record body size (log scale)",
  partitions: "partitions (log scale)",
  producers: "producers (log scale)",
};

/** One line of a plot: a value (or nothing) per point of the axis. */
interface Series {
  readonly name: string;
  readonly color: string;
  readonly dashed: boolean;
  /** Which y scale of the plot it uses. */
  readonly side: "left" | "right";
  readonly values: readonly (number | undefined)[];
  readonly format: (v: number) => string;
}

/** A y scale: maps a value to a y pixel, with its ticks. */
interface YScale {
  readonly y: (v: number) => number;
  readonly ticks: readonly number[];
  readonly format: (v: number) => string;
}

/** The SVG text of the chart of `r`: one panel per swept dimension. Pure: the same input gives the same text. */
export function renderSweepChart(r: SweepResult): string {
  const height = HEADER_HEIGHT + r.axes.length * PANEL_HEIGHT + FOOTER_HEIGHT;
  const title = `raftmq produce sweep, ${r.startedAt.slice(0, 10)}${r.complete ? "" : " (interrupted: the points run so far)"}`;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${esc(FONT)}" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(MARGIN_LEFT - 60, 28, title, { size: 18, weight: "bold" }),
    ...headerLines(r).map((line, i) => text(MARGIN_LEFT - 60, 50 + i * 16, line, { color: COLORS.muted })),
  ];
  r.axes.forEach((axis, i) => out.push(...panel(r, axis, HEADER_HEIGHT + i * PANEL_HEIGHT)));
  const footerY = HEADER_HEIGHT + r.axes.length * PANEL_HEIGHT + 8;
  out.push(
    text(MARGIN_LEFT - 60, footerY + 12, "Latency: produce acknowledgement, from send() to the acknowledgement, per record (HdrHistogram). MB = 10^6 bytes of record bodies.", { color: COLORS.muted }),
    text(MARGIN_LEFT - 60, footerY + 28, `Hollow marker: other processes took more than ${OTHER_CPU_WARN_PCT}% of a core during that run (disturbed). Red cross: the run failed (see the JSON).`, { color: COLORS.muted }),
    `</svg>`,
  );
  return out.join("\n") + "\n";
}

function headerLines(r: SweepResult): string[] {
  const m = r.machine;
  const f = r.fixed;
  return [
    `Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}.`,
    `Each run on a fresh ${f.nodes}-node local cluster, ${f.replication} replicas, acknowledged when fsynced on a quorum; ${f.durationS} s measured after ${f.warmupS} s warm-up.`,
    `Fixed where not swept: ${fmtBytes(f.recordBytes)} records, ${f.partitions} partitions, ${f.producers} producers (each its own client) x ${f.inFlight} records in flight.`,
    `Producers: linger ${f.lingerMs} ms, batch <= ${f.batchRecordsMax} records, at most ${fmtBytes(f.inFlightBytesMax)} of record bodies in flight each (fewer records in flight for large records).`,
  ];
}

/** One dimension's panel, `top` pixels down: its title, the throughput plot and the latency plot. */
function panel(r: SweepResult, axis: SweepAxisResult, top: number): string[] {
  const points = axis.points;
  const x = xScale(points.map((p) => p.value));
  const run = (p: (typeof points)[number]): BenchResult | undefined => p.throughput;
  const throughput: Series[] = [
    { name: "records/s (left axis)", color: COLORS.records, dashed: false, side: "left", values: points.map((p) => run(p)?.result.recordsPerS), format: fmtCount },
    { name: "MB/s (right axis)", color: COLORS.mb, dashed: false, side: "right", values: points.map((p) => run(p)?.result.mbPerS), format: fmtPlain },
  ];
  const latency: Series[] = [
    { name: "p50, throughput run", color: COLORS.p50, dashed: false, side: "left", values: points.map((p) => run(p)?.result.latencyMs.p50Ms), format: fmtMs },
    { name: "p99, throughput run", color: COLORS.p99, dashed: false, side: "left", values: points.map((p) => run(p)?.result.latencyMs.p99Ms), format: fmtMs },
  ];
  if (r.latency && points.some((p) => p.latency !== undefined)) {
    latency.push(
      { name: "p50, 1 in flight", color: COLORS.p50, dashed: true, side: "left", values: points.map((p) => p.latency?.result.latencyMs.p50Ms), format: fmtMs },
      { name: "p99, 1 in flight", color: COLORS.p99, dashed: true, side: "left", values: points.map((p) => p.latency?.result.latencyMs.p99Ms), format: fmtMs },
    );
  }
  const disturbed = points.map((p) => p.throughput !== undefined && p.throughput.machineCpu.otherPct > OTHER_CPU_WARN_PCT);
  const disturbedLatency = points.map((p) => p.latency !== undefined && p.latency.machineCpu.otherPct > OTHER_CPU_WARN_PCT);
  const tTop = top + THROUGHPUT_TOP;
  const lTop = top + LATENCY_TOP;
  const out = [
    `<g class="panel" data-dimension="${esc(axis.dimension)}">`,
    text(MARGIN_LEFT - 60, top + 20, `${DIMENSION_TITLES[axis.dimension]}: throughput and latency`, { size: 15, weight: "bold" }),
  ];
  const left = linearScale(throughput[0]!.values, tTop, THROUGHPUT_HEIGHT, fmtCount);
  const right = linearScale(throughput[1]!.values, tTop, THROUGHPUT_HEIGHT, fmtPlain);
  out.push(...frame(tTop, THROUGHPUT_HEIGHT, x, axis, left, right, "records/s", "MB/s"));
  out.push(...legend(throughput, tTop - 10));
  out.push(...throughput.flatMap((s) => series(s, axis, x, s.side === "left" ? left : right, disturbed)));
  const ms = logScale(latency.flatMap((s) => s.values), lTop, LATENCY_HEIGHT);
  out.push(...frame(lTop, LATENCY_HEIGHT, x, axis, ms, undefined, "latency, ms (log scale)", undefined));
  out.push(...legend(latency, lTop - 10));
  out.push(...latency.flatMap((s) => series(s, axis, x, ms, s.dashed ? disturbedLatency : disturbed)));
  out.push(...failures(axis, x, tTop + THROUGHPUT_HEIGHT));
  out.push(text(MARGIN_LEFT + PLOT_WIDTH / 2, lTop + LATENCY_HEIGHT + 48, X_AXIS_TITLES[axis.dimension], { anchor: "middle", color: COLORS.axis }));
  out.push(`</g>`);
  return out;
}

/** Axes, grid lines and tick labels of one plot; `right` adds a right y axis. */
function frame(top: number, height: number, x: (v: number) => number, axis: SweepAxisResult, left: YScale, right: YScale | undefined, leftTitle: string, rightTitle: string | undefined): string[] {
  const bottom = top + height;
  const xRight = MARGIN_LEFT + PLOT_WIDTH;
  const out = [`<rect x="${MARGIN_LEFT}" y="${top}" width="${PLOT_WIDTH}" height="${height}" fill="none" stroke="${COLORS.axis}" stroke-width="1"/>`];
  for (const t of left.ticks) {
    const y = num(left.y(t));
    out.push(`<line x1="${MARGIN_LEFT}" y1="${y}" x2="${xRight}" y2="${y}" stroke="${COLORS.grid}" stroke-width="1"/>`);
    out.push(text(MARGIN_LEFT - 6, y + 4, left.format(t), { anchor: "end" }));
  }
  for (const t of right?.ticks ?? []) out.push(text(xRight + 6, num(right!.y(t)) + 4, right!.format(t), { anchor: "start", color: COLORS.mb }));
  const scaled = axis.dimension === "record-bytes" && axis.points.some((p, i) => i > 0 && p.inFlight !== axis.points[0]!.inFlight);
  for (const p of axis.points) {
    const px = num(x(p.value));
    out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" stroke="${COLORS.grid}" stroke-width="1"/>`);
    out.push(text(px, bottom + 16, formatDimensionValue(axis.dimension, p.value), { anchor: "middle" }));
    if (scaled) out.push(text(px, bottom + 30, `${p.inFlight} in flight`, { anchor: "middle", color: COLORS.muted, size: 10 }));
  }
  out.push(text(MARGIN_LEFT - 62, top + height / 2, leftTitle, { anchor: "middle", rotate: true, color: COLORS.axis }));
  if (rightTitle !== undefined) out.push(text(xRight + 66, top + height / 2, rightTitle, { anchor: "middle", rotate: true, color: COLORS.mb }));
  return out;
}

/** A row of legend items, right-aligned above a plot. */
function legend(list: readonly Series[], y: number): string[] {
  const widths = list.map((s) => 30 + s.name.length * CHAR_WIDTH_PX + 16);
  let x = MARGIN_LEFT + PLOT_WIDTH - widths.reduce((a, w) => a + w, 0);
  const out: string[] = [];
  list.forEach((s, i) => {
    out.push(`<line x1="${num(x)}" y1="${y - 4}" x2="${num(x + 24)}" y2="${y - 4}" stroke="${s.color}" stroke-width="2.5"${dash(s)}/>`);
    out.push(text(x + 30, y, s.name, {}));
    x += widths[i]!;
  });
  return out;
}

/** One series: its polyline (over the points that have a value) and a marker with a tooltip per point. */
function series(s: Series, axis: SweepAxisResult, x: (v: number) => number, y: YScale, hollow: readonly boolean[]): string[] {
  const placed = axis.points.flatMap((p, i) => {
    const v = s.values[i];
    return v === undefined || !Number.isFinite(v) ? [] : [{ px: num(x(p.value)), py: num(y.y(v)), v, value: p.value, hollow: hollow[i] === true }];
  });
  const out = [
    `<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="2"${dash(s)} points="${placed.map((p) => `${p.px},${p.py}`).join(" ")}"/>`,
  ];
  for (const p of placed) {
    out.push(
      `<circle cx="${p.px}" cy="${p.py}" r="3.5" fill="${p.hollow ? "#ffffff" : s.color}" stroke="${s.color}" stroke-width="1.5">` +
        `<title>${esc(`${s.name} at ${formatDimensionValue(axis.dimension, p.value)}: ${s.format(p.v)}${p.hollow ? " (disturbed)" : ""}`)}</title></circle>`,
    );
  }
  return out;
}

/** A red cross on the x axis at each point with errors, its tooltip the errors. */
function failures(axis: SweepAxisResult, x: (v: number) => number, y: number): string[] {
  return axis.points.filter((p) => p.errors.length > 0).map((p) => {
    const px = num(x(p.value));
    return `<path d="M${num(px - 5)},${y - 5} L${num(px + 5)},${y + 5} M${num(px - 5)},${y + 5} L${num(px + 5)},${y - 5}" stroke="${COLORS.p99}" stroke-width="2">` +
      `<title>${esc(p.errors.join("; "))}</title></path>`;
  });
}

/**
 * The x scale: log10 of the values across the plot's width, with a margin of 6% of the span on
 * each side; a single value (or none) sits in the middle.
 */
export function xScale(values: readonly number[]): (v: number) => number {
  const logs = values.filter((v) => v > 0).map(Math.log10);
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  if (logs.length === 0 || hi === lo) return () => MARGIN_LEFT + PLOT_WIDTH / 2;
  const pad = (hi - lo) * 0.06;
  return (v) => MARGIN_LEFT + ((Math.log10(v) - lo + pad) / (hi - lo + 2 * pad)) * PLOT_WIDTH;
}

/** A linear scale from 0 to a round maximum above every value, with 4 or 5 ticks. */
export function linearScale(values: readonly (number | undefined)[], top: number, height: number, format: (v: number) => string): YScale {
  const max = Math.max(0, ...values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const step = niceStep(max > 0 ? max / 4 : 1);
  const hi = Math.max(step, Math.ceil(max / step) * step);
  const ticks: number[] = [];
  for (let t = 0; t <= hi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { y: (v) => top + height - (v / hi) * height, ticks, format };
}

/**
 * A log10 scale around the positive values. Up to LOG_FINE_DECADES_MAX decades: bounds and ticks
 * at 1, 2, 5 x 10^k; beyond: bounds and ticks at whole decades (at most LOG_DECADES_MAX of them).
 */
export function logScale(values: readonly (number | undefined)[], top: number, height: number): YScale {
  const positive = values.filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
  const min = positive.length > 0 ? Math.min(...positive) : 1;
  const max = positive.length > 0 ? Math.max(...positive) : 10;
  let steps = [1, 2, 5];
  let lo = stepBelow(min, steps);
  let hi = stepAbove(max, steps);
  if (Math.log10(hi / lo) > LOG_FINE_DECADES_MAX) {
    steps = [1];
    lo = stepBelow(min, steps);
    hi = stepAbove(max, steps);
  }
  if (hi <= lo) hi = stepAbove(lo * 1.01, steps);
  lo = Math.max(lo, hi / 10 ** LOG_DECADES_MAX); // bounded: values below sit on the bottom edge
  const ticks: number[] = [];
  for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
    for (const m of steps) {
      const t = Number((m * 10 ** d).toPrecision(6));
      if (t >= lo * 0.9999 && t <= hi * 1.0001) ticks.push(t);
    }
  }
  const span = Math.log10(hi / lo);
  const y = (v: number): number => top + height - (Math.log10(Math.min(Math.max(v, lo), hi) / lo) / span) * height;
  return { y, ticks, format: fmtMs };
}

const LOG_FINE_DECADES_MAX = 2.5;
const LOG_DECADES_MAX = 9;

/** The largest m x 10^k (m in steps) at or below v. */
function stepBelow(v: number, steps: readonly number[]): number {
  const d = Math.floor(Math.log10(v));
  const candidates = [d - 1, d].flatMap((e) => steps.map((m) => Number((m * 10 ** e).toPrecision(6))));
  return Math.max(...candidates.filter((c) => c <= v * 1.0001));
}

/** The smallest m x 10^k (m in steps) at or above v. */
function stepAbove(v: number, steps: readonly number[]): number {
  const d = Math.floor(Math.log10(v));
  const candidates = [d, d + 1].flatMap((e) => steps.map((m) => Number((m * 10 ** e).toPrecision(6))));
  return Math.min(...candidates.filter((c) => c >= v * 0.9999));
}

/** The smallest of 1, 2, 2.5, 5 x 10^k that is at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** 950 -> "950", 17154 -> "17.2k", 1200000 -> "1.2M". */
export function fmtCount(v: number): string {
  if (v >= 1e6) return `${trim((v / 1e6).toFixed(1))}M`;
  if (v >= 1e3) return `${trim((v / 1e3).toFixed(1))}k`;
  return trim(v.toFixed(v < 10 ? 1 : 0));
}

function fmtPlain(v: number): string {
  return trim(v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0));
}

/** Milliseconds: 0.05 -> "0.05", 1.479 -> "1.48", 209.8 -> "210", 1000 -> "1,000". */
export function fmtMs(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString("en-US");
  return trim(v.toPrecision(3));
}

function trim(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

function dash(s: Series): string {
  return s.dashed ? ` stroke-dasharray="6 4"` : "";
}

interface TextStyle {
  readonly anchor?: "start" | "middle" | "end";
  readonly size?: number;
  readonly weight?: "bold";
  readonly color?: string;
  /** Rotated 90 degrees counter-clockwise about its position (a y axis title). */
  readonly rotate?: boolean;
}

function text(x: number, y: number, content: string, style: TextStyle): string {
  const attrs = [
    `x="${num(x)}"`,
    `y="${num(y)}"`,
    ...(style.anchor !== undefined && style.anchor !== "start" ? [`text-anchor="${style.anchor}"`] : []),
    ...(style.size !== undefined ? [`font-size="${style.size}"`] : []),
    ...(style.weight !== undefined ? [`font-weight="${style.weight}"`] : []),
    `fill="${style.color ?? COLORS.axis}"`,
    ...(style.rotate === true ? [`transform="rotate(-90 ${num(x)} ${num(y)})"`] : []),
  ];
  return `<text ${attrs.join(" ")}>${esc(content)}</text>`;
}

/** A pixel coordinate with at most one decimal, so the text is short and deterministic. */
function num(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Escapes text for XML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

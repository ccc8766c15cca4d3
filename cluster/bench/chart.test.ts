/**
 * The sweep chart: well-formed XML, one polyline per series, points placed along x in the order
 * of the values, labels present, text escaped, the same text for the same input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { esc, fmtCount, fmtMs, linearScale, logScale, renderSweepChart, xScale } from "./chart.js";
import { sweepFixture } from "./testing/sweep-fixture.js";
import type { SweepResult } from "./report.js";

interface Element {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: Element[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*$/;
const ENTITY = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

/**
 * A small XML checker and parser (enough for our SVG): every tag closed in order, attributes
 * quoted and unique, no raw `<` in text or attributes, every `&` an entity. Throws on the first fault.
 */
function parseXml(xml: string): Element {
  const root: Element = { name: "#document", attrs: {}, children: [], text: "" };
  const stack: Element[] = [root];
  let i = 0;
  const checkText = (s: string, at: number): void => {
    for (let j = 0; j < s.length; j++) {
      if (s[j] === "<") throw new Error(`raw < at ${at + j}`);
      if (s[j] === "&") {
        ENTITY.lastIndex = j;
        if (!ENTITY.test(s)) throw new Error(`bare & at ${at + j}: ${s.slice(j, j + 12)}`);
      }
    }
  };
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const end = lt < 0 ? xml.length : lt;
    const content = xml.slice(i, end);
    checkText(content, i);
    stack[stack.length - 1]!.text += content;
    if (lt < 0) break;
    const gt = xml.indexOf(">", lt);
    if (gt < 0) throw new Error(`unclosed tag at ${lt}`);
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("?")) {
      if (!tag.endsWith("?") || lt !== 0) throw new Error(`bad declaration at ${lt}`);
      continue;
    }
    if (tag.startsWith("/")) {
      const open = stack.pop();
      if (open === undefined || open === root || open.name !== tag.slice(1).trim()) throw new Error(`</${tag.slice(1)}> at ${lt} closes <${open?.name}>`);
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const name = /^\S+/.exec(body)?.[0] ?? "";
    if (!NAME.test(name)) throw new Error(`bad tag name "${name}" at ${lt}`);
    const attrs: Record<string, string> = {};
    const rest = body.slice(name.length);
    const attr = /\s+([A-Za-z_][\w.:-]*)="([^"]*)"/y;
    let k = 0;
    for (;;) {
      attr.lastIndex = k;
      const m = attr.exec(rest);
      if (m === null) break;
      if (m[1]! in attrs) throw new Error(`attribute ${m[1]} twice in <${name}> at ${lt}`);
      checkText(m[2]!, lt);
      attrs[m[1]!] = m[2]!;
      k = attr.lastIndex;
    }
    if (rest.slice(k).trim() !== "") throw new Error(`bad attributes in <${name}> at ${lt}: "${rest.slice(k)}"`);
    const element: Element = { name, attrs, children: [], text: "" };
    stack[stack.length - 1]!.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (root.children.length !== 1 || root.children[0]!.name !== "svg") throw new Error("the document is not one <svg> element");
  if (root.text.trim() !== "") throw new Error("text outside the root element");
  return root.children[0]!;
}

function all(e: Element, name: string): Element[] {
  return [...(e.name === name ? [e] : []), ...e.children.flatMap((c) => all(c, name))];
}

function texts(e: Element): string[] {
  return all(e, "text").map((t) => t.text);
}

function xsOf(polyline: Element): number[] {
  const points = polyline.attrs["points"]!.trim();
  return points === "" ? [] : points.split(" ").map((p) => Number(p.split(",")[0]));
}

test("the checker catches what it should (negative controls)", () => {
  assert.doesNotThrow(() => parseXml(`<?xml version="1.0"?>\n<svg a="1"><g><text>a &amp; b</text></g><line/></svg>`));
  assert.throws(() => parseXml(`<svg><g></svg>`), /closes/);
  assert.throws(() => parseXml(`<svg><g>`), /never closed/);
  assert.throws(() => parseXml(`<svg><text>a & b</text></svg>`), /bare &/);
  assert.throws(() => parseXml(`<svg a=1></svg>`), /bad attributes/);
  assert.throws(() => parseXml(`<svg a="1" a="2"></svg>`), /twice/);
});

test("renderSweepChart: well-formed, self-contained SVG, deterministic", () => {
  const svg = renderSweepChart(sweepFixture());
  const root = parseXml(svg);
  assert.equal(root.attrs["xmlns"], "http://www.w3.org/2000/svg");
  assert.ok(Number(root.attrs["width"]) > 0 && Number(root.attrs["height"]) > 0);
  assert.ok(root.attrs["viewBox"]?.startsWith("0 0 "));
  assert.doesNotMatch(svg, /<script|<image|href=|@import|url\(/, "nothing external, nothing active");
  assert.equal(renderSweepChart(sweepFixture()), svg);
});

test("renderSweepChart: one panel per dimension, one polyline per series", () => {
  const root = parseXml(renderSweepChart(sweepFixture()));
  const panels = all(root, "g").filter((g) => g.attrs["class"] === "panel");
  assert.deepEqual(panels.map((p) => p.attrs["data-dimension"]), ["record-bytes", "partitions", "producers"]);
  const seriesOf = (panel: Element): string[] => all(panel, "polyline").map((p) => p.attrs["data-series"]!);
  const withLatency = ["records/s (left axis)", "MB/s (right axis)", "p50, throughput run", "p99, throughput run", "p50, 1 in flight", "p99, 1 in flight"];
  assert.deepEqual(seriesOf(panels[0]!), withLatency);
  assert.deepEqual(seriesOf(panels[1]!), withLatency);
  // The latency scenario does not run for the producers dimension: no 1-in-flight lines there.
  assert.deepEqual(seriesOf(panels[2]!), withLatency.slice(0, 4));
  assert.equal(all(root, "polyline").length, 16);
});

test("renderSweepChart: points placed along x in increasing order of value; y follows the values", () => {
  const fixture = sweepFixture();
  const root = parseXml(renderSweepChart(fixture));
  const panels = all(root, "g").filter((g) => g.attrs["class"] === "panel");
  panels.forEach((panel, i) => {
    for (const line of all(panel, "polyline")) {
      const xs = xsOf(line);
      const measured = fixture.axes[i]!.points.filter((p) => (line.attrs["data-series"]!.includes("1 in flight") ? p.latency : p.throughput) !== undefined);
      assert.equal(xs.length, measured.length, `${line.attrs["data-series"]} in ${panel.attrs["data-dimension"]}`);
      for (let k = 1; k < xs.length; k++) assert.ok(xs[k]! > xs[k - 1]!, `x not increasing in ${line.attrs["data-series"]}: ${xs.join(",")}`);
    }
  });
  // records/s of record-bytes falls (21,000 to 800): y (pixels, downward) grows.
  const records = all(panels[0]!, "polyline").find((p) => p.attrs["data-series"] === "records/s (left axis)")!;
  const ys = records.attrs["points"]!.split(" ").map((p) => Number(p.split(",")[1]));
  for (let k = 1; k < ys.length; k++) assert.ok(ys[k]! > ys[k - 1]!, ys.join(","));
  // A log x axis: 100 B .. 64 KiB, equal ratios give equal steps (1 KiB -> 4 KiB -> 16 KiB -> 64 KiB).
  const xs = xsOf(records);
  assert.ok(Math.abs(xs[2]! - xs[1]! - (xs[3]! - xs[2]!)) < 0.5 && Math.abs(xs[4]! - xs[3]! - (xs[3]! - xs[2]!)) < 0.5, xs.join(","));
});

test("renderSweepChart: title, machine, fixed parameters, axis and tick labels, legend", () => {
  const root = parseXml(renderSweepChart(sweepFixture()));
  const all_ = texts(root).join("\n");
  for (const label of [
    "raftmq produce sweep, 2026-11-28", "2 cores", "Linux 6.1.0", "Fixed where not swept: 1 KiB records, 6 partitions, 4 producers (each its own client) x 1000 records in flight", "at most 16 MiB of record bodies",
    "Record size: throughput and latency", "Partitions of the topic: throughput and latency", "Producers (each its own client): throughput and latency",
    "records/s", "MB/s", "latency, ms (log scale)", "record body size (log scale)", "partitions (log scale)", "producers (log scale)",
    "100 B", "1 KiB", "64 KiB", "1000", "8", "256 in flight", "p99, 1 in flight", "records/s (left axis)",
  ]) {
    assert.ok(all_.includes(label), `missing label "${label}"`);
  }
  // The failed point (1000 partitions) has a cross with the error as its tooltip; the disturbed one (8 producers) hollow markers.
  const failed = all(root, "path").map((p) => all(p, "title")[0]?.text ?? "");
  assert.ok(failed.some((t) => t.includes("only 812 of 1000 partitions")), failed.join("|"));
  assert.ok(all(root, "circle").some((c) => c.attrs["fill"] === "#ffffff" && all(c, "title")[0]!.text.includes("(disturbed)")));
});

test("renderSweepChart: text is escaped", () => {
  const fixture = sweepFixture();
  const svg = renderSweepChart({ ...fixture, machine: { ...fixture.machine, cpuModel: `<script>"x" & 'y'</script>` } });
  assert.ok(svg.includes("&lt;script&gt;&quot;x&quot; &amp; &apos;y&apos;&lt;/script&gt;"));
  assert.doesNotMatch(svg, /<script/);
  const root = parseXml(svg);
  assert.ok(texts(root).some((t) => t.includes("&lt;script&gt;")));
  assert.equal(esc(`a<b>&"'`), "a&lt;b&gt;&amp;&quot;&apos;");
});

test("renderSweepChart: one point, an interrupted sweep, a point without figures", () => {
  const fixture = sweepFixture();
  const one: SweepResult = { ...fixture, complete: false, latency: false, axes: [{ ...fixture.axes[2]!, values: [4], points: [fixture.axes[2]!.points[2]!] }] };
  const root = parseXml(renderSweepChart(one));
  assert.ok(texts(root).some((t) => t.includes("interrupted")));
  const lines = all(root, "polyline");
  assert.equal(lines.length, 4);
  assert.ok(lines.every((l) => xsOf(l).length === 1));
  const empty: SweepResult = { ...fixture, axes: [{ ...fixture.axes[1]!, values: [1000], points: [fixture.axes[1]!.points[3]!] }] };
  assert.doesNotThrow(() => parseXml(renderSweepChart(empty)));
});

test("scales and number formats", () => {
  const x = xScale([1, 10, 100, 1000]);
  assert.ok(x(1) < x(10) && x(10) < x(100) && x(100) < x(1000));
  assert.ok(Math.abs(x(10) - x(1) - (x(1000) - x(100))) < 1e-9);
  const lin = linearScale([0, 17_154, 9000], 0, 100, fmtCount);
  assert.deepEqual(lin.ticks, [0, 5000, 10000, 15000, 20000]);
  assert.equal(lin.y(0), 100);
  assert.equal(lin.y(20000), 0);
  const log = logScale([1.479, 533, undefined, NaN], 0, 300);
  assert.equal(log.ticks[0], 1);
  assert.equal(log.ticks[log.ticks.length - 1], 1000);
  assert.ok(log.y(1) > log.y(10) && log.y(10) > log.y(100));
  assert.deepEqual(logScale([2, 3], 0, 100).ticks, [2, 5]);
  assert.deepEqual(logScale([110, 1100], 0, 100).ticks, [100, 200, 500, 1000, 2000]);
  assert.deepEqual(logScale([0.4, 3000], 0, 100).ticks, [0.1, 1, 10, 100, 1000, 10000]);
  assert.deepEqual(logScale([], 0, 100).ticks, [1, 2, 5, 10]);
  assert.ok(logScale([0.5], 0, 100).ticks.length >= 2);
  assert.equal(fmtCount(17154), "17.2k");
  assert.equal(fmtCount(950), "950");
  assert.equal(fmtCount(1_200_000), "1.2M");
  assert.equal(fmtMs(1.479), "1.48");
  assert.equal(fmtMs(0.05), "0.05");
  assert.equal(fmtMs(1000), "1,000");
});

/**
 * The Raft core must stay pure: no node: modules, no packages, no timers, no clock, no global
 * randomness. This test greps the production sources of src/raft (tests and testing/ helpers may
 * use node:test and friends). The same check by hand:
 *   grep -rnE "from \"(node:|[^.])|Date\.now|Math\.random|setTimeout|setInterval|process\." src/raft \
 *     --include=*.ts | grep -v -e "\.test\.ts" -e "/testing/"
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));

function productionSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "testing") out.push(...productionSources(path));
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) {
      out.push(path);
    }
  }
  return out;
}

const FORBIDDEN: readonly [RegExp, string][] = [
  [/from\s+"(?!\.)[^"]*"/, "imports a package or node: module (only relative imports are allowed)"],
  [/import\(\s*"(?!\.)/, "dynamically imports a package or node: module"],
  [/require\(/, "uses require()"],
  [/\bDate\.now\b|\bnew Date\b|performance\.now/, "reads the clock"],
  [/\bMath\.random\b/, "uses global randomness"],
  [/\bset(Timeout|Interval|Immediate)\b|queueMicrotask/, "schedules timers"],
  [/\bprocess\./, "touches the process"],
  [/\basync\b|\bawait\b|\bPromise\b/, "is asynchronous"],
];

/** Returns the violations found in one file's text. */
export function violations(file: string, text: string): string[] {
  const found: string[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
    for (const [pattern, why] of FORBIDDEN) {
      if (pattern.test(code)) found.push(`${file}:${i + 1} ${why}: ${line.trim()}`);
    }
  });
  return found;
}

test("src/raft production code does no I/O and has no hidden inputs", () => {
  const files = [...productionSources(join(root, "src/raft")), ...productionSources(join(root, "src/lib"))];
  assert.ok(files.length >= 10, `expected the core's sources under ${root}src/raft, found ${files.length}`);
  const all = files.flatMap((f) => violations(relative(root, f), readFileSync(f, "utf8")));
  assert.deepEqual(all, []);
});

test("the purity check catches planted violations", () => {
  assert.equal(violations("x.ts", 'import { readFileSync } from "node:fs";').length, 1);
  assert.equal(violations("x.ts", 'import pino from "pino";').length, 1);
  assert.equal(violations("x.ts", "const t = Date.now();").length, 1);
  assert.equal(violations("x.ts", "const r = Math.random();").length, 1);
  assert.equal(violations("x.ts", "setTimeout(() => {}, 1);").length, 1);
  assert.equal(violations("x.ts", 'import { x } from "./x.js";').length, 0);
});

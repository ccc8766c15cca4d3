/**
 * Command-line parsing of the consumer group commands (`group list|describe|reset`, `consume
 * --group`): usage errors exit 2 before any broker is contacted, and help lists the commands. The
 * commands against a real cluster are exercised in src/server/consumers.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { runCli } from "./cli.js";
import { describeText } from "./commands/group.js";

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  // An address nothing listens on: a command that got past parsing would fail with exit code 1, not 2.
  const code = await runCli(args, { stdout, stderr, stdin: Readable.from([]), env: { RAFTMQ_BROKERS: "127.0.0.1:1" }, signal: new AbortController().signal });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

test("group commands are listed in help", async () => {
  const help = await cli(["group", "--help"]);
  assert.equal(help.code, 0);
  for (const c of ["list", "describe GROUP", "reset GROUP"]) assert.match(help.stdout, new RegExp(`raftmq group ${c}`));
  const consume = await cli(["consume", "--help"]);
  assert.match(consume.stdout, /--group G/);
  assert.match(consume.stdout, /--guarantee G/);
});

test("usage errors of group reset and consume --group exit 2 with a pointer to the help", async () => {
  const cases: [string[], RegExp][] = [
    [["group", "reset", "g"], /--topic is required/],
    [["group", "reset", "g", "--topic", "t"], /give exactly one of --to/],
    [["group", "reset", "g", "--topic", "t", "--to", "earliest", "--to-timestamp", "5"], /give exactly one of --to/],
    [["group", "reset", "g", "--topic", "t", "--to", "soon"], /--to must be earliest, latest or an offset/],
    [["group", "reset", "g", "--topic", "t", "--to-timestamp", "yesterday"], /--to-timestamp must be an integer/],
    [["group", "reset", "g", "--topic", "t", "--to", "0", "--partition", "x"], /--partition must be a partition number/],
    [["group", "describe"], /missing GROUP/],
    [["consume", "t", "--group", "g", "--partition", "1"], /--partition does not combine with --group/],
    [["consume", "t", "--group", "g", "--guarantee", "exactly-once"], /--guarantee must be at-least-once or at-most-once/],
    [["consume", "t", "--group", "g", "--from", "5"], /with --group, --from is where partitions without a committed offset start/],
    [["consume", "t", "--guarantee", "at-most-once"], /--guarantee needs --group/],
    [["consume", "t", "--group", "g", "--session-timeout-ms", "10"], /--session-timeout-ms must be an integer from 1000 to 300000/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});

test("describe renders members, owned and target partitions, offsets and lag", () => {
  const text = describeText({
    group: "billing",
    coordinator: 2,
    state: "rebalancing",
    generation: 4,
    members: [
      { memberId: "a-1", clientId: "host-a", topics: ["orders"], owned: [{ topic: "orders", partition: 0 }, { topic: "orders", partition: 1 }], target: [{ topic: "orders", partition: 0 }], sessionTimeoutMs: 10_000, sinceHeartbeatMs: 120 },
      { memberId: "b-2", clientId: "", topics: ["orders"], owned: [], target: [{ topic: "orders", partition: 1 }], sessionTimeoutMs: 10_000, sinceHeartbeatMs: 40 },
    ],
    offsets: [
      { topic: "orders", partition: 0, offset: 7, committedAtMs: 1, highWatermark: 10, lag: 3 },
      { topic: "orders", partition: 1, offset: -1, committedAtMs: 0, highWatermark: -1, lag: -1 },
    ],
  });
  assert.match(text, /^group billing: rebalancing, generation 4, coordinator node 2, 2 member\(s\)$/m);
  assert.match(text, /^a-1\s+host-a\s+orders\/0,orders\/1\s+orders\/0\s+120 ms ago$/m);
  assert.match(text, /^b-2\s+-\s+-\s+orders\/1\s+40 ms ago$/m);
  assert.match(text, /^orders\s+0\s+7\s+10\s+3$/m);
  assert.match(text, /^orders\s+1\s+-\s+-\s+-$/m);
});

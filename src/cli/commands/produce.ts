/**
 * `raftmq produce TOPIC [BODY]`: one record from BODY, or one record per line of stdin (through
 * the batching producer; reading pauses while PRINT_WINDOW_RECORDS records are unacknowledged).
 * Prints `partition=P offset=O` per record, in input order, as soon as it is acknowledged.
 */
import { createInterface } from "node:readline";
import type { HeadersInit, ProduceResult, RaftmqClient } from "../../client/index.js";
import { EXIT_FAILURE, EXIT_OK, intOption, println, stringOption, UsageError, withClient, type CliContext, type CommandSpec, type OptionValues } from "../command.js";

/** Records read from stdin and not yet printed, at most; reading pauses beyond it. */
const PRINT_WINDOW_RECORDS = 10_000;

export const produceCommand: CommandSpec = {
  path: ["produce"],
  summary: "Produce records: BODY, or one record per line of stdin.",
  args: "TOPIC [BODY]",
  positionalsMin: 1,
  positionalsMax: 2,
  description: "Records with a key go to the partition of the key's hash; without one, round-robin.",
  options: {
    key: { type: "string", short: "k", value: "KEY", description: "record key (the same for every record)" },
    header: { type: "string", short: "H", multiple: true, value: "NAME=VALUE", description: "record header; repeat for more" },
    partition: { type: "string", short: "p", value: "P", description: "send to this partition instead of routing by key" },
  },
  usesClient: true,
  run: (parsed, ctx) => {
    const headers = parseHeaders(parsed.values);
    const partition = intOption(parsed.values, "partition", undefined, 0, 9_999);
    const template = { key: stringOption(parsed.values, "key"), headers, partition };
    return withClient(parsed.values, ctx, (client) => {
      const [topic, body] = parsed.positionals as [string, string | undefined];
      return body !== undefined ? produceOne(client, topic, body, template, ctx) : produceLines(client, topic, template, ctx);
    });
  },
};

interface Template {
  readonly key: string | undefined;
  readonly headers: HeadersInit;
  readonly partition: number | undefined;
}

function parseHeaders(values: OptionValues): Array<[string, string]> {
  const raw = values["header"];
  const list = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  return list.map((h) => {
    const i = h.indexOf("=");
    if (i <= 0) throw new UsageError(`--header: "${h}" is not NAME=VALUE`);
    return [h.slice(0, i), h.slice(i + 1)];
  });
}

async function produceOne(client: RaftmqClient, topic: string, body: string, t: Template, ctx: CliContext): Promise<number> {
  const [result] = await client.produce(topic, [{ key: t.key ?? null, headers: t.headers, body }], t.partition === undefined ? {} : { partition: t.partition });
  printResult(ctx, result!);
  return EXIT_OK;
}

async function produceLines(client: RaftmqClient, topic: string, t: Template, ctx: CliContext): Promise<number> {
  if (ctx.stdin.isTTY) println(ctx.stderr, "reading records from stdin, one per line; end with Ctrl-D");
  const producer = client.producer({ lingerMs: 5 });
  const options = t.partition === undefined ? {} : { partition: t.partition };
  const failures = new FailureReport(ctx);
  let printed: Promise<void> = Promise.resolve();
  let unprinted = 0;
  const lines = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (ctx.signal.aborted) break;
    const sent = producer.send(topic, { key: t.key ?? null, headers: t.headers, body: line }, options);
    unprinted++;
    // Results print in input order as soon as each record is acknowledged.
    printed = printed.then(() => sent.then((r) => printResult(ctx, r), (e: unknown) => failures.add(e))).finally(() => unprinted--);
    if (unprinted >= PRINT_WINDOW_RECORDS) await printed;
  }
  await producer.flush();
  await printed;
  return failures.finish();
}

/** Counts failed records and prints each distinct reason once. */
class FailureReport {
  private count = 0;
  private readonly reported = new Set<string>();

  constructor(private readonly ctx: CliContext) {}

  add(error: unknown): void {
    this.count++;
    const message = (error as Error).message.replace(/ \(gave up after .*\)$/, "");
    if (!this.reported.has(message)) println(this.ctx.stderr, `raftmq: record failed: ${message}`);
    this.reported.add(message);
  }

  /** The exit code, after a summary line if anything failed. */
  finish(): number {
    if (this.count > 0) println(this.ctx.stderr, `raftmq: ${this.count} record(s) failed`);
    return this.count > 0 ? EXIT_FAILURE : EXIT_OK;
  }
}

function printResult(ctx: CliContext, r: ProduceResult): void {
  println(ctx.stdout, `partition=${r.partition} offset=${r.offset}`);
}

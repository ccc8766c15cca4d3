/**
 * `raftmq produce TOPIC [BODY]`: one record from BODY, or one record per line of stdin (through
 * the batching producer; reading pauses while PRINT_WINDOW_RECORDS records are unacknowledged).
 * Prints `partition=P offset=O` per record, in input order, as soon as it is acknowledged.
 * Record fields (--correlation-id, --reply-to, --content-type, --ttl-ms, --priority) apply to every
 * record. Batches are compressed (--compression, default lz4); stdin lines go through an
 * idempotent producer (--producer-name to fence earlier producers of that name).
 */
import { createInterface } from "node:readline";
import type { HeadersInit, ProduceRecord, ProduceResult, RaftmqClient } from "../../client/index.js";
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
    "correlation-id": { type: "string", value: "ID", description: "correlation id (request-reply)" },
    "reply-to": { type: "string", value: "NAME", description: "where replies go (request-reply)" },
    "content-type": { type: "string", value: "TYPE", description: "MIME type of the body, e.g. application/json" },
    "ttl-ms": { type: "string", value: "MS", description: "time to live from when the broker accepts it; fetches skip it afterwards" },
    priority: { type: "string", value: "0-9", description: "record priority (default 0)" },
    compression: { type: "string", value: "CODEC", description: "none, gzip or lz4 (default lz4)" },
    "producer-name": { type: "string", value: "NAME", description: "idempotent producer name (stdin mode): fences earlier producers of that name" },
  },
  usesClient: true,
  run: (parsed, ctx) => {
    const headers = parseHeaders(parsed.values);
    const partition = intOption(parsed.values, "partition", undefined, 0, 9_999);
    const compression = stringOption(parsed.values, "compression") ?? "lz4";
    if (compression !== "none" && compression !== "gzip" && compression !== "lz4") throw new UsageError(`--compression must be none, gzip or lz4, got "${compression}"`);
    const template: Template = {
      key: stringOption(parsed.values, "key"),
      headers,
      partition,
      fields: recordFields(parsed.values),
      compression,
      producerName: stringOption(parsed.values, "producer-name") ?? "",
    };
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
  readonly fields: Pick<ProduceRecord, "correlationId" | "replyTo" | "contentType" | "ttlMs" | "priority">;
  readonly compression: "none" | "gzip" | "lz4";
  readonly producerName: string;
}

function recordFields(values: OptionValues): Template["fields"] {
  const fields: { -readonly [K in keyof Template["fields"]]: Template["fields"][K] } = {};
  const correlationId = stringOption(values, "correlation-id");
  const replyTo = stringOption(values, "reply-to");
  const contentType = stringOption(values, "content-type");
  if (correlationId !== undefined) fields.correlationId = correlationId;
  if (replyTo !== undefined) fields.replyTo = replyTo;
  if (contentType !== undefined) fields.contentType = contentType;
  const ttlMs = intOption(values, "ttl-ms", undefined, 0);
  const priority = intOption(values, "priority", undefined, 0, 9);
  if (ttlMs !== undefined) fields.ttlMs = ttlMs;
  if (priority !== undefined) fields.priority = priority;
  return fields;
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
  const [result] = await client.produce(topic, [{ key: t.key ?? null, headers: t.headers, body, ...t.fields }], { compression: t.compression, ...(t.partition === undefined ? {} : { partition: t.partition }) });
  printResult(ctx, result!);
  return EXIT_OK;
}

async function produceLines(client: RaftmqClient, topic: string, t: Template, ctx: CliContext): Promise<number> {
  if (ctx.stdin.isTTY) println(ctx.stderr, "reading records from stdin, one per line; end with Ctrl-D");
  const producer = client.producer({ lingerMs: 5, compression: t.compression, producerName: t.producerName });
  const options = t.partition === undefined ? {} : { partition: t.partition };
  const failures = new FailureReport(ctx);
  let printed: Promise<void> = Promise.resolve();
  let unprinted = 0;
  const lines = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (ctx.signal.aborted) break;
    const sent = producer.send(topic, { key: t.key ?? null, headers: t.headers, body: line, ...t.fields }, options);
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

/**
 * `raftmq consume TOPIC`: prints records of every partition (or one) from the earliest offset, the
 * latest, or a given one. Without --follow it stops at the end of each partition as it was when
 * the command started, reading partitions in order; with --follow all partitions are long-polled
 * together until Ctrl-C. --max bounds the records printed in total.
 */
import { ShuttingDownError, type RaftmqClient } from "../../client/index.js";
import { EXIT_OK, intOption, stringOption, UsageError, withClient, type CliContext, type CommandSpec, type OptionValues } from "../command.js";
import { recordJson, recordLine } from "../format.js";
import { consumeInGroup, groupConsumePlan, GROUP_CONSUME_OPTIONS } from "./group-consume.js";

/** Bytes per fetch. */
const FETCH_BYTES_MAX = 1024 * 1024;
/** Long-poll wait of --follow fetches. */
const FOLLOW_WAIT_MS = 1_000;

export const consumeCommand: CommandSpec = {
  path: ["consume"],
  summary: "Print records of a topic.",
  args: "TOPIC",
  positionalsMin: 1,
  positionalsMax: 1,
  description:
    "Text lines read PARTITION:OFFSET [key=K] [HEADER=V ...] | BODY (newlines escaped; bytes that are\n" +
    "not UTF-8 as base64:...). Stops at the current end of the log unless --follow.",
  options: {
    partition: { type: "string", short: "p", value: "P", description: "only this partition (default: all)" },
    from: { type: "string", value: "WHERE", description: "earliest, latest or an offset (default earliest)" },
    max: { type: "string", short: "n", value: "N", description: "stop after N records" },
    follow: { type: "boolean", short: "f", description: "keep waiting for new records until Ctrl-C" },
    json: { type: "boolean", description: "one JSON object per record (with correlationId, replyTo, contentType, ttlMs, priority)" },
    "include-expired": { type: "boolean", description: "also print records whose TTL has passed (skipped by default)" },
    ...GROUP_CONSUME_OPTIONS,
  },
  usesClient: true,
  run: (parsed, ctx) => {
    const group = groupConsumePlan(parsed.values);
    if (group !== undefined) return withClient(parsed.values, ctx, (client) => consumeInGroup(client, parsed.positionals[0]!, group, ctx));
    const plan = consumePlan(parsed.values);
    return withClient(parsed.values, ctx, (client) => consume(client, parsed.positionals[0]!, plan, ctx));
  },
};

interface ConsumePlan {
  readonly partition: number | undefined;
  readonly from: "earliest" | "latest" | number;
  readonly max: number;
  readonly follow: boolean;
  readonly json: boolean;
  readonly includeExpired: boolean;
}

function consumePlan(values: OptionValues): ConsumePlan {
  const from = stringOption(values, "from") ?? "earliest";
  let start: ConsumePlan["from"];
  if (from === "earliest" || from === "latest") start = from;
  else if (/^\d+$/.test(from) && Number.isSafeInteger(Number(from))) start = Number(from);
  else throw new UsageError(`--from must be earliest, latest or an offset, got "${from}"`);
  return {
    partition: intOption(values, "partition", undefined, 0, 9_999),
    from: start,
    max: intOption(values, "max", Number.POSITIVE_INFINITY, 1)!,
    follow: values["follow"] === true,
    json: values["json"] === true,
    includeExpired: values["include-expired"] === true,
  };
}

/** Shared between partition readers: how many records may still be printed. */
interface Budget {
  left: number;
}

async function consume(client: RaftmqClient, topic: string, plan: ConsumePlan, ctx: CliContext): Promise<number> {
  const all = (await client.describeTopic(topic)).partitions.map((p) => p.partition);
  if (plan.partition !== undefined && !all.includes(plan.partition)) {
    throw new UsageError(`topic "${topic}" has partitions 0 to ${all.length - 1}; there is no partition ${plan.partition}`);
  }
  const partitions = plan.partition !== undefined ? [plan.partition] : all;
  const budget: Budget = { left: plan.max };
  try {
    if (plan.follow) {
      await Promise.all(partitions.map((p) => readPartition(client, topic, p, plan, budget, ctx)));
    } else {
      for (const p of partitions) await readPartition(client, topic, p, plan, budget, ctx);
    }
  } catch (error) {
    // Ctrl-C closes the client under a pending fetch: that is how --follow ends.
    if (!(ctx.signal.aborted && error instanceof ShuttingDownError)) throw error;
  }
  return EXIT_OK;
}

async function readPartition(client: RaftmqClient, topic: string, partition: number, plan: ConsumePlan, budget: Budget, ctx: CliContext): Promise<void> {
  const offsets = await client.partitionOffsets(topic, partition);
  let next = plan.from === "earliest" ? offsets.logStartOffset : plan.from === "latest" ? offsets.highWatermark : plan.from;
  const end = plan.follow ? Number.POSITIVE_INFINITY : offsets.highWatermark;
  while (next < end && budget.left > 0 && !ctx.signal.aborted) {
    const result = await client.fetch(topic, partition, next, { maxBytes: FETCH_BYTES_MAX, maxWaitMs: plan.follow ? FOLLOW_WAIT_MS : 0, includeExpired: plan.includeExpired });
    for (const r of result.records) {
      if (r.offset >= end || budget.left <= 0) break;
      budget.left--;
      await writeLine(ctx.stdout, plan.json ? recordJson(topic, r) : recordLine(r));
    }
    if (!plan.follow && result.records.length === 0 && result.nextOffset === next) break;
    next = result.nextOffset;
  }
}

/** Writes a line, waiting for the stream to drain when its buffer is full. */
function writeLine(stream: NodeJS.WritableStream, line: string): Promise<void> {
  if (stream.write(line + "\n")) return Promise.resolve();
  return new Promise((resolve) => stream.once("drain", resolve));
}

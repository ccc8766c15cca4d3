/**
 * `raftmq consume TOPIC --group G`: consumes as a member of consumer group G (client.consumer()),
 * printing each record as it is handled, until Ctrl-C or --max records; then it commits and
 * leaves the group. With at-least-once (the default) a record counts as handled once its line is
 * written, so a consumer killed with kill -9 prints again, on the next run or on another member,
 * what it printed since its last offset commit (every --commit-interval-ms).
 */
import { ShuttingDownError, type DeliveryGuarantee, type RaftmqClient } from "../../client/index.js";
import { intOption, stringOption, UsageError, type CliContext, type OptionSpec, type OptionValues } from "../command.js";
import { recordJson, recordLine } from "../format.js";

/** The options `consume` takes for group consumption (merged into its spec). */
export const GROUP_CONSUME_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  group: { type: "string", short: "g", value: "G", description: "consume as a member of consumer group G (partitions shared with its other members; follows until Ctrl-C)" },
  guarantee: { type: "string", value: "G", description: "with --group: at-least-once (default) or at-most-once" },
  "session-timeout-ms": { type: "string", value: "MS", description: "with --group: the member's session timeout (default 10000)" },
  "commit-interval-ms": { type: "string", value: "MS", description: "with --group, at-least-once: how often offsets are committed (default 1000)" },
};

export interface GroupConsumePlan {
  readonly group: string;
  readonly guarantee: DeliveryGuarantee;
  readonly sessionTimeoutMs: number;
  readonly commitIntervalMs: number;
  readonly startFrom: "earliest" | "latest";
  readonly max: number;
  readonly json: boolean;
}

/** The plan of a --group consume, or undefined without --group; UsageError for options that do not combine. */
export function groupConsumePlan(values: OptionValues): GroupConsumePlan | undefined {
  const group = stringOption(values, "group");
  if (group === undefined) {
    for (const name of ["guarantee", "session-timeout-ms", "commit-interval-ms"]) if (values[name] !== undefined) throw new UsageError(`--${name} needs --group`);
    return undefined;
  }
  if (values["partition"] !== undefined) throw new UsageError("--partition does not combine with --group: the group assigns partitions");
  const guarantee = stringOption(values, "guarantee") ?? "at-least-once";
  if (guarantee !== "at-least-once" && guarantee !== "at-most-once") throw new UsageError(`--guarantee must be at-least-once or at-most-once, got "${guarantee}"`);
  const from = stringOption(values, "from") ?? "earliest";
  if (from !== "earliest" && from !== "latest") throw new UsageError(`with --group, --from is where partitions without a committed offset start: earliest or latest, got "${from}"`);
  return {
    group,
    guarantee,
    sessionTimeoutMs: intOption(values, "session-timeout-ms", 10_000, 1_000, 300_000)!,
    commitIntervalMs: intOption(values, "commit-interval-ms", 1_000, 10)!,
    startFrom: from,
    max: intOption(values, "max", Number.POSITIVE_INFINITY, 1)!,
    json: values["json"] === true,
  };
}

export async function consumeInGroup(client: RaftmqClient, topic: string, plan: GroupConsumePlan, ctx: CliContext): Promise<number> {
  const consumer = client.consumer({
    group: plan.group,
    topics: [topic],
    guarantee: plan.guarantee,
    sessionTimeoutMs: plan.sessionTimeoutMs,
    autoCommitIntervalMs: plan.commitIntervalMs,
    startFrom: plan.startFrom,
    clientId: `raftmq-cli pid ${process.pid}`,
  });
  let printed = 0;
  try {
    for await (const record of consumer) {
      await writeLine(ctx.stdout, plan.json ? recordJson(topic, record) : recordLine(record));
      if (++printed >= plan.max) {
        consumer.acknowledge(record);
        break;
      }
    }
    await consumer.close();
  } catch (error) {
    // Ctrl-C closes the client under the loop: that is how consuming ends.
    if (!(ctx.signal.aborted && error instanceof ShuttingDownError)) throw error;
  }
  return 0;
}

function writeLine(stream: NodeJS.WritableStream, line: string): Promise<void> {
  if (stream.write(line + "\n")) return Promise.resolve();
  return new Promise((resolve) => stream.once("drain", resolve));
}

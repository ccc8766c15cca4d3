/** `raftmq group list|describe|reset`: consumer groups, their members, offsets and lag. */
import type { GroupDescription, ResetTarget } from "../../client/index.js";
import { EXIT_OK, intOption, println, requiredOption, stringOption, UsageError, withClient, type CommandSpec, type OptionValues } from "../command.js";
import { table } from "../format.js";

export const groupListCommand: CommandSpec = {
  path: ["group", "list"],
  summary: "List consumer groups.",
  options: {},
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    const groups = await client.listGroups();
    if (groups.length === 0) {
      println(ctx.stderr, "no consumer groups (a group appears when a consumer joins it: raftmq consume TOPIC --group G)");
      return EXIT_OK;
    }
    ctx.stdout.write(table([["GROUP", "COORDINATOR", "MEMBERS"], ...groups.map((g) => [g.group, g.coordinator > 0 ? g.coordinator : "unknown", g.members])]));
    return EXIT_OK;
  }),
};

export const groupDescribeCommand: CommandSpec = {
  path: ["group", "describe"],
  summary: "Show a consumer group: members, their partitions, committed offsets and lag.",
  args: "GROUP",
  positionalsMin: 1,
  positionalsMax: 1,
  description: "LAG is the high watermark minus the committed offset: records the group has not consumed yet.",
  options: { json: { type: "boolean", description: "print the description as JSON" } },
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    const d = await client.describeGroup(parsed.positionals[0]!);
    if (parsed.values["json"] === true) {
      println(ctx.stdout, JSON.stringify(d, null, 2));
      return EXIT_OK;
    }
    ctx.stdout.write(describeText(d));
    return EXIT_OK;
  }),
};

export const groupResetCommand: CommandSpec = {
  path: ["group", "reset"],
  summary: "Move a consumer group's committed offsets (the group must have no running consumers).",
  args: "GROUP",
  positionalsMin: 1,
  positionalsMax: 1,
  description:
    "Offsets are the next record the group consumes. --to earliest is the oldest retained record, latest skips\n" +
    "everything produced so far, an OFFSET is clamped to the retained range, and --to-timestamp MS is the first\n" +
    "record the broker accepted at or after that Unix time in ms.",
  options: {
    topic: { type: "string", short: "t", value: "TOPIC", description: "the topic whose offsets to reset (required)" },
    to: { type: "string", value: "WHERE", description: "earliest, latest or an offset" },
    "to-timestamp": { type: "string", value: "MS", description: "the first record at or after this Unix time in ms" },
    partition: { type: "string", short: "p", value: "P", multiple: true, description: "only these partitions (default: all)" },
  },
  usesClient: true,
  run: (parsed, ctx) => {
    const topic = requiredOption(parsed.values, "topic", groupResetCommand);
    const target = resetTarget(parsed.values);
    const partitions = partitionList(parsed.values);
    return withClient(parsed.values, ctx, async (client) => {
      const group = parsed.positionals[0]!;
      const offsets = await client.resetOffsets(group, topic, target, partitions);
      ctx.stdout.write(table([["TOPIC", "PARTITION", "OFFSET"], ...offsets.map((o) => [o.topic, o.partition, o.offset])]));
      println(ctx.stderr, `reset ${offsets.length} offset(s) of group ${group}`);
      return EXIT_OK;
    });
  },
};

function resetTarget(values: OptionValues): ResetTarget {
  const to = stringOption(values, "to");
  const ts = stringOption(values, "to-timestamp");
  if ((to === undefined) === (ts === undefined)) throw new UsageError("give exactly one of --to earliest|latest|OFFSET and --to-timestamp MS");
  if (ts !== undefined) return { timestampMs: intOption(values, "to-timestamp", undefined, 0)! };
  if (to === "earliest" || to === "latest") return to;
  if (/^\d+$/.test(to!) && Number.isSafeInteger(Number(to))) return { offset: Number(to) };
  throw new UsageError(`--to must be earliest, latest or an offset, got "${to}"`);
}

function partitionList(values: OptionValues): number[] | undefined {
  const raw = values["partition"];
  if (raw === undefined) return undefined;
  const list = (Array.isArray(raw) ? raw : [String(raw)]).flatMap((s) => s.split(","));
  return list.map((s) => {
    if (!/^\d+$/.test(s.trim())) throw new UsageError(`--partition must be a partition number, got "${s}"`);
    return Number(s.trim());
  });
}

function tps(list: readonly { topic: string; partition: number }[]): string {
  return list.length === 0 ? "-" : list.map((tp) => `${tp.topic}/${tp.partition}`).join(",");
}

/** The text form of `group describe`. */
export function describeText(d: GroupDescription): string {
  const lines = [`group ${d.group}: ${d.state}, generation ${d.generation}, coordinator node ${d.coordinator}, ${d.members.length} member(s)`];
  let out = lines.join("\n") + "\n";
  if (d.members.length > 0) {
    out += "\n" + table([
      ["MEMBER", "CLIENT", "OWNS", "TARGET", "LAST-HEARTBEAT"],
      ...d.members.map((m) => [m.memberId, m.clientId || "-", tps(m.owned), tps(m.target), `${m.sinceHeartbeatMs} ms ago`]),
    ]);
  }
  if (d.offsets.length > 0) {
    const dash = (n: number): string | number => (n < 0 ? "-" : n);
    out += "\n" + table([["TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "LAG"], ...d.offsets.map((o) => [o.topic, o.partition, dash(o.offset), dash(o.highWatermark), dash(o.lag)])]);
  }
  return out;
}

/** `raftmq topic create|list|describe|delete`. */
import type { TopicInfo } from "../../client/index.js";
import { EXIT_OK, intOption, println, withClient, type CommandSpec } from "../command.js";
import { table, topicTable } from "../format.js";

export const topicCreateCommand: CommandSpec = {
  path: ["topic", "create"],
  summary: "Create a topic.",
  args: "NAME",
  positionalsMin: 1,
  positionalsMax: 1,
  description: "NAME is 1-249 characters of letters, digits, '.', '_' and '-'.",
  options: {
    partitions: { type: "string", value: "P", description: "number of partitions, 1-10000 (default 1)" },
    replication: { type: "string", value: "R", description: "replicas per partition (default min(3, nodes))" },
    "max-record-bytes": { type: "string", value: "BYTES", description: "largest record accepted (default 1 MiB)" },
  },
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    const topic = await client.createTopic(parsed.positionals[0]!, {
      partitions: intOption(parsed.values, "partitions", 1, 1, 10_000)!,
      replicationFactor: intOption(parsed.values, "replication", 0, 1, 1_000)!,
      maxRecordBytes: intOption(parsed.values, "max-record-bytes", 0, 1, 2 ** 32 - 1)!,
    });
    println(ctx.stdout, `created topic ${topic.name}: ${topic.partitions.length} partition(s), replication ${topic.replicationFactor}`);
    return EXIT_OK;
  }),
};

export const topicListCommand: CommandSpec = {
  path: ["topic", "list"],
  summary: "List topics.",
  options: {},
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    const topics = (await client.listTopics()).sort((a, b) => a.name.localeCompare(b.name));
    if (topics.length === 0) {
      println(ctx.stderr, "no topics (create one with: raftmq topic create NAME)");
      return EXIT_OK;
    }
    ctx.stdout.write(table([["TOPIC", "PARTITIONS", "REPLICATION", "MAX-RECORD-BYTES"], ...topics.map(topicRow)]));
    return EXIT_OK;
  }),
};

export const topicDescribeCommand: CommandSpec = {
  path: ["topic", "describe"],
  summary: "Show a topic's partitions: leaders, replicas, in-sync replicas and offsets.",
  args: "NAME",
  positionalsMin: 1,
  positionalsMax: 1,
  description: "In-sync replicas and offsets are filled in by the nodes that lead or host each partition.",
  options: { json: { type: "boolean", description: "print the topic as JSON" } },
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    const topic = await client.describeTopic(parsed.positionals[0]!);
    if (parsed.values["json"] === true) {
      println(ctx.stdout, JSON.stringify(topic, null, 2));
      return EXIT_OK;
    }
    println(ctx.stdout, `topic ${topic.name} (id ${topic.id}): ${topic.partitions.length} partition(s), replication ${topic.replicationFactor}, max record ${topic.maxRecordBytes} bytes`);
    ctx.stdout.write(topicTable(topic));
    return EXIT_OK;
  }),
};

export const topicDeleteCommand: CommandSpec = {
  path: ["topic", "delete"],
  summary: "Delete a topic and all its records.",
  args: "NAME",
  positionalsMin: 1,
  positionalsMax: 1,
  options: {},
  usesClient: true,
  run: (parsed, ctx) => withClient(parsed.values, ctx, async (client) => {
    await client.deleteTopic(parsed.positionals[0]!);
    println(ctx.stdout, `deleted topic ${parsed.positionals[0]}`);
    return EXIT_OK;
  }),
};

function topicRow(t: TopicInfo): Array<string | number> {
  return [t.name, t.partitions.length, t.replicationFactor, t.maxRecordBytes];
}

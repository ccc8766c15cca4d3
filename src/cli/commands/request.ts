/**
 * `raftmq request TOPIC BODY`: sends BODY as a request (client.request(): a correlation id and a
 * reply-to naming this process's inbox) and prints the first reply's body, or fails with TIMEOUT
 * after --timeout-ms. Responders are consumers of TOPIC that answer with client.reply().
 */
import { EXIT_OK, intOption, stringOption, withClient, type CommandSpec } from "../command.js";
import { printable, recordJson } from "../format.js";

export const requestCommand: CommandSpec = {
  path: ["request"],
  summary: "Send a request and print the reply.",
  args: "TOPIC BODY",
  positionalsMin: 2,
  positionalsMax: 2,
  description: "Waits for the reply up to --timeout-ms (default 15000). The request expires (TTL) when the wait ends.",
  options: {
    key: { type: "string", short: "k", value: "KEY", description: "request key (routes it to the key's partition)" },
    "content-type": { type: "string", value: "TYPE", description: "MIME type of the body" },
    "reply-topic": { type: "string", value: "TOPIC", description: "the topic replies travel through (default raftmq.replies, created on first use)" },
    json: { type: "boolean", description: "print the reply as a JSON object" },
  },
  usesClient: true,
  run: (parsed, ctx) => {
    const timeoutMs = Math.min(intOption(parsed.values, "timeout-ms", 15_000, 1)!, 300_000);
    return withClient(parsed.values, ctx, async (client) => {
      const [topic, body] = parsed.positionals as [string, string];
      const key = stringOption(parsed.values, "key");
      const contentType = stringOption(parsed.values, "content-type");
      const replyTopic = stringOption(parsed.values, "reply-topic");
      const reply = await client.request(topic, { body, ...(key === undefined ? {} : { key }), ...(contentType === undefined ? {} : { contentType }) }, {
        timeoutMs,
        ...(replyTopic === undefined ? {} : { replyTopic }),
      });
      ctx.stdout.write((parsed.values["json"] === true ? recordJson(reply.topic, reply) : printable(reply.body)) + "\n");
      return EXIT_OK;
    });
  },
};

/**
 * Client-side checks of consumers and request-reply that need no cluster: option validation
 * (before any I/O) and where a reply goes. Behaviour against real clusters is in
 * src/server/consumers.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, InvalidArgumentError, type ConsumedRecord } from "./index.js";
import { replyDestination } from "./request-reply.js";

test("consumer options are validated before any I/O, naming the option", async () => {
  const client = connect({ brokers: ["127.0.0.1:1"] });
  try {
    const bad: [Parameters<typeof client.consumer>[0], RegExp][] = [
      [{ group: "no spaces", topics: ["t"] }, /group "no spaces" is not valid/],
      [{ group: "g", topics: [] }, /topics must name 1 to 100 topics/],
      [{ group: "g", topics: ["t"], guarantee: "exactly-once" as never }, /guarantee must be/],
      [{ group: "g", topics: ["t"], prefetchRecords: 0 }, /prefetchRecords must be an integer from 1/],
      [{ group: "g", topics: ["t"], prefetchBytes: 2.5 }, /prefetchBytes must be an integer/],
      [{ group: "g", topics: ["t"], sessionTimeoutMs: 999 }, /sessionTimeoutMs must be an integer from 1000 to 300000/],
      [{ group: "g", topics: ["t"], autoCommitIntervalMs: 1 }, /autoCommitIntervalMs must be an integer from 10/],
      [{ group: "g", topics: ["t"], startFrom: "middle" as never }, /startFrom must be "earliest" or "latest"/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => client.consumer(options), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(options));
    }
    await assert.rejects(client.request("t", { body: "x" }, { timeoutMs: 0 }), /timeoutMs must be from 1/);
  } finally {
    await client.close();
  }
});

test("a reply goes to the request's reply-to: an inbox partition, or a plain topic", () => {
  const request = (replyTo: string): ConsumedRecord => ({ replyTo, topic: "rpc", partition: 1, offset: 7 }) as ConsumedRecord;
  assert.deepEqual(replyDestination(request("raftmq.replies/3")), { topic: "raftmq.replies", partition: 3 });
  assert.deepEqual(replyDestination(request("answers")), { topic: "answers" });
  assert.throws(() => replyDestination(request("")), /rpc\/1:7 has no reply-to: it was not sent with request\(\)/);
});

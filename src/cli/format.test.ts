import { test } from "node:test";
import assert from "node:assert/strict";
import { formatLogLine } from "./log-format.js";
import { printable, recordJson, recordLine, table } from "./format.js";

test("a pino line becomes one readable line prefixed by the node", () => {
  const time = new Date(2024, 0, 2, 3, 4, 5, 67).getTime();
  const line = JSON.stringify({ level: 30, time, node: 2, component: "controller", group: 0, term: 3, msg: "became leader", note: "two words", peers: [1, 3] });
  assert.equal(formatLogLine(2, line), 'n2 03:04:05.067 INFO  [controller] became leader group=0 term=3 note="two words" peers=[1,3]');
  assert.equal(formatLogLine(1, JSON.stringify({ level: 50, time, msg: "failed" })), "n1 03:04:05.067 ERROR failed");
  assert.equal(formatLogLine(3, "Error: boom"), "n3 Error: boom");
  assert.equal(formatLogLine(3, "{not json"), "n3 {not json");
  assert.match(formatLogLine(1, JSON.stringify({ level: 40, time, msg: "w" }), { color: true }), /\u001b\[33mWARN \u001b\[0m/);
});

test("records print on one line; bytes that are not UTF-8 as base64", () => {
  assert.equal(printable(Buffer.from("a\tb\\c\nd")), "a\\tb\\\\c\\nd");
  assert.equal(printable(Buffer.from([0xc3])), "base64:ww==");
  const r = {
    partition: 1, offset: 9, key: Buffer.from("k"), headers: [{ key: "h", value: Buffer.from("v") }], body: Buffer.from("b"), id: "i",
    producerTimestampMs: 0, brokerTimestampMs: 0, correlationId: "", replyTo: "", contentType: "", ttlMs: 0, priority: 0, expired: false,
  };
  assert.equal(recordLine(r), "1:9 key=k h=v | b");
  assert.equal(recordLine({ ...r, key: null, headers: [] }), "1:9 | b");
  const json = JSON.parse(recordJson("t", { ...r, correlationId: "c1", replyTo: "inbox", contentType: "text/plain", ttlMs: 500, priority: 7 })) as Record<string, unknown>;
  assert.deepEqual([json["correlationId"], json["replyTo"], json["contentType"], json["ttlMs"], json["priority"], json["expired"]], ["c1", "inbox", "text/plain", 500, 7, false]);
});

test("tables align columns and trim trailing space", () => {
  assert.equal(table([["A", "LONG"], ["xyz", 1]]), "A    LONG\nxyz  1\n");
});

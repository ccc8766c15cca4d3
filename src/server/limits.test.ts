/**
 * Relations between the limits of different layers, as a node wires them (server/node.ts uses the
 * default transport limits): whatever the broker accepts must be storable and replicable, or a
 * request that passed validation leaves a partition stuck.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GroupMessage } from "../multiraft/ports.js";
import { message } from "../raft/index.js";
import { DEFAULT_TRANSPORT_LIMITS } from "../transport/limits.js";
import { frameOverheadBytes, itemBytesMax } from "../transport/codec.js";
import { BATCH_BYTES_MAX } from "../broker/broker.js";
import { BATCH_HEADER_BYTES } from "../format/index.js";
import { DEFAULT_MAX_RECORD_BYTES, RECORD_BYTES_MAX_LIMIT } from "../controller/frontend.js";

/** The append message that carries one entry of `dataBytes` to a follower (Raft sends at least one entry). */
function appendOf(dataBytes: number): GroupMessage {
  const entry = { term: 1, index: 2, type: "normal" as const, data: new Uint8Array(dataBytes) };
  return { group: 1000, message: message({ type: "app", from: 1, to: 2, term: 1, index: 1, logTerm: 1, entries: [entry], commit: 1 }) };
}

const frameBudget = DEFAULT_TRANSPORT_LIMITS.frameBytesMax - frameOverheadBytes("raftmq");

test("the largest produce request the broker accepts fits one peer frame, so followers can replicate it", () => {
  // The transport drops (and reports unreachable) any message larger than a frame; Raft then
  // re-sends the same entry forever and the partition stops committing.
  const bytes = itemBytesMax(appendOf(BATCH_BYTES_MAX)); // BATCH_BYTES_MAX bounds the whole stored batch, header included
  assert.ok(
    bytes <= frameBudget,
    `a batch of BATCH_BYTES_MAX (${BATCH_BYTES_MAX}) makes an append of ${bytes} bytes; a peer frame carries at most ${frameBudget}`,
  );
});

test("four records at the default max record bytes (one produce request) fits one peer frame", () => {
  const records = 4;
  const bytes = itemBytesMax(appendOf(BATCH_HEADER_BYTES + records * DEFAULT_MAX_RECORD_BYTES));
  assert.ok(bytes <= frameBudget, `${records} records of ${DEFAULT_MAX_RECORD_BYTES} bytes make an append of ${bytes} bytes; a frame carries at most ${frameBudget}`);
});

test("a topic may not accept records larger than one produce request can carry", () => {
  assert.ok(
    RECORD_BYTES_MAX_LIMIT <= BATCH_BYTES_MAX,
    `topics may set max record bytes up to ${RECORD_BYTES_MAX_LIMIT}, but a produce request carries at most ${BATCH_BYTES_MAX}: such records are accepted by the topic and rejected by every produce`,
  );
});

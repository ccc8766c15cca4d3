/**
 * Error → gRPC status: every ErrorCode has a status (the list below is checked against the type
 * at compile time), trailers carry the code and the leader's id and address, and anything that
 * is not a BrokerError becomes INTERNAL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Metadata, status } from "@grpc/grpc-js";
import { BrokerError, NotLeaderError, ProposalDroppedError, TimeoutError, type ErrorCode } from "../lib/errors.js";
import { STATUS_OF, TRAILER_CODE, TRAILER_LEADER_ADDRESS, TRAILER_LEADER_ID, toServiceError } from "./status.js";

/** Every error code. The two type checks below fail to compile if this list and ErrorCode differ. */
const ALL_CODES = [
  "NOT_LEADER",
  "PROPOSAL_DROPPED",
  "TIMEOUT",
  "OVERLOADED",
  "UNKNOWN_TOPIC",
  "TOPIC_EXISTS",
  "UNKNOWN_PARTITION",
  "INVALID_ARGUMENT",
  "RECORD_TOO_LARGE",
  "OFFSET_OUT_OF_RANGE",
  "UNAVAILABLE",
  "SHUTTING_DOWN",
  "OUT_OF_ORDER_SEQUENCE",
  "PRODUCER_FENCED",
  "UNKNOWN_MEMBER",
  "GROUP_NOT_EMPTY",
] as const satisfies readonly ErrorCode[];
type MissingFromList = Exclude<ErrorCode, (typeof ALL_CODES)[number]>;
const listIsComplete: [MissingFromList] extends [never] ? true : MissingFromList = true;
void listIsComplete;

const trailer = (md: Metadata | undefined, key: string): string[] => (md?.get(key) ?? []).map(String);

test("every error code maps to a real, non-OK, non-INTERNAL status", () => {
  assert.deepEqual(Object.keys(STATUS_OF).sort(), [...ALL_CODES].sort());
  const valid = new Set(Object.values(status).filter((v) => typeof v === "number"));
  for (const code of ALL_CODES) {
    const s = STATUS_OF[code];
    assert.ok(valid.has(s), `${code} → ${s} is not a gRPC status`);
    assert.notEqual(s, status.OK, code);
    assert.notEqual(s, status.INTERNAL, `${code} must not look like a server bug`);
    assert.notEqual(s, status.UNKNOWN, code);
  }
});

test("codes map to the statuses a generic gRPC client acts on correctly", () => {
  const expected: Partial<Record<ErrorCode, status>> = {
    UNKNOWN_TOPIC: status.NOT_FOUND,
    UNKNOWN_PARTITION: status.NOT_FOUND,
    TOPIC_EXISTS: status.ALREADY_EXISTS,
    INVALID_ARGUMENT: status.INVALID_ARGUMENT,
    OUT_OF_ORDER_SEQUENCE: status.ABORTED,
    PRODUCER_FENCED: status.FAILED_PRECONDITION,
    UNKNOWN_MEMBER: status.FAILED_PRECONDITION,
    GROUP_NOT_EMPTY: status.FAILED_PRECONDITION,
    RECORD_TOO_LARGE: status.INVALID_ARGUMENT,
    OFFSET_OUT_OF_RANGE: status.OUT_OF_RANGE,
    TIMEOUT: status.DEADLINE_EXCEEDED,
    OVERLOADED: status.RESOURCE_EXHAUSTED,
    UNAVAILABLE: status.UNAVAILABLE,
    SHUTTING_DOWN: status.UNAVAILABLE,
  };
  for (const [code, s] of Object.entries(expected)) assert.equal(STATUS_OF[code as ErrorCode], s, code);
});

test("toServiceError: every code travels as its status, the message as details, the code as a trailer", () => {
  for (const code of ALL_CODES) {
    const e = new BrokerError(code, `something about ${code}`);
    const se = toServiceError(e);
    assert.equal(se.code, STATUS_OF[code], code);
    assert.equal(se.details, `something about ${code}`);
    assert.deepEqual(trailer(se.metadata, TRAILER_CODE), [code]);
    assert.deepEqual(trailer(se.metadata, TRAILER_LEADER_ID), []);
    assert.deepEqual(trailer(se.metadata, TRAILER_LEADER_ADDRESS), []);
  }
});

test("NOT_LEADER carries the leader's id and address in trailers", () => {
  const se = toServiceError(new NotLeaderError(1001, 2, "led elsewhere", "10.0.0.2:7000"));
  assert.equal(se.code, STATUS_OF.NOT_LEADER);
  assert.deepEqual(trailer(se.metadata, TRAILER_CODE), ["NOT_LEADER"]);
  assert.deepEqual(trailer(se.metadata, TRAILER_LEADER_ID), ["2"]);
  assert.deepEqual(trailer(se.metadata, TRAILER_LEADER_ADDRESS), ["10.0.0.2:7000"]);
  assert.match(se.details!, /the leader is node 2 at 10\.0\.0\.2:7000/);
});

test("NOT_LEADER with a known leader but no address carries only the id; with no leader, neither", () => {
  const idOnly = toServiceError(new NotLeaderError(1001, 3, "led elsewhere"));
  assert.deepEqual(trailer(idOnly.metadata, TRAILER_LEADER_ID), ["3"]);
  assert.deepEqual(trailer(idOnly.metadata, TRAILER_LEADER_ADDRESS), []);
  const none = toServiceError(new NotLeaderError(1001, 0, "election", "ignored:1"));
  assert.deepEqual(trailer(none.metadata, TRAILER_CODE), ["NOT_LEADER"]);
  assert.deepEqual(trailer(none.metadata, TRAILER_LEADER_ID), [], "leader 0 means unknown: no id trailer");
});

test("subclasses map by their code", () => {
  assert.equal(toServiceError(new ProposalDroppedError(5, "leader changed")).code, STATUS_OF.PROPOSAL_DROPPED);
  assert.equal(toServiceError(new TimeoutError("produce", 10)).code, status.DEADLINE_EXCEEDED);
});

test("anything that is not a BrokerError becomes INTERNAL, with an INTERNAL code trailer and no stack", () => {
  const bug = new TypeError("cannot read properties of undefined");
  for (const thrown of [bug, new RangeError("x"), "a string", undefined, { weird: true }]) {
    const se = toServiceError(thrown);
    assert.equal(se.code, status.INTERNAL);
    assert.deepEqual(trailer(se.metadata, TRAILER_CODE), ["INTERNAL"]);
    assert.deepEqual(trailer(se.metadata, TRAILER_LEADER_ID), []);
    assert.match(se.details!, /^internal error/);
    assert.ok(!se.details!.includes("    at "), `a stack trace leaked: ${se.details}`);
  }
});

test("trailer keys are valid gRPC metadata keys (lower case ASCII, not binary)", () => {
  for (const key of [TRAILER_CODE, TRAILER_LEADER_ID, TRAILER_LEADER_ADDRESS]) {
    assert.match(key, /^[a-z0-9._-]+$/);
    assert.ok(!key.endsWith("-bin"));
  }
});

/**
 * How operating errors travel over gRPC: one exhaustive table from error code to status, and
 * the machine-readable parts (code, leader id and address) in trailers, which the client turns
 * back into the same error classes.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BrokerError, type ErrorCode } from "../lib/errors.js";

export const TRAILER_CODE = "raftmq-error-code";
export const TRAILER_LEADER_ID = "raftmq-leader-id";
export const TRAILER_LEADER_ADDRESS = "raftmq-leader-address";

/** The compiler checks that every error code has a status. */
export const STATUS_OF: Record<ErrorCode, status> = {
  NOT_LEADER: status.FAILED_PRECONDITION,
  PROPOSAL_DROPPED: status.ABORTED,
  TIMEOUT: status.DEADLINE_EXCEEDED,
  OVERLOADED: status.RESOURCE_EXHAUSTED,
  UNKNOWN_TOPIC: status.NOT_FOUND,
  TOPIC_EXISTS: status.ALREADY_EXISTS,
  UNKNOWN_PARTITION: status.NOT_FOUND,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  RECORD_TOO_LARGE: status.INVALID_ARGUMENT,
  OFFSET_OUT_OF_RANGE: status.OUT_OF_RANGE,
  UNAVAILABLE: status.UNAVAILABLE,
  SHUTTING_DOWN: status.UNAVAILABLE,
  // "A sequencer check failure" is gRPC's own example of ABORTED.
  OUT_OF_ORDER_SEQUENCE: status.ABORTED,
  PRODUCER_FENCED: status.FAILED_PRECONDITION,
  UNKNOWN_MEMBER: status.FAILED_PRECONDITION,
  GROUP_NOT_EMPTY: status.FAILED_PRECONDITION,
};

/** Turns any thrown value into a gRPC error; unexpected ones become INTERNAL without details leaking. */
export function toServiceError(e: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (e instanceof BrokerError) {
    metadata.set(TRAILER_CODE, e.code);
    if (e.leaderId !== undefined) metadata.set(TRAILER_LEADER_ID, String(e.leaderId));
    if (e.leaderAddress !== undefined) metadata.set(TRAILER_LEADER_ADDRESS, e.leaderAddress);
    return { code: STATUS_OF[e.code], details: e.message, metadata };
  }
  metadata.set(TRAILER_CODE, "INTERNAL");
  return { code: status.INTERNAL, details: "internal error; the node logged the details", metadata };
}

/**
 * Errors as the client surfaces them. A broker answers a failure with a gRPC status and the
 * trailer `raftmq-error-code`; {@link errorFromGrpc} turns that back into the same BrokerError
 * subclass the server threw (lib/errors.ts), or into one of the classes below for codes that
 * lib/errors.ts has no class for. The server's message is kept as the error's message.
 *
 * Failures that carry no raftmq code are mapped by gRPC status: UNAVAILABLE (connection refused
 * or reset) becomes {@link UnavailableError}, DEADLINE_EXCEEDED and the client's own per-attempt
 * timeout become TimeoutError; anything else (INTERNAL, UNIMPLEMENTED, an unknown code from a
 * newer server) becomes {@link RpcError}, which is not a BrokerError.
 *
 * The lib classes that take a Raft group id (NotLeaderError, ProposalDroppedError) get group 0 on
 * the client: group ids are internal to a node and do not travel.
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import {
  BrokerError,
  NotLeaderError,
  ProposalDroppedError,
  TimeoutError,
  type BrokerErrorOptions,
  type ErrorCode,
} from "../lib/errors.js";
import type { NodeId } from "../lib/ids.js";

/** Trailer carrying the stable error code. */
export const TRAILER_CODE = "raftmq-error-code";
/** Trailer carrying the leader's node id on NOT_LEADER (absent if unknown). */
export const TRAILER_LEADER_ID = "raftmq-leader-id";
/** Trailer carrying the leader's host:port on NOT_LEADER (absent if unknown). */
export const TRAILER_LEADER_ADDRESS = "raftmq-leader-address";

/** The broker is overloaded; retry later. */
export class OverloadedError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("OVERLOADED", message, options);
    this.name = "OverloadedError";
  }
}

/** The topic does not exist. */
export class UnknownTopicError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("UNKNOWN_TOPIC", message, options);
    this.name = "UnknownTopicError";
  }
}

/** A topic of that name exists already. */
export class TopicExistsError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("TOPIC_EXISTS", message, options);
    this.name = "TopicExistsError";
  }
}

/** The topic has no partition of that number. */
export class UnknownPartitionError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("UNKNOWN_PARTITION", message, options);
    this.name = "UnknownPartitionError";
  }
}

/** The request (or a client option) is malformed; the message names the field. */
export class InvalidArgumentError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("INVALID_ARGUMENT", message, options);
    this.name = "InvalidArgumentError";
  }
}

/** A record or batch exceeds the topic's or the broker's size limit. */
export class RecordTooLargeError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("RECORD_TOO_LARGE", message, options);
    this.name = "RecordTooLargeError";
  }
}

/** A fetch offset is below the log start or above the high watermark. */
export class OffsetOutOfRangeError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("OFFSET_OUT_OF_RANGE", message, options);
    this.name = "OffsetOutOfRangeError";
  }
}

/** No broker could be reached, or the broker cannot serve the request right now; retry later. */
export class UnavailableError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("UNAVAILABLE", message, options);
    this.name = "UnavailableError";
  }
}

/** The broker (or this client) is shutting down. */
export class ShuttingDownError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("SHUTTING_DOWN", message, options);
    this.name = "ShuttingDownError";
  }
}

/**
 * An idempotent producer's batch did not follow its previous one on that partition (a sequence
 * gap or reuse): it was not written. The client's producer starts a new session and fails the batch.
 */
export class OutOfOrderSequenceError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("OUT_OF_ORDER_SEQUENCE", message, options);
    this.name = "OutOfOrderSequenceError";
  }
}

/** A newer session of the same named producer exists: this one is a zombie and may not write. */
export class ProducerFencedError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("PRODUCER_FENCED", message, options);
    this.name = "ProducerFencedError";
  }
}

/** The group coordinator does not know this member as the partition's owner: it must heartbeat (rejoin) first. */
export class UnknownMemberError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("UNKNOWN_MEMBER", message, options);
    this.name = "UnknownMemberError";
  }
}

/** The consumer group still has live members; stop them before resetting its offsets. */
export class GroupNotEmptyError extends BrokerError {
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super("GROUP_NOT_EMPTY", message, options);
    this.name = "GroupNotEmptyError";
  }
}

/** A gRPC failure that is not a raftmq operating error (INTERNAL, UNIMPLEMENTED, ...). */
export class RpcError extends Error {
  /**
   * @param code the `raftmq-error-code` trailer if present (for example "INTERNAL"), else the
   *   gRPC status name.
   */
  constructor(readonly code: string, readonly grpcStatus: number, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "RpcError";
  }
}

/** Where a failed call went, to build messages that say which broker failed. */
export interface CallContext {
  readonly address: string;
  readonly method: string;
  /** Set when the client's own per-attempt timer cancelled the call. */
  readonly timeoutMs?: number;
}

type Decoded = { code: ErrorCode; message: string; options: BrokerErrorOptions };

/** One constructor per code, so the compiler catches a code without a class. */
const BUILDERS: Record<ErrorCode, (d: Decoded) => BrokerError> = {
  NOT_LEADER: (d) => withServerMessage(new NotLeaderError(0, d.options.leaderId ?? 0, "redirect", d.options.leaderAddress), d),
  PROPOSAL_DROPPED: (d) => withServerMessage(new ProposalDroppedError(0, d.message), d),
  TIMEOUT: (d) => withServerMessage(new TimeoutError("the request", 0), d),
  OVERLOADED: (d) => new OverloadedError(d.message, d.options),
  UNKNOWN_TOPIC: (d) => new UnknownTopicError(d.message, d.options),
  TOPIC_EXISTS: (d) => new TopicExistsError(d.message, d.options),
  UNKNOWN_PARTITION: (d) => new UnknownPartitionError(d.message, d.options),
  INVALID_ARGUMENT: (d) => new InvalidArgumentError(d.message, d.options),
  RECORD_TOO_LARGE: (d) => new RecordTooLargeError(d.message, d.options),
  OFFSET_OUT_OF_RANGE: (d) => new OffsetOutOfRangeError(d.message, d.options),
  UNAVAILABLE: (d) => new UnavailableError(d.message, d.options),
  SHUTTING_DOWN: (d) => new ShuttingDownError(d.message, d.options),
  OUT_OF_ORDER_SEQUENCE: (d) => new OutOfOrderSequenceError(d.message, d.options),
  PRODUCER_FENCED: (d) => new ProducerFencedError(d.message, d.options),
  UNKNOWN_MEMBER: (d) => new UnknownMemberError(d.message, d.options),
  GROUP_NOT_EMPTY: (d) => new GroupNotEmptyError(d.message, d.options),
};

/** Keeps the server's message and the gRPC error as cause on a lib class that builds its own message. */
function withServerMessage<E extends BrokerError>(error: E, d: Decoded): E {
  error.message = d.message;
  if (d.options.cause !== undefined) Object.defineProperty(error, "cause", { value: d.options.cause, configurable: true, writable: true });
  return error;
}

/** Whether `code` is one of lib's error codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(BUILDERS, code);
}

/** Builds the BrokerError subclass for `code`, as if the broker had answered with it. */
export function brokerError(code: ErrorCode, message: string, options: BrokerErrorOptions = {}): BrokerError {
  return BUILDERS[code]({ code, message, options });
}

/** Turns a failed gRPC call into the error the client surfaces (see the module comment). */
export function errorFromGrpc(err: ServiceError, ctx: CallContext): Error {
  const code = trailer(err, TRAILER_CODE);
  const message = err.details || err.message;
  if (code !== undefined && isErrorCode(code)) {
    return brokerError(code, message, { cause: err, ...leaderHint(err) });
  }
  if (code !== undefined) return new RpcError(code, err.code, `${ctx.method} on ${ctx.address} failed (${code}): ${message}`, { cause: err });
  return errorFromStatus(err, ctx, message);
}

function errorFromStatus(err: ServiceError, ctx: CallContext, message: string): Error {
  if (err.code === status.CANCELLED && ctx.timeoutMs !== undefined) {
    return withServerMessage(new TimeoutError(`${ctx.method} on ${ctx.address}`, ctx.timeoutMs), {
      code: "TIMEOUT",
      message: `${ctx.method} on ${ctx.address} did not answer within ${ctx.timeoutMs} ms; its outcome is unknown`,
      options: { cause: err },
    });
  }
  if (err.code === status.DEADLINE_EXCEEDED) {
    return brokerError("TIMEOUT", `${ctx.method} on ${ctx.address} timed out (${message}); its outcome is unknown`, { cause: err });
  }
  if (err.code === status.UNAVAILABLE) {
    return new UnavailableError(`broker ${ctx.address} is unreachable (${connectionProblem(message)})`, { cause: err });
  }
  const name = status[err.code] ?? String(err.code);
  return new RpcError(name, err.code, `${ctx.method} on ${ctx.address} failed with gRPC status ${name}: ${message}`, { cause: err });
}

/** The useful part of grpc-js's "No connection established. Last error: Error: connect ECONNREFUSED ...". */
function connectionProblem(details: string): string {
  const m = /Last error: (?:Error: )?(.*?)\.?\s*(?:Resolution note:.*)?$/s.exec(details);
  return (m?.[1] ?? details).trim() || details;
}

function leaderHint(err: ServiceError): { leaderId?: NodeId; leaderAddress?: string } {
  const id = Number(trailer(err, TRAILER_LEADER_ID));
  const address = trailer(err, TRAILER_LEADER_ADDRESS);
  const hint: { leaderId?: NodeId; leaderAddress?: string } = {};
  if (Number.isInteger(id) && id > 0) hint.leaderId = id;
  if (address !== undefined && address !== "") hint.leaderAddress = address;
  return hint;
}

function trailer(err: ServiceError, name: string): string | undefined {
  const value = err.metadata?.get(name)[0];
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.toString("utf8");
}

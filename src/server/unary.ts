/** The wrapper every unary gRPC handler goes through: shutdown refusal, error mapping, logging. */
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { BrokerError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { toServiceError } from "./status.js";

export interface UnaryDeps {
  /** Rejects requests while the node shuts down. */
  readonly accepting: () => boolean;
  readonly log: Logger;
}

/**
 * Wraps an async handler so that every outcome is answered and every error mapped to a status;
 * unexpected errors are logged here and reach the client without details.
 */
export function unary<Req, Res>(deps: UnaryDeps, fn: (req: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    if (!deps.accepting()) {
      callback(toServiceError(new BrokerError("SHUTTING_DOWN", "this node is shutting down; retry on another node")) as never);
      return;
    }
    fn(call.request).then(
      (res) => callback(null, res),
      (e: unknown) => {
        if (!(e instanceof BrokerError)) deps.log.error({ err: e instanceof Error ? e.stack : String(e) }, "request failed with an internal error");
        callback(toServiceError(e) as never);
      },
    );
  };
}

/** The node's gRPC server, with the HTTP/2 settings raftmq needs (see src/lib/flow-control.ts). */
import type { Settings } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { STREAM_WINDOW_BYTES } from "../lib/flow-control.js";

/**
 * A gRPC server whose HTTP/2 streams open with a window of STREAM_WINDOW_BYTES, so that clients
 * and peers send large batches without waiting for window grants. grpc-js has no server option for
 * it: it hands its `commonServerOptions` to http2.createServer when it binds, and this sets their
 * `settings` before that. A grpc-js without that field fails here, at start-up, and in
 * grpc-server.test.ts, rather than silently running with the small window.
 */
export function createGrpcServer(options: grpc.ServerOptions): grpc.Server {
  const server = new grpc.Server(options);
  const internals = server as unknown as { commonServerOptions?: { settings?: Settings } };
  const common = internals.commonServerOptions;
  if (common === undefined) throw new Error("this @grpc/grpc-js has no commonServerOptions: the HTTP/2 window of the server cannot be set (see src/server/grpc-server.ts)");
  common.settings = { ...common.settings, initialWindowSize: STREAM_WINDOW_BYTES };
  return server;
}

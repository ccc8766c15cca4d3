import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Settings } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { STREAM_WINDOW_BYTES } from "../lib/flow-control.js";
import { createGrpcServer } from "./grpc-server.js";

/** The HTTP/2 settings a server sends to a client that connects to it. */
async function settingsOf(server: grpc.Server): Promise<Settings> {
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<Settings>((resolve, reject) => {
      session.once("remoteSettings", resolve);
      session.once("error", reject);
    });
  } finally {
    session.close();
    server.forceShutdown();
  }
}

test("createGrpcServer: streams open with raftmq's window, a plain grpc-js server's with HTTP/2's 64 KiB", async () => {
  assert.equal((await settingsOf(createGrpcServer({}))).initialWindowSize, STREAM_WINDOW_BYTES);
  assert.equal((await settingsOf(new grpc.Server())).initialWindowSize, 65_535);
});

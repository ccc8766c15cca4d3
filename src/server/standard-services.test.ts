/**
 * Standard gRPC tooling works against a node: the health checking service answers SERVING and
 * server reflection lists the broker API (what grpcurl and grpc_health_probe rely on).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { startNode } from "./node.js";

const require = createRequire(import.meta.url);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function loadService(protoPath: string, includeDirs: string[], path: string[]): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(protoPath, { includeDirs, keepCase: true, defaults: true, enums: String });
  let obj = grpc.loadPackageDefinition(def) as unknown as Record<string, unknown>;
  for (const p of path) obj = obj[p] as Record<string, unknown>;
  return obj as unknown as grpc.ServiceClientConstructor;
}

test("a node serves grpc.health.v1 and server reflection listing the broker API", { timeout: 30_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "raftmq-std-"));
  const address = `127.0.0.1:${await freePort()}`;
  const node = await startNode({ id: 1, listen: address, peers: new Map([[1, address]]), dataDir, logLevel: "warn" });
  t.after(async () => {
    await node.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const healthProto = require.resolve("grpc-health-check/proto/health/v1/health.proto");
  const Health = loadService(healthProto, [], ["grpc", "health", "v1", "Health"]);
  const health = new Health(address, grpc.credentials.createInsecure());
  t.after(() => health.close());
  const status = await new Promise<{ status: string }>((resolve, reject) =>
    (health as unknown as { Check: (req: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service: "" }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  assert.equal(status.status, "SERVING");

  const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const Reflection = loadService(reflectionProto, [], ["grpc", "reflection", "v1", "ServerReflection"]);
  const reflection = new Reflection(address, grpc.credentials.createInsecure());
  t.after(() => reflection.close());
  const services = await new Promise<string[]>((resolve, reject) => {
    const call = (reflection as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }> }).ServerReflectionInfo();
    call.on("data", (res) => {
      resolve((res.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
      call.end();
    });
    call.on("error", reject);
    call.write({ list_services: "" });
  });
  assert.ok(services.includes("raftmq.broker.v1.Broker"), `reflection lists ${services.join(", ")}`);
});

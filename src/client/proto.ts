/**
 * Loads protos/broker.proto once, resolved relative to this module: the compiled file sits in
 * dist/src/client/, so the protos are three folders up (dist/src/client → repository root).
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { PROTO_LOADER_OPTIONS } from "./wire.js";

/** Absolute path of protos/broker.proto. */
export const BROKER_PROTO_PATH = fileURLToPath(new URL("../../../protos/broker.proto", import.meta.url));

let loaded: grpc.ServiceClientConstructor | undefined;

/** The generated client constructor of `raftmq.broker.v1.Broker` (its `.service` is the service definition). */
export function brokerClientConstructor(): grpc.ServiceClientConstructor {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync(BROKER_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      raftmq: { broker: { v1: { Broker: grpc.ServiceClientConstructor } } };
    };
    loaded = pkg.raftmq.broker.v1.Broker;
  }
  return loaded;
}

/** The Broker service definition, for servers (the fake one in testing/). */
export function brokerServiceDefinition(): grpc.ServiceDefinition {
  return brokerClientConstructor().service;
}

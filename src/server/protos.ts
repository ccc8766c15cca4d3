/** Loads protos/broker.proto for the server (service definition and the descriptor for reflection). */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** protos/ from dist/src/server/ (compiled) — three levels up, then protos/. */
export const PROTOS_DIR = fileURLToPath(new URL("../../../protos/", import.meta.url));

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface BrokerPackage {
  readonly service: grpc.ServiceDefinition;
  readonly definition: protoLoader.PackageDefinition;
}

export function loadBrokerPackage(): BrokerPackage {
  const definition = protoLoader.loadSync(`${PROTOS_DIR}broker.proto`, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { raftmq: { broker: { v1: { Broker: grpc.ServiceClientConstructor } } } };
  return { service: pkg.raftmq.broker.v1.Broker.service, definition };
}

export interface ConsumerPackage {
  /** raftmq.consumer.v1.Groups: the group coordinator's API. */
  readonly groups: grpc.ServiceDefinition;
  /** raftmq.consumer.v1.Subscriptions: streaming consumption on partition leaders. */
  readonly subscriptions: grpc.ServiceDefinition;
  readonly definition: protoLoader.PackageDefinition;
}

/** Loads protos/consumer.proto (which imports broker.proto for its Record). */
export function loadConsumerPackage(): ConsumerPackage {
  const definition = protoLoader.loadSync(`${PROTOS_DIR}consumer.proto`, { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTOS_DIR] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    raftmq: { consumer: { v1: { Groups: grpc.ServiceClientConstructor; Subscriptions: grpc.ServiceClientConstructor } } };
  };
  return { groups: pkg.raftmq.consumer.v1.Groups.service, subscriptions: pkg.raftmq.consumer.v1.Subscriptions.service, definition };
}

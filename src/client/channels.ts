/**
 * One gRPC client (and so one channel) per broker address, created on first use and reused for
 * every later call to that address. Calls are unary with a per-attempt timeout driven by the
 * injected Clock (the call is cancelled when it fires), and failures come back as the errors of
 * errors.ts. close() cancels the calls in flight and closes every channel.
 */
import * as grpc from "@grpc/grpc-js";
import type { Clock } from "../lib/clock.js";
import { STREAM_WINDOW_BYTES } from "../lib/flow-control.js";
import { errorFromGrpc, ShuttingDownError } from "./errors.js";
import { brokerClientConstructor } from "./proto.js";
import type { BrokerMethod, BrokerMethods } from "./wire.js";

export interface ChannelPoolOptions {
  readonly clock: Clock;
  /** Largest message sent or received, in bytes. */
  readonly messageBytesMax: number;
  /** First and largest delay between reconnection attempts to a broker that went away. */
  readonly reconnectBackoffInitialMs: number;
  readonly reconnectBackoffMaxMs: number;
}

export type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

export class ChannelPool {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly inflight = new Set<grpc.ClientUnaryCall>();
  private closed = false;

  constructor(private readonly options: ChannelPoolOptions) {}

  /** Calls `method` on the broker at `address` ("host:port"), failing after `timeoutMs`. */
  call<M extends BrokerMethod>(address: string, method: M, request: BrokerMethods[M]["request"], timeoutMs: number): Promise<BrokerMethods[M]["response"]> {
    if (this.closed) return Promise.reject(new ShuttingDownError("the client is closed"));
    const client = this.clientFor(address);
    const fn = (client as unknown as Record<string, UnaryMethod>)[method]!;
    const context = { clock: this.options.clock, inflight: this.inflight, isClosed: () => this.closed, address, method };
    return unaryCall(client, fn, request, timeoutMs, context) as Promise<BrokerMethods[M]["response"]>;
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Cancels the calls in flight and closes every channel. Idempotent. */
  close(): void {
    this.closed = true;
    for (const call of this.inflight) call.cancel();
    this.inflight.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(address: string): grpc.Client {
    let client = this.clients.get(address);
    if (client === undefined) {
      const Ctor = brokerClientConstructor();
      client = new Ctor(address, grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": this.options.messageBytesMax,
        "grpc.max_receive_message_length": this.options.messageBytesMax,
        "grpc-node.flow_control_window": STREAM_WINDOW_BYTES,
        "grpc.initial_reconnect_backoff_ms": this.options.reconnectBackoffInitialMs,
        "grpc.max_reconnect_backoff_ms": this.options.reconnectBackoffMaxMs,
      });
      this.clients.set(address, client);
    }
    return client;
  }
}

/** What a unary call needs from the channel set that owns it. */
export interface UnaryCallContext {
  readonly clock: Clock;
  /** Calls in flight, cancelled when the owner closes. */
  readonly inflight: Set<grpc.ClientUnaryCall>;
  readonly isClosed: () => boolean;
  readonly address: string;
  readonly method: string;
}

/**
 * Calls a unary gRPC method, failing after `timeoutMs` on the injected clock, and maps errors to
 * the client's error classes (a call cut short by close() fails with ShuttingDownError).
 */
export function unaryCall(
  client: grpc.Client,
  fn: UnaryMethod,
  request: unknown,
  timeoutMs: number,
  ctx: UnaryCallContext,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let call: grpc.ClientUnaryCall | undefined;
    let timedOut = false;
    let settled = false;
    const timer = ctx.clock.setTimer(timeoutMs, () => {
      timedOut = true;
      call?.cancel();
    });
    call = fn.call(client, request, new grpc.Metadata(), {}, (err, response) => {
      settled = true;
      timer.cancel();
      if (call !== undefined) ctx.inflight.delete(call);
      if (err === null) resolve(response);
      else if (ctx.isClosed()) reject(new ShuttingDownError("the client was closed during the call", { cause: err }));
      else reject(errorFromGrpc(err, { address: ctx.address, method: ctx.method, ...(timedOut ? { timeoutMs } : {}) }));
    });
    if (!settled) ctx.inflight.add(call);
  });
}

/**
 * The produce load: `producers` closed loops, each with its own client (so its own gRPC channels
 * and its own batches, like separate applications), each keeping `inFlight` records sent and not
 * yet acknowledged. A record's acknowledgement sends the next one, so the offered load follows
 * what the cluster absorbs. All loops share one event loop: this process is the load generator,
 * and its CPU is reported beside the nodes'.
 *
 * The ProduceMeter splits time into warm-up, measurement and drain. Throughput counts the
 * acknowledgements that arrive during the measurement; latency (send() to acknowledgement, per
 * record) is recorded for every record sent during the measurement, including those acknowledged
 * during the drain, so the slowest records are not cut off the tail.
 */
import { connect, type Producer, type RaftmqClient } from "../../src/client/index.js";
import { LatencyHistogram } from "./latency-histogram.js";
import type { PayloadPool } from "./payloads.js";

export interface ProduceLoadSettings {
  readonly producers: number;
  /** Records sent and not yet acknowledged, per producer. */
  readonly inFlight: number;
  readonly lingerMs: number;
  readonly batchRecordsMax: number;
}

/** Failures beyond which the load stops and the run fails (a healthy run has none). */
const ERRORS_MAX = 100;
/** How long stop() waits for the records in flight. */
const DRAIN_TIMEOUT_MS = 30_000;

type Phase = "warm-up" | "measure" | "drain";

export class ProduceMeter {
  phase: Phase = "warm-up";
  /** Acknowledged records since the start, all phases. */
  ackedTotal = 0;
  /** Acknowledged during the measurement. */
  ackedMeasured = 0;
  bytesMeasured = 0;
  errors = 0;
  firstError: unknown;
  readonly latency = new LatencyHistogram();
  private measureStartMs = 0;
  private measureEndMs = 0;

  beginMeasure(): void {
    this.phase = "measure";
    this.measureStartMs = performance.now();
  }

  endMeasure(): void {
    this.phase = "drain";
    this.measureEndMs = performance.now();
  }

  /** Length of the measurement, in seconds. */
  get measuredS(): number {
    return (this.measureEndMs - this.measureStartMs) / 1000;
  }

  /** A record sent at `sentMs` (measured if sent during the measurement) was acknowledged. */
  acked(sentMs: number, measured: boolean, bytes: number): void {
    this.ackedTotal++;
    if (this.phase === "measure") {
      this.ackedMeasured++;
      this.bytesMeasured += bytes;
    }
    if (measured) this.latency.recordMs(performance.now() - sentMs);
  }

  failed(error: unknown): void {
    this.errors++;
    this.firstError ??= error;
  }
}

/** One producer loop: its client, its producer and its window. */
class ProducerLoop {
  private readonly client: RaftmqClient;
  private readonly producer: Producer;
  private inflight = 0;
  private running = false;

  constructor(
    brokers: readonly string[],
    private readonly topic: string,
    private readonly settings: ProduceLoadSettings,
    private readonly payloads: PayloadPool,
    private readonly meter: ProduceMeter,
    private readonly onFatal: (error: Error) => void,
  ) {
    this.client = connect({ brokers });
    this.producer = this.client.producer({
      lingerMs: settings.lingerMs,
      batchRecordsMax: settings.batchRecordsMax,
      bufferedRecordsMax: Math.max(settings.inFlight, settings.batchRecordsMax),
    });
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops sending and waits (bounded) for the records in flight, then closes the client. */
  async stop(): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), DRAIN_TIMEOUT_MS)));
    const outcome = await Promise.race([this.producer.flush().then(() => "drained" as const), timeout]);
    clearTimeout(timer);
    await this.client.close();
    if (outcome === "timeout") throw new Error(`${this.inflight} records were still unacknowledged ${DRAIN_TIMEOUT_MS} ms after the load stopped`);
  }

  private pump(): void {
    while (this.running && this.inflight < this.settings.inFlight) this.sendOne();
  }

  private sendOne(): void {
    this.inflight++;
    const body = this.payloads.take();
    const sentMs = performance.now();
    const measured = this.meter.phase === "measure";
    this.producer.send(this.topic, { body }).then(
      () => {
        this.inflight--;
        this.meter.acked(sentMs, measured, body.length);
        this.pump();
      },
      (error: unknown) => {
        this.inflight--;
        this.meter.failed(error);
        if (this.meter.errors >= ERRORS_MAX) {
          this.running = false;
          this.onFatal(new Error(`${this.meter.errors} produce requests failed; the first: ${String(this.meter.firstError)}`, { cause: this.meter.firstError }));
          return;
        }
        this.pump();
      },
    );
  }
}

/** Every producer loop of a run. */
export class ProduceLoad {
  private readonly loops: ProducerLoop[];

  constructor(
    brokers: readonly string[],
    topic: string,
    settings: ProduceLoadSettings,
    payloads: PayloadPool,
    readonly meter: ProduceMeter,
    onFatal: (error: Error) => void,
  ) {
    this.loops = Array.from({ length: settings.producers }, () => new ProducerLoop(brokers, topic, settings, payloads, meter, onFatal));
  }

  start(): void {
    for (const loop of this.loops) loop.start();
  }

  async stop(): Promise<void> {
    const outcomes = await Promise.allSettled(this.loops.map((l) => l.stop()));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }
}

/**
 * A fault-injecting TCP proxy for one directed node-to-node link, for the multi-process chaos tests.
 *
 * Why a proxy per directed link is enough. Node i sends its Raft messages to node j only on its
 * own outbound gRPC stream to j (src/transport/peer-link.ts); j answers on that stream with a
 * small handshake and nothing else, and j's messages to i travel on j's own stream to i. So a
 * proxy that node i dials instead of j (`--peer-routes j=PROXY`) decides exactly whether "i's
 * messages reach j". Snapshots to j use a call of their own to the same address, so they pass
 * the same proxy. Clients, and any traffic addressed through the cluster metadata, do not.
 *
 * Modes, switchable at any time:
 *
 *   pass       forwards bytes both ways (after `delayMs` per chunk, in order);
 *   blackhole  a silent network: connections are still accepted, but nothing is forwarded in
 *              either direction and what arrives is read and discarded (bytes, FIN and RST
 *              alike). Existing connections stall; new ones are not even dialled to the target.
 *   refuse     every existing connection is reset (RST) and new ones are reset at once.
 *
 * Leaving blackhole for pass resets every connection that lost something while blackholed (a
 * stream with a hole in it cannot go on: real TCP would retransmit, we discarded); a connection
 * that lost nothing (it was idle) simply goes on, and one accepted while blackholed is dialled to
 * the target then. `dropFor(ms)` is a message-loss window: blackhole for ms, then every connection
 * that lived through the window is reset and the proxy passes again.
 *
 * Each connection is a pair of sockets (the accepted one, the one to the target) with one flow per
 * direction. A flow writes straight through when there is no delay, else queues chunks with the
 * time they are due and delivers them in order from one timer; reading pauses while the queue
 * holds more than DELAY_QUEUE_BYTES_MAX or the destination pushes back. Every socket has an
 * 'error' listener from birth to death, so ECONNRESET, EPIPE or ECONNREFUSED never surface as an
 * unhandled error: a reset or refusal on one side resets the other side (in pass mode).
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

/** What a {@link LinkProxy} does with its connections; see the file comment. */
export type LinkMode = "pass" | "blackhole" | "refuse";

/** How to start a {@link LinkProxy}. */
export interface LinkProxyOptions {
  /** "host:port" (or "[v6]:port") that accepted connections are forwarded to. */
  readonly target: string;
  /** Address to listen on. Default 127.0.0.1. */
  readonly host?: string;
  /** Port to listen on. Default 0: a free port chosen by the OS. */
  readonly port?: number;
}

/** The counters of a {@link LinkProxy}, since it started. */
export interface LinkProxyStats {
  /** Connections accepted from the dialling side, refused ones included. */
  readonly connectionsAccepted: number;
  /** Connections open now (accepted, not yet closed on both sides). */
  readonly connectionsOpen: number;
  /** Bytes delivered from the dialling side to the target. */
  readonly bytesToTarget: number;
  /** Bytes delivered from the target back to the dialling side. */
  readonly bytesFromTarget: number;
  /** Bytes read and thrown away (blackhole, drop windows, a destination already gone). */
  readonly bytesDiscarded: number;
  /** Connections the proxy reset on purpose (refuse, resetConnections, dropFor, leaving blackhole). */
  readonly resets: number;
}

/** Upper bound of `delayMs`. */
export const LINK_DELAY_MS_MAX = 60_000;
/** Upper bound of one `dropFor()` window. */
export const LINK_DROP_MS_MAX = 600_000;
/** Bytes a flow may hold in its delay queue before it stops reading its source. */
const DELAY_QUEUE_BYTES_MAX = 32 * 1024 * 1024;

type Counters = { -readonly [K in Exclude<keyof LinkProxyStats, "connectionsOpen">]: number };

/** What a connection needs from its proxy. */
interface ProxyContext {
  readonly counters: Counters;
  readonly targetHost: string;
  readonly targetPort: number;
  effectiveMode(): LinkMode;
  delayMs(): number;
  /** Called once both sockets of the connection are gone (or were reset). */
  forget(c: Connection): void;
}

/** A chunk of a flow on its way; `chunk: undefined` is the end of the stream (FIN). */
interface Pending {
  readonly dueMs: number;
  readonly chunk: Buffer | undefined;
}

/**
 * A TCP proxy with a switchable fault mode, added latency and a message-loss window. Start it with
 * {@link LinkProxy.start}; every timer and socket it owns ends with {@link LinkProxy.close}.
 */
export class LinkProxy {
  private modeValue: LinkMode = "pass";
  private delayValue = 0;
  private dropUntilMs = 0;
  private dropTimer: NodeJS.Timeout | undefined;
  private dropWaiters: Array<() => void> = [];
  private readonly connections = new Set<Connection>();
  private closing: Promise<void> | undefined;
  private readonly counters: Counters = { connectionsAccepted: 0, bytesToTarget: 0, bytesFromTarget: 0, bytesDiscarded: 0, resets: 0 };
  private readonly context: ProxyContext;

  private constructor(
    private readonly server: Server,
    /** "host:port" this proxy listens on: what the dialling node is given instead of the target. */
    readonly address: string,
    /** "host:port" connections are forwarded to. */
    readonly target: string,
  ) {
    const [targetHost, targetPort] = splitHostPort(target);
    this.context = {
      counters: this.counters,
      targetHost,
      targetPort,
      effectiveMode: () => this.effectiveMode,
      delayMs: () => this.delayValue,
      forget: (c) => this.connections.delete(c),
    };
    server.on("connection", (socket) => this.accept(socket));
    // Accept errors (EMFILE and the like) only cost the one connection; never crash the harness.
    server.on("error", () => {});
  }

  /** Listens (127.0.0.1, a free port by default) and resolves once connections are accepted. */
  static async start(options: LinkProxyOptions): Promise<LinkProxy> {
    splitHostPort(options.target); // fails before listening
    const host = options.host ?? "127.0.0.1";
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    return new LinkProxy(server, joinHostPort(host, port), options.target);
  }

  /** The mode set last (a `dropFor()` window blackholes on top of it; see {@link effectiveMode}). */
  get mode(): LinkMode {
    return this.modeValue;
  }

  /** Switches the mode; takes effect at once on every connection (see the file comment). */
  set mode(mode: LinkMode) {
    if (mode !== "pass" && mode !== "blackhole" && mode !== "refuse") throw new RangeError(`mode must be pass, blackhole or refuse, got ${String(mode)}`);
    this.change(() => (this.modeValue = mode));
  }

  /** What the proxy does right now: the mode, or blackhole during a `dropFor()` window. */
  get effectiveMode(): LinkMode {
    if (this.modeValue === "refuse") return "refuse";
    return this.dropping ? "blackhole" : this.modeValue;
  }

  /** Whether a `dropFor()` window is open. */
  get dropping(): boolean {
    return this.dropTimer !== undefined;
  }

  /** Latency added to every chunk, in each direction (0: none). */
  get delayMs(): number {
    return this.delayValue;
  }

  /** Sets the added latency for chunks that arrive from now on; order is kept across changes. */
  set delayMs(ms: number) {
    if (!Number.isInteger(ms) || ms < 0 || ms > LINK_DELAY_MS_MAX) throw new RangeError(`delayMs must be an integer from 0 to ${LINK_DELAY_MS_MAX}, got ${ms}`);
    this.delayValue = ms;
  }

  /** The counters so far. */
  get stats(): LinkProxyStats {
    return { ...this.counters, connectionsOpen: this.connections.size };
  }

  /** Resets (RST) every current connection, both sides; returns how many. The mode is unchanged. */
  resetConnections(): number {
    const all = [...this.connections];
    for (const c of all) c.reset();
    return all.length;
  }

  /**
   * Opens a message-loss window: blackhole for `ms`, then reset every connection that lived
   * through it and pass again (unless the mode says otherwise). A window opened while one is open
   * extends it to whichever ends later. Resolves when the window ends, or at close(); never
   * rejects, so it may be left unawaited.
   */
  dropFor(ms: number): Promise<void> {
    if (!Number.isInteger(ms) || ms < 1 || ms > LINK_DROP_MS_MAX) throw new RangeError(`dropFor: ms must be an integer from 1 to ${LINK_DROP_MS_MAX}, got ${ms}`);
    if (this.closing !== undefined) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.dropWaiters.push(resolve));
    const untilMs = performance.now() + ms;
    if (untilMs > this.dropUntilMs) {
      this.dropUntilMs = untilMs;
      this.change(() => {
        clearTimeout(this.dropTimer);
        this.dropTimer = setTimeout(() => this.endDrop(), ms);
      });
    }
    return done;
  }

  /** Stops listening and destroys every connection and timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      clearTimeout(this.dropTimer);
      this.dropTimer = undefined;
      this.wakeDropWaiters();
      for (const c of [...this.connections]) c.destroy();
      this.server.close(() => resolve());
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    socket.on("error", ignore);
    socket.setNoDelay(true);
    this.counters.connectionsAccepted++;
    if (this.closing !== undefined) {
      socket.destroy();
    } else if (this.effectiveMode === "refuse") {
      this.counters.resets++;
      resetSocket(socket);
    } else {
      const c = new Connection(this.context, socket);
      this.connections.add(c);
      if (this.effectiveMode === "pass") c.dial();
    }
  }

  /** Applies `update` and then what the change of effective mode means for the connections. */
  private change(update: () => void): void {
    const before = this.effectiveMode;
    update();
    const after = this.effectiveMode;
    if (after === before || this.closing !== undefined) return;
    if (after === "refuse") {
      this.resetConnections();
    } else if (before === "blackhole" && after === "pass") {
      for (const c of [...this.connections]) c.resume();
    }
  }

  private endDrop(): void {
    this.dropUntilMs = 0;
    this.dropTimer = undefined;
    // Every connection open now lived through the window. In refuse mode there are none.
    if (this.effectiveMode === "pass") for (const c of [...this.connections]) c.reset();
    else for (const c of this.connections) c.lost = true; // still blackholed: they go when it passes again
    this.wakeDropWaiters();
  }

  private wakeDropWaiters(): void {
    const waiters = this.dropWaiters;
    this.dropWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** One accepted connection and its connection to the target. */
class Connection {
  upstream: Socket | undefined;
  /** Something (bytes, an end, a reset) was discarded: the stream cannot go on. */
  lost = false;
  private finished = false;
  private readonly toTarget: Flow;
  private fromTarget: Flow | undefined;
  private clientOpen = true;
  private upstreamOpen = false;

  constructor(
    private readonly proxy: ProxyContext,
    private readonly client: Socket,
  ) {
    this.toTarget = new Flow(this, proxy, client, "bytesToTarget");
    client.on("close", (hadError) => {
      this.clientOpen = false;
      this.sideClosed(hadError, this.upstream);
    });
  }

  /** Connects to the target; the flows start forwarding. */
  dial(): void {
    const upstream = createConnection({ host: this.proxy.targetHost, port: this.proxy.targetPort, allowHalfOpen: true, noDelay: true });
    upstream.on("error", ignore);
    this.upstream = upstream;
    this.upstreamOpen = true;
    this.toTarget.to = upstream;
    this.fromTarget = new Flow(this, this.proxy, upstream, "bytesFromTarget");
    this.fromTarget.to = this.client;
    upstream.on("close", (hadError) => {
      this.upstreamOpen = false;
      this.sideClosed(hadError, this.client);
    });
  }

  /** The proxy passes again after a blackhole. */
  resume(): void {
    if (this.finished) return;
    if (this.lost || !this.clientOpen) this.reset();
    else if (this.upstream === undefined) this.dial();
  }

  /** Resets both sockets (counted). */
  reset(): void {
    if (this.finished) return;
    this.proxy.counters.resets++;
    this.finish();
    resetSocket(this.client);
    if (this.upstream !== undefined) resetSocket(this.upstream);
  }

  /** Destroys both sockets quietly (close()). */
  destroy(): void {
    this.finish();
    this.client.destroy();
    this.upstream?.destroy();
  }

  private sideClosed(hadError: boolean, other: Socket | undefined): void {
    if (!this.clientOpen && !this.upstreamOpen) this.finish();
    if (this.finished) return;
    if (this.proxy.effectiveMode() !== "pass") {
      this.lost = true; // a silent network loses the FIN or RST too
    } else if (other === undefined) {
      this.finish(); // accepted while blackholed, never dialled, now gone
    } else if (hadError) {
      // Pass the reset (or refusal) on; not counted in `resets`, which counts the proxy's own.
      this.finish();
      resetSocket(other);
    }
    // A clean close arrived as 'end' first and was forwarded in order by the flow.
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.toTarget.stop();
    this.fromTarget?.stop();
    this.proxy.forget(this);
  }
}

/** One direction of a connection: reads `from`, writes `to` (unset until the target is dialled). */
class Flow {
  to: Socket | undefined;
  private queue: Pending[] = [];
  // Invariant: queuedBytes is the sum of the chunk lengths in queue.
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private paused = false;
  private stopped = false;

  constructor(
    private readonly connection: Connection,
    private readonly proxy: ProxyContext,
    private readonly from: Socket,
    private readonly counter: "bytesToTarget" | "bytesFromTarget",
  ) {
    from.on("data", (chunk: Buffer) => this.arrive(chunk));
    from.on("end", () => this.arrive(undefined));
  }

  /** Drops what is queued and clears the timer; nothing more is forwarded. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.queuedBytes = 0;
  }

  private arrive(chunk: Buffer | undefined): void {
    if (this.stopped) return;
    const delayMs = this.proxy.delayMs();
    if (this.proxy.effectiveMode() !== "pass") return this.discard(chunk);
    if (delayMs === 0 && this.queue.length === 0) return this.deliver(chunk);
    this.queue.push({ dueMs: performance.now() + delayMs, chunk });
    this.queuedBytes += chunk?.length ?? 0;
    this.updatePause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopped || this.queue.length === 0) return;
    const waitMs = Math.max(0, Math.ceil(this.queue[0]!.dueMs - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.deliverDue();
    }, waitMs);
  }

  /** Delivers, in order, every queued chunk that is due (never one early: the timer may fire early by a fraction of a millisecond). */
  private deliverDue(): void {
    const nowMs = performance.now();
    while (!this.stopped && this.queue.length > 0 && this.queue[0]!.dueMs <= nowMs) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk?.length ?? 0;
      // A chunk in flight when the link went silent is lost with it.
      if (this.proxy.effectiveMode() === "pass") this.deliver(chunk);
      else this.discard(chunk);
    }
    this.updatePause();
    this.schedule();
  }

  private deliver(chunk: Buffer | undefined): void {
    const to = this.to;
    if (to === undefined || to.destroyed || !to.writable) return this.discard(chunk);
    if (chunk === undefined) {
      to.end();
      return;
    }
    this.proxy.counters[this.counter] += chunk.length;
    if (!to.write(chunk) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.updatePause();
      to.once("drain", () => {
        this.waitingDrain = false;
        this.updatePause();
      });
    }
  }

  private discard(chunk: Buffer | undefined): void {
    this.connection.lost = true;
    this.proxy.counters.bytesDiscarded += chunk?.length ?? 0;
  }

  /** Reads `from` only while the destination keeps up and the delay queue is within its bound. */
  private updatePause(): void {
    const pause = !this.stopped && (this.waitingDrain || this.queuedBytes > DELAY_QUEUE_BYTES_MAX);
    if (pause === this.paused) return;
    this.paused = pause;
    if (pause) this.from.pause();
    else this.from.resume();
  }
}

/** RST when the socket is connected; a plain destroy when it is still connecting or already gone. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

function ignore(): void {}

/** "host:port" or "[v6]:port" → [host, port]; RangeError naming the text otherwise. */
export function splitHostPort(text: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`"${text}" is not HOST:PORT`);
  return [m[1] ?? m[2]!, port];
}

/** [host, port] → "host:port", bracketing an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

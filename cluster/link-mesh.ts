/**
 * One {@link LinkProxy} per directed pair of nodes, and the network faults of the chaos tests as
 * states of those links.
 *
 * Node i is started with `--peer-routes` = routesFor(i): for every peer j, the address of the proxy
 * of link i→j, which forwards to j's real address. Blocking link i→j then means exactly "i's Raft
 * messages do not reach j" (see link-proxy.ts for why), and every partition shape is a set of
 * blocked directed links:
 *
 *   isolate(1)                 1→*, *→1 blocked
 *   partition([[1, 2], [3]])   1→3, 3→1, 2→3, 3→2 blocked
 *   oneWay(1, 2)               1→2 blocked; 2→1 passes
 *   bridge([1], [3], 2)        1→3, 3→1 blocked; both reach 2 and 2 reaches both
 *
 * Faults stack: each helper only blocks (or delays, or drops) the links it names and leaves the
 * others as they are; heal() returns every link to pass with no delay. A blocked link is
 * "blackhole" by default (a silent network, like a real partition: the nodes notice only through
 * gRPC keepalive or their own timeouts) or "refuse" when the caller asks (connections reset at
 * once: a node that is down, or a firewall that rejects).
 */
import { LinkProxy, type LinkMode } from "./link-proxy.js";

/** A directed link: `from`'s messages to `to`. */
export type LinkKey = readonly [from: number, to: number];

/** How to start a {@link LinkMesh}. */
export interface LinkMeshOptions {
  /** Address the proxies listen on. Default 127.0.0.1. */
  readonly host?: string;
}

/** A mode that blocks a link. */
export type BlockMode = Exclude<LinkMode, "pass">;

/** The proxies of every directed link between nodes, with partition helpers. */
export class LinkMesh {
  private closing: Promise<void> | undefined;

  private constructor(
    /** The node ids, ascending. */
    readonly ids: readonly number[],
    private readonly proxies: ReadonlyMap<string, LinkProxy>,
  ) {}

  /**
   * Starts one proxy per directed pair (i, j), i ≠ j, forwarding to j's address in `addresses`
   * (node id → "host:port"). On a failure the proxies already started are closed.
   */
  static async start(addresses: ReadonlyMap<number, string>, options: LinkMeshOptions = {}): Promise<LinkMesh> {
    const ids = [...addresses.keys()].sort((a, b) => a - b);
    for (const id of ids) if (!Number.isSafeInteger(id) || id < 1) throw new RangeError(`node ids must be positive integers, got ${id}`);
    const proxies = new Map<string, LinkProxy>();
    try {
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          const proxy = await LinkProxy.start({ target: addresses.get(to)!, ...(options.host !== undefined && { host: options.host }) });
          proxies.set(keyOf(from, to), proxy);
        }
      }
    } catch (error) {
      await Promise.all([...proxies.values()].map((p) => p.close()));
      throw error;
    }
    return new LinkMesh(ids, proxies);
  }

  /** What node `id` gets as --peer-routes: peer j → the address of the proxy of link id→j. */
  routesFor(id: number): Map<number, string> {
    this.check(id);
    return new Map(this.ids.filter((j) => j !== id).map((j) => [j, this.link(id, j).address]));
  }

  /** The proxy of link from→to. */
  link(from: number, to: number): LinkProxy {
    this.check(from);
    this.check(to);
    const proxy = this.proxies.get(keyOf(from, to));
    if (proxy === undefined) throw new RangeError(`no link from node ${from} to itself`);
    return proxy;
  }

  /** Every directed link, ordered by from then to. */
  links(): LinkKey[] {
    return this.ids.flatMap((from) => this.ids.filter((to) => to !== from).map((to): LinkKey => [from, to]));
  }

  /** Node `id` neither reaches nor is reached by any other node. */
  isolate(id: number, mode: BlockMode = "blackhole"): void {
    this.check(id);
    this.block(this.links().filter(([from, to]) => from === id || to === id), mode);
  }

  /**
   * Links between nodes of different groups are blocked both ways. Groups must be disjoint;
   * nodes named in no group keep all their links.
   */
  partition(groups: readonly (readonly number[])[], mode: BlockMode = "blackhole"): void {
    const groupOf = new Map<number, number>();
    groups.forEach((group, g) => {
      for (const id of group) {
        this.check(id);
        if (groupOf.has(id)) throw new RangeError(`partition: node ${id} is in more than one group`);
        groupOf.set(id, g);
      }
    });
    this.block(this.links().filter(([from, to]) => groupOf.has(from) && groupOf.has(to) && groupOf.get(from) !== groupOf.get(to)), mode);
  }

  /** Only `from`'s messages to `to` are lost; `to` still reaches `from`. */
  oneWay(from: number, to: number, mode: BlockMode = "blackhole"): void {
    this.block([[from, to]], mode);
  }

  /**
   * Nodes of `a` and nodes of `b` cannot talk to each other, but all of them reach node `bridge`
   * and it reaches them (its links are left as they are).
   */
  bridge(a: readonly number[], b: readonly number[], bridge: number, mode: BlockMode = "blackhole"): void {
    this.check(bridge);
    if (a.includes(bridge) || b.includes(bridge)) throw new RangeError(`bridge: node ${bridge} is the bridge and cannot be on a side`);
    this.partition([a, b], mode);
  }

  /** Sets the mode of `links` (default all). */
  setMode(mode: LinkMode, links: Iterable<LinkKey> = this.links()): void {
    for (const [from, to] of links) this.link(from, to).mode = mode;
  }

  /** Sets the added latency of `links` (default all), each direction of their connections. */
  setDelay(ms: number, links: Iterable<LinkKey> = this.links()): void {
    for (const [from, to] of links) this.link(from, to).delayMs = ms;
  }

  /** A message-loss window of `ms` on `links` (default all); resolves when every window has ended. */
  async dropFor(ms: number, links: Iterable<LinkKey> = this.links()): Promise<void> {
    const proxies = [...links].map(([from, to]) => this.link(from, to));
    await Promise.all(proxies.map((p) => p.dropFor(ms)));
  }

  /** Resets every connection of `links` (default all); returns how many were reset. */
  resetAll(links: Iterable<LinkKey> = this.links()): number {
    let n = 0;
    for (const [from, to] of links) n += this.link(from, to).resetConnections();
    return n;
  }

  /** Every link passes again, with no delay (open dropFor windows run to their end). */
  heal(): void {
    for (const proxy of this.proxies.values()) {
      proxy.mode = "pass";
      proxy.delayMs = 0;
    }
  }

  /** The links that are not plainly passing, one per line ("1→2 blackhole"), or "all links pass". */
  describe(): string {
    const lines: string[] = [];
    for (const [from, to] of this.links()) {
      const p = this.link(from, to);
      const faults = [
        ...(p.mode !== "pass" ? [p.mode] : []),
        ...(p.dropping ? ["dropping"] : []),
        ...(p.delayMs > 0 ? [`delay ${p.delayMs} ms`] : []),
      ];
      if (faults.length > 0) lines.push(`${from}→${to} ${faults.join(", ")}`);
    }
    return lines.length === 0 ? "all links pass" : lines.join("\n");
  }

  /** Closes every proxy. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all([...this.proxies.values()].map((p) => p.close())).then(() => undefined);
    return this.closing;
  }

  private block(links: Iterable<LinkKey>, mode: BlockMode): void {
    if (mode !== "blackhole" && mode !== "refuse") throw new RangeError(`a blocked link is blackhole or refuse, got ${String(mode)}`);
    this.setMode(mode, links);
  }

  private check(id: number): void {
    if (!this.ids.includes(id)) throw new RangeError(`no node ${id}: the mesh has nodes ${this.ids.join(",")}`);
  }
}

function keyOf(from: number, to: number): string {
  return `${from}→${to}`;
}

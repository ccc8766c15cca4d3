/**
 * The client's view of the cluster: nodes and their addresses, topics, partitions and leaders,
 * from the Metadata call of any broker. It is refreshed when it is missing, when a caller
 * invalidates it (after NOT_LEADER without a hint, an unreachable broker or an unknown leader),
 * and when it is older than `maxAgeMs`. Concurrent refreshes share one request. A refresh asks
 * the broker that answered last, then the bootstrap brokers, then every known node, in turn.
 */
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { ChannelPool } from "./channels.js";
import { UnavailableError } from "./errors.js";
import type { ClusterMetadata, TopicInfo } from "./wire.js";

/** One Metadata answer, indexed. */
export class MetadataView {
  private readonly topicsByName = new Map<string, TopicInfo>();
  private readonly addresses = new Map<number, string>();

  constructor(readonly metadata: ClusterMetadata, readonly fetchedAtMs: number) {
    for (const t of metadata.topics) this.topicsByName.set(t.name, t);
    for (const n of metadata.nodes) this.addresses.set(n.id, n.address);
  }

  topic(name: string): TopicInfo | undefined {
    return this.topicsByName.get(name);
  }

  /** The client address of node `id`, if known. */
  addressOf(id: number): string | undefined {
    return id > 0 ? this.addresses.get(id) : undefined;
  }

  /** Every known node address, in node id order. */
  nodeAddresses(): string[] {
    return [...this.addresses.entries()].sort((a, b) => a[0] - b[0]).map(([, address]) => address);
  }

  /** Records a leader learned from a NOT_LEADER hint, so the next request goes there. */
  noteLeader(topic: string, partition: number, leaderId: number, address: string | undefined): void {
    const p = this.topicsByName.get(topic)?.partitions.find((x) => x.partition === partition);
    if (p !== undefined) p.leader = leaderId;
    if (address !== undefined && leaderId > 0) this.addresses.set(leaderId, address);
  }
}

export interface MetadataCacheOptions {
  readonly pool: ChannelPool;
  readonly bootstrap: readonly string[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Timeout of one Metadata call. */
  readonly timeoutMs: number;
  /** A view older than this is refreshed before use. */
  readonly maxAgeMs: number;
}

export class MetadataCache {
  private view: MetadataView | undefined;
  private stale = false;
  private refreshing: Promise<MetadataView> | undefined;
  private lastGood: string | undefined;

  constructor(private readonly options: MetadataCacheOptions) {}

  /** The current view; refreshed first when missing, invalidated or too old. */
  async get(): Promise<MetadataView> {
    const view = this.view;
    if (view !== undefined && !this.stale && this.options.clock.monotonicMs() - view.fetchedAtMs <= this.options.maxAgeMs) return view;
    return this.refresh();
  }

  /** The current view without any I/O (possibly stale), if there is one. */
  peek(): MetadataView | undefined {
    return this.view;
  }

  /** Marks the view stale: the next get() refreshes it. */
  invalidate(): void {
    this.stale = true;
  }

  /** Fetches a new view now (joining a refresh already in flight). */
  refresh(): Promise<MetadataView> {
    this.refreshing ??= this.fetchFromAny().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async fetchFromAny(): Promise<MetadataView> {
    const failures: string[] = [];
    let lastError: unknown;
    for (const address of this.candidates()) {
      try {
        const metadata = await this.options.pool.call(address, "Metadata", { topics: [] }, this.options.timeoutMs);
        this.lastGood = address;
        this.view = new MetadataView(metadata, this.options.clock.monotonicMs());
        this.stale = false;
        return this.view;
      } catch (error) {
        if (this.options.pool.isClosed) throw error;
        lastError = error;
        failures.push(`${address}: ${error instanceof Error ? error.message : String(error)}`);
        this.options.logger.debug({ address, err: String(error) }, "metadata request failed");
      }
    }
    throw new UnavailableError(`no broker answered a metadata request (${failures.join("; ")})`, { cause: lastError });
  }

  private candidates(): string[] {
    const all = [...(this.lastGood === undefined ? [] : [this.lastGood]), ...this.options.bootstrap, ...(this.view?.nodeAddresses() ?? [])];
    return [...new Set(all)];
  }
}

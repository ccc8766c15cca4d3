/**
 * An in-process Transport for tests: a hub delivers each send on a later event-loop turn, in
 * order per (sender, receiver), and can cut links to simulate partitions and dead nodes.
 */
import type { GroupId, NodeId } from "../../lib/ids.js";
import type { GroupMessage, Transport } from "../ports.js";

export class LoopbackHub {
  private readonly endpoints = new Map<NodeId, LoopbackTransport>();
  private readonly cut = new Set<string>();
  /** Messages delivered so far (for assertions). */
  delivered = 0;
  /** Keep-alives (empty sends) delivered so far. */
  keepAlives = 0;

  endpoint(id: NodeId): LoopbackTransport {
    const t = new LoopbackTransport(id, this);
    this.endpoints.set(id, t);
    return t;
  }

  /** Cuts (or restores) both directions between a and b. */
  setLink(a: NodeId, b: NodeId, up: boolean): void {
    for (const key of [`${a}->${b}`, `${b}->${a}`]) {
      if (up) this.cut.delete(key);
      else this.cut.add(key);
    }
  }

  /** Cuts node `id` off from everyone (or reconnects it). */
  isolate(id: NodeId, isolated = true): void {
    for (const other of this.endpoints.keys()) if (other !== id) this.setLink(id, other, !isolated);
  }

  detach(id: NodeId): void {
    this.endpoints.delete(id);
  }

  /** @internal */
  route(from: NodeId, to: NodeId, msgs: readonly GroupMessage[]): boolean {
    const target = this.endpoints.get(to);
    if (target === undefined || this.cut.has(`${from}->${to}`)) return false;
    setImmediate(() => {
      if (this.cut.has(`${from}->${to}`) || this.endpoints.get(to) !== target) return;
      this.delivered += msgs.length;
      if (msgs.length === 0) this.keepAlives++;
      target.deliver(from, msgs);
    });
    return true;
  }
}

export class LoopbackTransport implements Transport {
  private receive: (from: NodeId, msgs: readonly GroupMessage[]) => void = () => {};
  private unreachable: (to: NodeId, groups: readonly GroupId[]) => void = () => {};
  private snapshotStatus: (to: NodeId, group: GroupId, ok: boolean) => void = () => {};
  private closed = false;

  constructor(readonly id: NodeId, private readonly hub: LoopbackHub) {}

  send(to: NodeId, messages: readonly GroupMessage[]): void {
    if (this.closed) return;
    const ok = this.hub.route(this.id, to, messages);
    if (!ok && messages.length > 0) this.unreachable(to, [...new Set(messages.map((m) => m.group))]);
    for (const m of messages) {
      if (m.message.type === "snap") setImmediate(() => this.snapshotStatus(to, m.group, ok));
    }
  }

  onReceive(handler: (from: NodeId, messages: readonly GroupMessage[]) => void): void {
    this.receive = handler;
  }

  onUnreachable(handler: (to: NodeId, groups: readonly GroupId[]) => void): void {
    this.unreachable = handler;
  }

  onSnapshotStatus(handler: (to: NodeId, group: GroupId, ok: boolean) => void): void {
    this.snapshotStatus = handler;
  }

  /** @internal */
  deliver(from: NodeId, msgs: readonly GroupMessage[]): void {
    if (!this.closed) this.receive(from, msgs);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.detach(this.id);
  }
}

/**
 * A synchronous in-memory cluster for scripted unit tests of the core: every node's Ready is
 * processed in full (persist to MemoryStorage, deliver messages, apply) until the cluster is
 * quiet. Messages can be dropped or filtered per link. Production code never imports this.
 */
import type { NodeId } from "../../lib/ids.js";
import { SeededRandom } from "../../lib/random.js";
import type { RaftConfig } from "../config.js";
import type { ConfState, Entry, Message, Snapshot } from "../messages.js";
import type { ReadState, Ready } from "../ready.js";
import { RawNode } from "../raw-node.js";
import { MemoryStorage, type InitialState } from "../storage.js";

export interface HarnessNode {
  readonly id: NodeId;
  node: RawNode;
  readonly storage: MemoryStorage;
  /** Every entry applied, in order (no-ops included). */
  readonly applied: Entry[];
  readonly readStates: ReadState[];
}

export type MessageFilter = (m: Message) => boolean;

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** Messages delivered so far, for assertions. */
  readonly delivered: Message[] = [];
  private readonly cut = new Set<string>();
  /** Return false to drop a message. */
  filter: MessageFilter = () => true;
  /** Observes every Ready as it is handed out, before the harness processes it (for assertions on Ready contents). */
  onReady: (hn: HarnessNode, rd: Ready) => void = () => {};

  constructor(
    voters: readonly number[],
    readonly options: Partial<RaftConfig> = {},
    readonly seed = 1,
  ) {
    for (const id of voters) this.add(id, MemoryStorage.bootstrap(voters));
  }

  /** Adds (or replaces, as after a restart) node `id` backed by `storage`. */
  add(id: NodeId, storage: MemoryStorage): HarnessNode {
    const node = new RawNode({ id, storage, random: new SeededRandom(this.seed * 1000 + id), ...this.options });
    const prev = this.nodes.get(id);
    const hn: HarnessNode = { id, node, storage, applied: prev?.applied ?? [], readStates: [] };
    this.nodes.set(id, hn);
    return hn;
  }

  /** Simulates a crash and restart: the node keeps only what its storage holds. */
  restart(id: NodeId): HarnessNode {
    const hn = this.get(id);
    hn.applied.length = 0;
    return this.add(id, hn.storage);
  }

  get(id: NodeId): HarnessNode {
    const hn = this.nodes.get(id);
    if (hn === undefined) throw new Error(`no node ${id}`);
    return hn;
  }

  /** Cuts (or restores) both directions between a and b. */
  isolate(a: NodeId, b: NodeId, cut = true): void {
    for (const key of [`${a}->${b}`, `${b}->${a}`]) {
      if (cut) this.cut.add(key);
      else this.cut.delete(key);
    }
  }

  /** Cuts node `id` off from everybody. */
  partition(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.isolate(id, other);
  }

  heal(): void {
    this.cut.clear();
    this.filter = () => true;
  }

  /** Processes every node's Ready and delivers messages until nothing moves (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const hn of this.nodes.values()) {
        if (!hn.node.hasReady()) continue;
        moved = true;
        this.processReady(hn);
      }
      if (!moved) return;
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  /** Handles one Ready of one node; its messages are delivered immediately (depth-first via the queue). */
  processReady(hn: HarnessNode): void {
    const rd = hn.node.ready();
    this.onReady(hn, rd);
    if (rd.snapshot !== undefined) {
      hn.storage.applySnapshot(rd.snapshot);
      hn.applied.length = 0;
    }
    hn.storage.append(rd.entries);
    if (rd.hardState !== undefined) hn.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.deliver(m);
    for (const e of rd.committedEntries) hn.applied.push(e);
    hn.readStates.push(...rd.readStates);
    hn.node.advance();
  }

  private deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`) || !this.filter(m)) return;
    const target = this.nodes.get(m.to);
    if (target === undefined) return;
    this.delivered.push(m);
    target.node.step(m);
  }

  /** Ticks every node `n` times, stabilizing after each tick. */
  tick(n = 1, only?: readonly NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const hn of this.nodes.values()) if (only === undefined || only.includes(hn.id)) hn.node.tick();
      this.stabilize();
    }
  }

  /** Campaigns on `id` and stabilizes. */
  elect(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  /** The current leader, if exactly one node believes it leads in the highest term. */
  leader(): HarnessNode | undefined {
    let best: HarnessNode | undefined;
    for (const hn of this.nodes.values()) {
      const s = hn.node.status();
      if (s.role === "leader" && (best === undefined || s.term > best.node.status().term)) best = hn;
    }
    return best;
  }

  /** Application data applied by `id`, decoded as text, no-ops and conf entries excluded. */
  appliedData(id: NodeId): string[] {
    const dec = new TextDecoder();
    return this.get(id).applied.filter((e) => e.type === "normal" && e.data.byteLength > 0).map((e) => dec.decode(e.data));
  }
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/**
 * A storage whose compaction point is index 0, term 0 (empty log, empty hard state) but which
 * knows the membership `voters`/`learners`: for tests that hand-build a log from index 1, such as
 * etcd's tables. A real group never looks like this: its founding members start from
 * `MemoryStorage.bootstrap`, a snapshot at index 1, term 1. Every node of a test that uses this
 * must be built the same way (or from a log that agrees with it), never mixed with bootstrapped ones.
 */
export function storageAtZero(voters: readonly number[], learners: readonly number[] = []): MemoryStorage {
  return new StorageAtZero({ voters: [...voters], learners: [...learners] });
}

/** MemoryStorage whose empty snapshot at index 0 carries a membership (applySnapshot cannot install one at index 0). */
class StorageAtZero extends MemoryStorage {
  constructor(private readonly conf: ConfState) {
    super();
  }

  override initialState(): InitialState {
    const st = super.initialState();
    return super.snapshot().metadata.index === 0 ? { hardState: st.hardState, confState: this.conf } : st;
  }

  override snapshot(): Snapshot {
    const snap = super.snapshot();
    return snap.metadata.index === 0 ? { ...snap, metadata: { ...snap.metadata, confState: this.conf } } : snap;
  }
}

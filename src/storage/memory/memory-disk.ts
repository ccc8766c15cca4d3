/**
 * The "disk" of the in-memory store: what survives a store being closed and opened again, with
 * the difference between written and durable. Writes made without sync are kept in `current`
 * only; a synced write makes everything before it durable. `crash()` goes back to the durable
 * state, as a power failure would (RocksDB's write-ahead log recovers a prefix of the writes,
 * and everything up to the last synced one).
 */
import type { GroupId, LogIndex } from "../../lib/ids.js";
import type { Entry, HardState, Snapshot } from "../../raft/index.js";
import { checksum } from "../entry-codec.js";
import { DataDirInUseError, IdentityMismatchError } from "../errors.js";
import type { NodeIdentity } from "../state-codec.js";
import type { CompactionPlan, GroupPlan } from "../write-plan.js";

/** One group as stored. Invariant: entries[k].index === snapshot index + 1 + k. */
export interface DiskGroup {
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
  snapshotCrc: number;
  entries: Entry[];
}

/** A change to the disk, as the store planned it. */
export type DiskOp =
  | { readonly kind: "write"; readonly plans: readonly GroupPlan[] }
  | { readonly kind: "compact"; readonly plan: CompactionPlan }
  | { readonly kind: "drop"; readonly group: GroupId };

interface DiskState {
  identity: NodeIdentity | undefined;
  readonly groups: Map<GroupId, DiskGroup>;
}

/** Something that holds a disk open and can be cut off by a crash. */
export interface DiskHolder {
  crashed(): void;
}

export class MemoryDisk {
  private current: DiskState = { identity: undefined, groups: new Map() };
  private durable: DiskState = { identity: undefined, groups: new Map() };
  private unsynced: DiskOp[] = [];
  private readonly damaged = new Set<string>();
  private holder: DiskHolder | undefined;

  /** A name for messages (stands in for the data directory). */
  constructor(readonly name = "memory-disk") {}

  /** Claims the disk for a store; throws {@link DataDirInUseError} while another holds it. */
  acquire(holder: DiskHolder): void {
    if (this.holder !== undefined) throw new DataDirInUseError(this.name);
    this.holder = holder;
  }

  release(holder: DiskHolder): void {
    if (this.holder === holder) this.holder = undefined;
  }

  /** Records or checks the owner, like the RocksDB store's identity record (always durable). */
  checkIdentity(expected: NodeIdentity): void {
    const stored = this.current.identity;
    if (stored === undefined) {
      this.current.identity = expected;
      this.durable.identity = expected;
    } else if (stored.clusterId !== expected.clusterId || stored.nodeId !== expected.nodeId) {
      throw new IdentityMismatchError(this.name, describe(stored), describe(expected));
    }
  }

  /** The groups as currently written (including unsynced writes: the process did not crash). */
  groups(): ReadonlyMap<GroupId, DiskGroup> {
    return this.current.groups;
  }

  /** Applies `op` (if any); with `sync`, everything written so far becomes durable. */
  apply(op: DiskOp | undefined, sync: boolean): void {
    if (op !== undefined) {
      applyOp(this.current, op);
      this.unsynced.push(op);
    }
    if (sync) {
      for (const o of this.unsynced) applyOp(this.durable, o);
      this.unsynced = [];
    }
  }

  /**
   * Loses every write made without sync since the last synced one, and cuts off the store that
   * holds the disk (its calls fail from now on). Open a new store on the disk to recover.
   */
  crash(): void {
    this.unsynced = [];
    this.current = cloneState(this.durable);
    const holder = this.holder;
    this.holder = undefined;
    holder?.crashed();
  }

  /** Marks the stored entry as damaged: opening a store or reading the entry then fails as a bad checksum would. */
  damageEntry(group: GroupId, index: LogIndex): void {
    this.damaged.add(`${group}/${index}`);
  }

  isDamaged(group: GroupId, index: LogIndex): boolean {
    return this.damaged.size > 0 && this.damaged.has(`${group}/${index}`);
  }
}

function describe(id: NodeIdentity): string {
  return `node ${id.nodeId} of cluster "${id.clusterId}"`;
}

function applyOp(state: DiskState, op: DiskOp): void {
  switch (op.kind) {
    case "write":
      for (const plan of op.plans) applyPlan(groupIn(state, plan.group), plan);
      return;
    case "compact":
      applyCompaction(groupIn(state, op.plan.group), op.plan);
      return;
    case "drop":
      state.groups.delete(op.group);
      return;
  }
}

function groupIn(state: DiskState, group: GroupId): DiskGroup {
  let g = state.groups.get(group);
  if (g === undefined) {
    g = { hardState: undefined, snapshot: undefined, snapshotCrc: 0, entries: [] };
    state.groups.set(group, g);
  }
  return g;
}

function applyPlan(g: DiskGroup, plan: GroupPlan): void {
  if (plan.snapshot !== undefined) {
    g.snapshot = plan.snapshot;
    g.snapshotCrc = checksum(plan.snapshot.data);
    g.entries = [];
  }
  if (plan.entries.length > 0) {
    const first = (g.snapshot?.metadata.index ?? 0) + 1;
    g.entries.length = plan.entries[0]!.index - first;
    for (const e of plan.entries) g.entries.push(e);
  }
  if (plan.hardState !== undefined) g.hardState = plan.hardState;
}

function applyCompaction(g: DiskGroup, plan: CompactionPlan): void {
  const first = (g.snapshot?.metadata.index ?? 0) + 1;
  g.entries = g.entries.slice(plan.snapshot.metadata.index + 1 - first);
  g.snapshot = plan.snapshot;
  g.snapshotCrc = checksum(plan.snapshot.data);
}

function cloneState(s: DiskState): DiskState {
  const groups = new Map<GroupId, DiskGroup>();
  for (const [id, g] of s.groups) groups.set(id, { ...g, entries: [...g.entries] });
  return { identity: s.identity, groups };
}

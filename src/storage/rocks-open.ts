/**
 * What the RocksDB store does when it opens: check who the data directory belongs to, then read
 * every group's records in one ordered pass and verify them before serving anything:
 *
 *  - every entry's checksum, and that entries run contiguously from the snapshot index + 1
 *    (a gap is a lost entry: the error names the first missing index);
 *  - the log ends where the log end record says (a truncated log), and the stored term runs
 *    equal the runs the entries themselves give;
 *  - the hard state's commit index is not beyond the last entry;
 *  - the snapshot metadata and data checksums, and that the data is present.
 *
 * Leftovers of interrupted operations are reported, not errors: entries at or below the snapshot
 * index (a compaction or snapshot install whose clean-up did not finish) and groups carrying a
 * drop marker (a `dropGroup` that did not finish). The store removes both before it opens.
 */
import type { GroupId, LogIndex } from "../lib/ids.js";
import type { Entry, HardState } from "../raft/index.js";
import { decodeEntry, checksum } from "./entry-codec.js";
import type { Engine } from "./engine.js";
import { IdentityMismatchError, StorageCorruptionError, StorageFormatError } from "./errors.js";
import { EntryWindow } from "./entry-window.js";
import type { RestoredGroup } from "./group-view.js";
import { allGroupsRange, GroupKeyKind, nodeMetaKey, parseGroupKey } from "./keys.js";
import type { ResolvedCacheOptions } from "./options.js";
import {
  decodeHardState,
  decodeIdentity,
  decodeLogEnd,
  decodeSnapshotMeta,
  decodeTermRun,
  encodeIdentity,
  STORAGE_FORMAT_VERSION,
  type NodeIdentity,
  type StoredSnapshotMeta,
} from "./state-codec.js";
import type { TermRun } from "./term-runs.js";

/**
 * Records `expected` as the owner of a new data directory, or checks that an existing one
 * belongs to it. Throws {@link IdentityMismatchError} or {@link StorageFormatError}.
 */
export async function checkIdentity(engine: Engine, expected: NodeIdentity): Promise<void> {
  const want = describe(expected);
  const stored = await engine.get(nodeMetaKey("identity"));
  if (stored === undefined) {
    for await (const _ of engine.scan(allGroupsRange(), { limit: 1 })) {
      throw new IdentityMismatchError(engine.dir, "no recorded node (yet it holds raft data)", want);
    }
    await engine.write([{ type: "put", key: nodeMetaKey("identity"), value: encodeIdentity(expected) }], true);
    return;
  }
  const decoded = decodeIdentity(stored);
  if ("malformed" in decoded) throw new StorageFormatError(engine.dir, decoded.malformed);
  if (decoded.format !== STORAGE_FORMAT_VERSION) throw new StorageFormatError(engine.dir, `format ${decoded.format}, this version reads ${STORAGE_FORMAT_VERSION}`);
  const { identity } = decoded;
  if (identity.clusterId !== expected.clusterId || identity.nodeId !== expected.nodeId) {
    throw new IdentityMismatchError(engine.dir, describe(identity), want);
  }
}

function describe(id: NodeIdentity): string {
  return `node ${id.nodeId} of cluster "${id.clusterId}"`;
}

/** Everything the open pass found. */
export interface ScanResult {
  readonly groups: Map<GroupId, RestoredGroup>;
  /** Groups whose drop did not finish. */
  readonly dropping: GroupId[];
  /** Groups with leftover entries at or below their snapshot index, up to `through`. */
  readonly stale: { readonly group: GroupId; readonly through: LogIndex }[];
}

/** Reads and verifies every group. Throws {@link StorageCorruptionError} at the first problem. */
export async function scanGroups(engine: Engine, options: ResolvedCacheOptions): Promise<ScanResult> {
  const result: ScanResult = { groups: new Map(), dropping: [], stale: [] };
  let current: GroupScanner | undefined;
  for await (const { key, value } of engine.scan(allGroupsRange())) {
    const k = parseGroupKey(key);
    if (k === undefined) throw new StorageCorruptionError(key.length >= 5 ? key.readUInt32BE(1) : 0, 0, `unknown key ${key.toString("hex")}`);
    if (current?.group !== k.group) {
      current?.finishInto(result);
      current = new GroupScanner(k.group, options);
    }
    current.accept(k.kind, k.index, value);
  }
  current?.finishInto(result);
  return result;
}

/** Accumulates one group's records, which arrive in key order (see keys.ts). */
class GroupScanner {
  private dropping = false;
  private hardState: HardState | undefined;
  private logEnd: LogIndex | undefined;
  private snap: StoredSnapshotMeta | undefined;
  private snapData: Uint8Array | undefined;
  private sawSnapData = false;
  private readonly storedRuns: TermRun[] = [];
  private readonly derivedRuns: TermRun[] = [];
  private next: LogIndex | undefined;
  private staleThrough: LogIndex | undefined;
  private readonly tail = new EntryWindow();

  constructor(readonly group: GroupId, private readonly options: ResolvedCacheOptions) {}

  accept(kind: GroupKeyKind, index: LogIndex, value: Buffer): void {
    if (kind === GroupKeyKind.dropMarker) this.dropping = true;
    if (this.dropping) return;
    switch (kind) {
      case GroupKeyKind.hardState:
        this.hardState = decodeHardState(this.group, value);
        return;
      case GroupKeyKind.logEnd:
        this.logEnd = decodeLogEnd(this.group, value);
        return;
      case GroupKeyKind.snapshotMeta:
        this.snap = decodeSnapshotMeta(this.group, value);
        return;
      case GroupKeyKind.snapshotData:
        this.acceptSnapshotData(value);
        return;
      case GroupKeyKind.termRun:
        this.storedRuns.push({ start: index, term: decodeTermRun(this.group, index, value) });
        return;
      case GroupKeyKind.entry:
        this.acceptEntry(index, value);
        return;
    }
  }

  private get snapshotIndex(): LogIndex {
    return this.snap?.metadata.index ?? 0;
  }

  private acceptSnapshotData(value: Buffer): void {
    this.sawSnapData = true;
    const meta = this.snap;
    if (meta === undefined) throw new StorageCorruptionError(this.group, 0, "snapshot data is stored without snapshot metadata");
    if (value.length !== meta.dataBytes || checksum(value) !== meta.dataCrc) {
      throw new StorageCorruptionError(this.group, meta.metadata.index, "snapshot data does not match its recorded size and checksum");
    }
    // Kept even when large: the host restores its state machine from it right after opening; the
    // view lets go of large data once it has handed it out.
    this.snapData = new Uint8Array(value.buffer, value.byteOffset, value.length);
  }

  private acceptEntry(index: LogIndex, value: Buffer): void {
    if (index <= this.snapshotIndex) {
      this.staleThrough = index;
      return;
    }
    const expected = this.next ?? this.snapshotIndex + 1;
    if (index !== expected) {
      throw new StorageCorruptionError(this.group, expected, `entry ${expected} is missing (the next stored entry is ${index})`);
    }
    const e = decodeEntry(this.group, index, value);
    this.deriveRun(e);
    this.tail.push(e);
    this.tail.trimToBytes(this.options.cacheBytesPerGroup);
    this.next = index + 1;
  }

  private deriveRun(e: Entry): void {
    const prev = this.derivedRuns[this.derivedRuns.length - 1];
    if (prev !== undefined && e.term < prev.term) {
      throw new StorageCorruptionError(this.group, e.index, `entry term ${e.term} is below the previous entry's term ${prev.term}`);
    }
    if (prev === undefined || e.term !== prev.term) this.derivedRuns.push({ start: e.index, term: e.term });
  }

  finishInto(result: ScanResult): void {
    if (this.dropping) {
      result.dropping.push(this.group);
      return;
    }
    if (this.snap !== undefined && !this.sawSnapData) throw new StorageCorruptionError(this.group, this.snapshotIndex, "snapshot data is missing");
    const lastIndex = (this.next ?? this.snapshotIndex + 1) - 1;
    this.checkLogEnd(lastIndex);
    this.checkRuns();
    const hardState = this.hardState ?? { term: 0, vote: 0, commit: 0 };
    if (hardState.commit > lastIndex) {
      throw new StorageCorruptionError(this.group, lastIndex + 1, `entries ${lastIndex + 1}..${hardState.commit} are missing: the hard state commits up to ${hardState.commit} but the log ends at ${lastIndex}`);
    }
    if (this.staleThrough !== undefined) result.stale.push({ group: this.group, through: this.staleThrough });
    result.groups.set(this.group, {
      hardState,
      snapshot: this.snap ?? { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, dataBytes: 0, dataCrc: 0 },
      snapshotData: this.snapData ?? new Uint8Array(),
      lastIndex,
      runs: this.derivedRuns,
      tail: this.tailEntries(),
    });
  }

  private checkLogEnd(lastIndex: LogIndex): void {
    const recorded = this.logEnd ?? this.snapshotIndex;
    if (this.logEnd === undefined && lastIndex > this.snapshotIndex) {
      throw new StorageCorruptionError(this.group, this.snapshotIndex + 1, "the log end record is missing but entries are stored");
    }
    if (recorded > lastIndex) {
      throw new StorageCorruptionError(this.group, lastIndex + 1, `entries ${lastIndex + 1}..${recorded} are missing: the log is recorded to end at ${recorded} but the stored entries end at ${lastIndex}`);
    }
    if (recorded < lastIndex || recorded < this.snapshotIndex) {
      throw new StorageCorruptionError(this.group, recorded + 1, `the log is recorded to end at ${recorded} but entries up to ${lastIndex} are stored`);
    }
  }

  private checkRuns(): void {
    const n = Math.max(this.storedRuns.length, this.derivedRuns.length);
    for (let k = 0; k < n; k++) {
      const s = this.storedRuns[k];
      const d = this.derivedRuns[k];
      if (s?.start === d?.start && s?.term === d?.term) continue;
      const at = Math.min(s?.start ?? Infinity, d?.start ?? Infinity);
      const what = s === undefined ? `no term run is stored for the entries from ${d!.start} (term ${d!.term})` : `the stored term run [${s.start} → ${s.term}] does not match the entries`;
      throw new StorageCorruptionError(this.group, at, `${what}; the log may be truncated`);
    }
  }

  private tailEntries(): Entry[] {
    const out: Entry[] = [];
    for (let i = this.tail.lo; i < this.tail.hi; i++) out.push(this.tail.get(i));
    return out;
  }
}

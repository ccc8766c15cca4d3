/**
 * Human-readable output of the CLI: aligned tables, and records as one line each (text or JSON).
 */
import type { FetchedRecord, TopicInfo } from "../client/index.js";

/** Left-aligned columns separated by two spaces; the first row is the header. */
export function table(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((r) => r.map(String));
  const widths: number[] = [];
  for (const r of cells) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n") + "\n";
}

/** A list of node ids, or "-" when empty. */
export function ids(list: readonly number[]): string {
  return list.length === 0 ? "-" : list.join(",");
}

/** A node id, or "none" for 0. */
export function leaderName(id: number): string {
  return id > 0 ? String(id) : "none";
}

/** The per-partition table of a topic. */
export function topicTable(topic: TopicInfo): string {
  const rows: Array<Array<string | number>> = [["PARTITION", "LEADER", "REPLICAS", "IN-SYNC", "TERM", "LOG-START", "HIGH-WATERMARK"]];
  for (const p of topic.partitions) {
    rows.push([p.partition, leaderName(p.leader), ids(p.replicas), ids(p.inSync), p.leaderTerm, p.logStartOffset, p.highWatermark]);
  }
  return table(rows);
}

/** Bytes as UTF-8 text when they are valid UTF-8, else undefined. */
export function utf8(bytes: Buffer): string | undefined {
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes) ? text : undefined;
}

/** Text, or `base64:...` for bytes that are not UTF-8; newlines and tabs escaped so a record stays on one line. */
export function printable(bytes: Buffer): string {
  const text = utf8(bytes);
  if (text === undefined) return `base64:${bytes.toString("base64")}`;
  return text.replace(/[\n\r\t\\]/g, (c) => ({ "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" })[c]!);
}

/** One record as a line: `PARTITION:OFFSET [key=K] [h=v ...] | BODY`. */
export function recordLine(r: FetchedRecord): string {
  const meta = [`${r.partition}:${r.offset}`];
  if (r.key !== null) meta.push(`key=${printable(r.key)}`);
  for (const h of r.headers) meta.push(`${h.key}=${printable(h.value)}`);
  return `${meta.join(" ")} | ${printable(r.body)}`;
}

/** One record as a JSON line; bytes that are not UTF-8 go in `*Base64` fields instead. */
export function recordJson(topic: string, r: FetchedRecord): string {
  const out: Record<string, unknown> = { topic, partition: r.partition, offset: r.offset };
  bytesField(out, "key", r.key);
  out["headers"] = r.headers.map((h) => bytesField({ key: h.key }, "value", h.value));
  bytesField(out, "body", r.body);
  Object.assign(out, {
    id: r.id,
    producerTimestampMs: r.producerTimestampMs,
    brokerTimestampMs: r.brokerTimestampMs,
    correlationId: r.correlationId,
    replyTo: r.replyTo,
    contentType: r.contentType,
    ttlMs: r.ttlMs,
    priority: r.priority,
    expired: r.expired,
  });
  return JSON.stringify(out);
}

function bytesField(out: Record<string, unknown>, name: string, bytes: Buffer | null): Record<string, unknown> {
  if (bytes === null) {
    out[name] = null;
    return out;
  }
  const text = utf8(bytes);
  if (text !== undefined) out[name] = text;
  else out[`${name}Base64`] = bytes.toString("base64");
  return out;
}

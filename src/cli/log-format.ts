/**
 * Turns a node's pino JSON log line into one readable line:
 *
 *   n2 12:03:04.567 INFO  [controller] became leader group=0 term=3
 *
 * The prefix names the node, then local time, level, the `component` binding, the message and the
 * remaining fields as key=value (strings with spaces and objects as JSON). A line that is not a
 * pino object (a crash trace on stderr, say) is passed through behind the same prefix.
 */

const LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const LEVEL_COLORS: Readonly<Record<number, string>> = { 10: "90", 20: "90", 30: "32", 40: "33", 50: "31", 60: "35" };
const NODE_COLORS = ["36", "35", "34", "33", "32", "96", "95", "94"];
/** Fields shown elsewhere in the line, or noise. */
const HIDDEN_FIELDS = new Set(["level", "time", "msg", "pid", "hostname", "node", "component", "v"]);

export interface LogFormatOptions {
  /** ANSI colors (for a terminal). */
  readonly color?: boolean;
}

/** One readable line for `line` from node `nodeId` (without a trailing newline). */
export function formatLogLine(nodeId: number, line: string, options: LogFormatOptions = {}): string {
  const paint = (code: string, text: string): string => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const prefix = paint(NODE_COLORS[(nodeId - 1) % NODE_COLORS.length] ?? "36", `n${nodeId}`);
  const entry = parseEntry(line);
  if (entry === undefined) return `${prefix} ${line}`;
  const level = typeof entry["level"] === "number" ? entry["level"] : 30;
  const levelName = (LEVELS[level] ?? String(entry["level"])).padEnd(5);
  const parts = [prefix, clockTime(entry["time"]), paint(LEVEL_COLORS[level] ?? "0", levelName)];
  if (typeof entry["component"] === "string") parts.push(`[${entry["component"]}]`);
  if (entry["msg"] !== undefined) parts.push(String(entry["msg"]));
  for (const [key, value] of Object.entries(entry)) {
    if (!HIDDEN_FIELDS.has(key)) parts.push(`${key}=${fieldValue(value)}`);
  }
  return parts.join(" ");
}

function parseEntry(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function clockTime(time: unknown): string {
  const date = typeof time === "number" || typeof time === "string" ? new Date(time) : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) return "--:--:--.---";
  const pad = (n: number, width = 2): string => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function fieldValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]*$/.test(value) && value !== "" ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * How a `raftmq` command is declared: its words ("topic create"), its options (parsed by
 * node:util parseArgs, strict), its positional arguments, and a run function. Help text is
 * rendered from the same declaration, so usage and parsing cannot drift apart.
 */
import { parseArgs } from "node:util";
import { connect, type RaftmqClient } from "../client/index.js";
import { systemClock } from "../client/system-clock.js";

/** Exit codes of the raftmq command. */
export const EXIT_OK = 0;
/** The operation failed (broker error, unreachable cluster, ...). */
export const EXIT_FAILURE = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;
/** Ctrl-C stopped a command that does not stop that way normally. */
export const EXIT_INTERRUPTED = 130;

/** What commands read and write; main.ts passes the process's, tests their own. */
export interface CliContext {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on the first SIGINT or SIGTERM: long-running commands stop cleanly. */
  readonly signal: AbortSignal;
}

/** A wrong command line; printed with a pointer to the command's help, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(message: string, readonly command?: CommandSpec) {
    super(message);
  }
}

export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** Placeholder of the value in help ("N", "HOST:PORT"). */
  readonly value?: string;
  readonly description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedCommand {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
}

export interface CommandSpec {
  /** The words that select it, e.g. ["topic", "create"]. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Positional arguments as shown in usage, e.g. "NAME" or "TOPIC [BODY]". */
  readonly args?: string;
  readonly positionalsMin?: number;
  readonly positionalsMax?: number;
  readonly description?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Adds --brokers and --timeout-ms. */
  readonly usesClient?: boolean;
  run(parsed: ParsedCommand, ctx: CliContext): Promise<number>;
}

/** Options every client command takes. */
export const CLIENT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  brokers: { type: "string", value: "HOST:PORT,...", description: "brokers to bootstrap from (env RAFTMQ_BROKERS; default 127.0.0.1:7001)" },
  "timeout-ms": { type: "string", value: "MS", description: "give up on an operation after this long, retries included (default 15000)" },
};

const HELP_OPTION: Readonly<Record<string, OptionSpec>> = {
  help: { type: "boolean", short: "h", description: "show this help" },
};

/** Every option of a command, in help order. */
export function allOptions(spec: CommandSpec): Record<string, OptionSpec> {
  return { ...spec.options, ...(spec.usesClient ? CLIENT_OPTIONS : {}), ...HELP_OPTION };
}

/** Parses `args` (the words after the command's path) strictly; UsageError on any mistake. */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedCommand {
  const options = Object.fromEntries(
    Object.entries(allOptions(spec)).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^.*?: /, "").replace(/\. To specify a positional.*$/s, ""), spec);
  }
  if (parsed.values["help"] === true) return { values: parsed.values as OptionValues, positionals: parsed.positionals };
  const min = spec.positionalsMin ?? 0;
  const max = spec.positionalsMax ?? 0;
  if (parsed.positionals.length < min) throw new UsageError(`missing ${spec.args ?? "arguments"}`, spec);
  if (parsed.positionals.length > max) throw new UsageError(`unexpected argument "${parsed.positionals[max]}"`, spec);
  return { values: parsed.values as OptionValues, positionals: parsed.positionals };
}

/** The usage line of a command. */
export function usageLine(spec: CommandSpec): string {
  return `raftmq ${spec.path.join(" ")}${spec.args ? ` ${spec.args}` : ""} [options]`;
}

/** The help text of a command, rendered from its declaration. */
export function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries(allOptions(spec)).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.value ? ` ${o.value}` : ""}${o.multiple ? " ..." : ""}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [`Usage: ${usageLine(spec)}`, "", spec.summary];
  if (spec.description) lines.push("", spec.description);
  lines.push("", "Options:", ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`));
  return lines.join("\n") + "\n";
}

/** A string option's value, if given (the last one when repeated). */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  if (Array.isArray(v)) return v.at(-1);
  return typeof v === "string" ? v : undefined;
}

/** An integer option in [min, max], or `fallback` when absent; UsageError naming the option otherwise. */
export function intOption(values: OptionValues, name: string, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? " up" : ` to ${max}`}, got "${raw}"`);
  }
  return n;
}

/** The value of a required string option; UsageError when missing. */
export function requiredOption(values: OptionValues, name: string, spec: CommandSpec): string {
  const v = stringOption(values, name);
  if (v === undefined || v === "") throw new UsageError(`--${name} is required`, spec);
  return v;
}

/** Parses "host:port"; UsageError naming `what` otherwise. */
export function hostPort(value: string, what: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value.trim());
  if (m === null || Number(m[2]) > 65_535) throw new UsageError(`${what}: "${value}" is not HOST:PORT`);
  return `${m[1]}:${Number(m[2])}`;
}

/** The broker list of a client command: --brokers, else $RAFTMQ_BROKERS, else 127.0.0.1:7001. */
export function brokerList(values: OptionValues, env: NodeJS.ProcessEnv): string[] {
  const raw = stringOption(values, "brokers") ?? env["RAFTMQ_BROKERS"] ?? "127.0.0.1:7001";
  const from = stringOption(values, "brokers") !== undefined ? "--brokers" : env["RAFTMQ_BROKERS"] !== undefined ? "RAFTMQ_BROKERS" : "the default";
  const list = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0) throw new UsageError(`${from} names no broker`);
  return list.map((b) => hostPort(b, from));
}

const CLI_TIMEOUT_MS_DEFAULT = 15_000;

/**
 * Runs `fn` with a client built from the command's --brokers and --timeout-ms; closes it after,
 * and on the first SIGINT/SIGTERM (pending calls then fail with ShuttingDownError).
 */
export async function withClient<T>(values: OptionValues, ctx: CliContext, fn: (client: RaftmqClient) => Promise<T>): Promise<T> {
  const deadlineMs = intOption(values, "timeout-ms", CLI_TIMEOUT_MS_DEFAULT, 1)!;
  const client = connect({
    brokers: brokerList(values, ctx.env),
    clock: systemClock,
    retry: { deadlineMs, attemptsMax: 1_000 },
    requestTimeoutMs: Math.max(deadlineMs, 1_000) + 5_000,
    produceTimeoutMs: Math.max(deadlineMs, 1_000),
    metadataTimeoutMs: Math.min(deadlineMs, 5_000),
  });
  const onAbort = (): void => void client.close();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await fn(client);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await client.close();
  }
}

/** Writes a line to a stream. */
export function println(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(text + "\n");
}

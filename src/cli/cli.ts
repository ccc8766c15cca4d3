/**
 * The `raftmq` command line: picks the command from its leading words ("topic create"), parses
 * the rest with node:util parseArgs (command.ts), runs it, and turns failures into a message on
 * stderr and an exit code: 0 success, 1 failure (the broker's message and error code), 2 usage,
 * 130 interrupted by Ctrl-C.
 */
import { readFileSync } from "node:fs";
import { BrokerError, RpcError, ShuttingDownError } from "../client/index.js";
import {
  commandHelp,
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  parseCommand,
  println,
  UsageError,
  usageLine,
  type CliContext,
  type CommandSpec,
} from "./command.js";
import { clusterStatusCommand, clusterUpCommand } from "./commands/cluster.js";
import { consumeCommand } from "./commands/consume.js";
import { groupDescribeCommand, groupListCommand, groupResetCommand } from "./commands/group.js";
import { requestCommand } from "./commands/request.js";
import { nodeCommand } from "./commands/node.js";
import { produceCommand } from "./commands/produce.js";
import { topicCreateCommand, topicDeleteCommand, topicDescribeCommand, topicListCommand } from "./commands/topic.js";

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  nodeCommand,
  clusterUpCommand,
  clusterStatusCommand,
  topicCreateCommand,
  topicListCommand,
  topicDescribeCommand,
  topicDeleteCommand,
  produceCommand,
  consumeCommand,
  groupListCommand,
  groupDescribeCommand,
  groupResetCommand,
  requestCommand,
];

/** Runs the command line `argv` (without the program name) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  try {
    return await dispatch(argv, ctx);
  } catch (error) {
    return report(error, ctx);
  }
}

async function dispatch(argv: readonly string[], ctx: CliContext): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    ctx.stderr.write(globalHelp());
    return EXIT_USAGE;
  }
  if (first === "--help" || first === "-h") return printed(ctx, globalHelp());
  if (first === "--version" || first === "-V") return printed(ctx, `raftmq ${version()}\n`);
  if (first === "help") return help(argv.slice(1), ctx);
  const spec = findCommand(argv);
  if (spec === undefined) return groupOrUnknown(argv, ctx);
  try {
    const parsed = parseCommand(spec, argv.slice(spec.path.length));
    if (parsed.values["help"] === true) return printed(ctx, commandHelp(spec));
    return await spec.run(parsed, ctx);
  } catch (error) {
    if (error instanceof UsageError && error.command === undefined) throw new UsageError(error.message, spec);
    throw error;
  }
}

/** The command whose path is the longest prefix of `argv`. */
function findCommand(argv: readonly string[]): CommandSpec | undefined {
  return COMMANDS.filter((c) => c.path.every((word, i) => argv[i] === word)).sort((a, b) => b.path.length - a.path.length)[0];
}

/** `raftmq topic` alone or with --help lists its subcommands; anything else is unknown. */
function groupOrUnknown(argv: readonly string[], ctx: CliContext): number {
  const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === argv[0]);
  if (group.length === 0) throw new UsageError(`unknown command "${argv[0]}"`);
  const second = argv[1];
  if (second === "--help" || second === "-h") return printed(ctx, groupHelp(argv[0]!, group));
  if (second === undefined) {
    ctx.stderr.write(groupHelp(argv[0]!, group));
    return EXIT_USAGE;
  }
  throw new UsageError(`unknown command "${argv[0]} ${second}"; the ${argv[0]} commands are: ${group.map((c) => c.path[1]).join(", ")}`);
}

function help(words: readonly string[], ctx: CliContext): number {
  if (words.length === 0) return printed(ctx, globalHelp());
  const spec = COMMANDS.find((c) => c.path.length === words.length && c.path.every((w, i) => words[i] === w));
  if (spec !== undefined) return printed(ctx, commandHelp(spec));
  const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === words[0]);
  if (group.length > 0 && words.length === 1) return printed(ctx, groupHelp(words[0]!, group));
  throw new UsageError(`no help for "${words.join(" ")}": unknown command`);
}

function printed(ctx: CliContext, text: string): number {
  ctx.stdout.write(text);
  return EXIT_OK;
}

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(" ").length + (c.args ? c.args.length + 1 : 0)));
  const rows = COMMANDS.map((c) => `  ${`${c.path.join(" ")}${c.args ? ` ${c.args}` : ""}`.padEnd(width)}  ${c.summary}`);
  return [
    "Usage: raftmq COMMAND [options]",
    "",
    "raftmq is a clustered message broker: topics of Raft-replicated partitions.",
    "",
    "Commands:",
    ...rows,
    "",
    "Client commands take --brokers HOST:PORT,... (env RAFTMQ_BROKERS; default 127.0.0.1:7001).",
    'Run "raftmq COMMAND --help" for a command\'s options.',
    "Exit codes: 0 success, 1 failure, 2 wrong usage, 130 interrupted.",
    "",
  ].join("\n");
}

function groupHelp(group: string, specs: readonly CommandSpec[]): string {
  return [`Usage: raftmq ${group} COMMAND [options]`, "", "Commands:", ...specs.map((s) => `  ${usageLine(s).padEnd(48)}  ${s.summary}`), ""].join("\n");
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Prints a failure and returns its exit code. */
function report(error: unknown, ctx: CliContext): number {
  if (error instanceof UsageError) {
    println(ctx.stderr, `raftmq: ${error.message}`);
    println(ctx.stderr, error.command ? `Usage: ${usageLine(error.command)}\nRun "raftmq ${error.command.path.join(" ")} --help" for details.` : 'Run "raftmq --help" for the commands.');
    return EXIT_USAGE;
  }
  if (ctx.signal.aborted && error instanceof ShuttingDownError) {
    println(ctx.stderr, "raftmq: interrupted");
    return EXIT_INTERRUPTED;
  }
  if (error instanceof BrokerError || error instanceof RpcError) {
    println(ctx.stderr, `raftmq: error: ${error.message} [${error.code}]`);
    if (error.code === "UNAVAILABLE") {
      println(ctx.stderr, "Is the cluster running? Start one with `raftmq cluster up`, or point --brokers (or RAFTMQ_BROKERS) at it.");
    }
    return EXIT_FAILURE;
  }
  const e = error instanceof Error ? error : new Error(String(error));
  println(ctx.stderr, `raftmq: ${e.message}`);
  if (ctx.env["RAFTMQ_DEBUG"]) println(ctx.stderr, e.stack ?? "");
  return EXIT_FAILURE;
}

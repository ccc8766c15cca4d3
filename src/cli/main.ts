#!/usr/bin/env node
/**
 * The `raftmq` executable. The first SIGINT or SIGTERM asks the running command to stop cleanly
 * (a node closes, a cluster stops its processes, a consumer ends); a second one exits at once.
 * See cli.ts for the commands and exit codes.
 */
import { runCli } from "./cli.js";

/** After the command returns, how long pending output may take before the process is made to exit. */
const EXIT_GRACE_MS = 2_000;
const EXIT_SIGNALLED_TWICE = 130;

const stop = new AbortController();
const onSignal = (signal: NodeJS.Signals): void => {
  if (!stop.signal.aborted) {
    stop.abort(new Error(`received ${signal}`));
    return;
  }
  process.stderr.write(`raftmq: ${signal} again: exiting at once\n`);
  process.exit(EXIT_SIGNALLED_TWICE);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  // The reader went away (`raftmq consume t | head`): nothing more to say.
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: stop.signal,
});
process.exitCode = code;
setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();

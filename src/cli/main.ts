#!/usr/bin/env node
/**
 * The `raftmq` command. Today only the Raft core and its simulator exist; the broker commands
 * (`node`, `cluster up`, `topic`, `produce`, `consume`) arrive with the first real cluster.
 */
const args = process.argv.slice(2);
const command = args.join(" ");
process.stderr.write(
  `raftmq: "${command}" is not available yet: this build contains the Raft core and its simulator only.\n` +
    "Run `npm test` for the tests, or `npm run sim -- --runs 1000` for a simulator search.\n",
);
process.exitCode = 2;

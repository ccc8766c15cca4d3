/**
 * The Node.js flags a broker node should run with, and the check that it does.
 *
 * `--initial-old-space-size=256`: a node moves record batches through many short-lived Buffers
 * (gRPC receive, Raft entries, RocksDB writes, peer frames). Their memory lives outside the V8
 * heap, but V8 counts it against the heap's growing limit, which starts at a few tens of MiB for a
 * node whose own heap is small (about 20 MiB). Under load that limit was reached every 100-150 ms:
 * 8-10 full mark-compact collections a second per node, each marking the whole heap. Starting
 * the limit at 256 MiB cut them to one every few seconds and raised produce throughput by about
 * 30% (cluster/bench/README.md, "Findings"). It reserves nothing: RSS grows only by the garbage
 * that waits longer for a collection (tens of MiB under full load).
 *
 * V8 reads the flag only at start-up (not from NODE_OPTIONS, not from v8.setFlagsFromString), so
 * whoever starts the node passes it: LocalCluster (`raftmq cluster up`, `npm start`, the
 * benchmark, the chaos tests) does; an operator runs `node --initial-old-space-size=256
 * dist/src/cli/main.js node ...`. A node started without it works, and logs how to start it.
 */

export const NODE_RUNTIME_FLAGS: readonly string[] = ["--initial-old-space-size=256"];

/** The flags of {@link NODE_RUNTIME_FLAGS} that `execArgv` (the process's Node.js flags) lacks, by name. */
export function missingRuntimeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split("=")[0]!.replaceAll("_", "-");
  const given = new Set(execArgv.map(name));
  return NODE_RUNTIME_FLAGS.filter((f) => !given.has(name(f)));
}

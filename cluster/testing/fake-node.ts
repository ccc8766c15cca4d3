/**
 * A stand-in for `raftmq node` in LocalCluster tests: same command line, but it serves the
 * in-memory fake broker (src/client/testing) on --listen instead of a real node, prints pino-style
 * JSON log lines, reports a controller leader (the lowest peer id) after FAKE_ELECTION_MS, and
 * exits 0 on SIGTERM. Test knobs from the environment:
 *   FAKE_ELECTION_MS          delay before a controller leader is known (default 100)
 *   FAKE_IGNORE_SIGTERM=1     ignore SIGTERM (to test the SIGKILL escalation)
 *   FAKE_FAIL_NODE=N          node N logs an error and exits 3 at start
 */
import { parseArgs } from "node:util";
import { FakeCluster } from "../../src/client/testing/fake-broker.js";
import { parsePeers } from "../../src/cli/commands/node.js";

const { values } = parseArgs({
  args: process.argv.slice(3), // after "node"
  options: {
    id: { type: "string" }, listen: { type: "string" }, peers: { type: "string" }, data: { type: "string" }, "log-level": { type: "string" },
  },
  strict: false,
});
const id = Number(values["id"]);
const log = (level: number, msg: string, fields: object = {}): void => {
  process.stdout.write(JSON.stringify({ level, time: Date.now(), node: id, ...fields, msg }) + "\n");
};

if (Number(process.env["FAKE_FAIL_NODE"]) === id) {
  log(50, "cannot open the data directory", { data: values["data"] });
  process.exit(3);
}
const peers = parsePeers(String(values["peers"]));
const cluster = await FakeCluster.start({ nodes: peers, serve: [id], controllerLeader: 0, clusterId: "fake-local" });
log(30, "node started", { component: "server", listen: values["listen"] });
const election = setTimeout(() => {
  cluster.controllerLeader = Math.min(...peers.keys());
  log(30, "became leader", { group: 0, term: 1 });
}, Number(process.env["FAKE_ELECTION_MS"] ?? 100));

process.on("SIGTERM", () => {
  if (process.env["FAKE_IGNORE_SIGTERM"] === "1") {
    log(40, "ignoring SIGTERM");
    return;
  }
  clearTimeout(election);
  void cluster.close().then(() => {
    log(30, "node stopped");
    process.exit(0);
  });
});

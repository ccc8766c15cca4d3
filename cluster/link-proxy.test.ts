/**
 * LinkProxy against a loopback echo server, and the link states LinkMesh's fault helpers produce.
 * Every wait is a bounded poll or a fixed quiet window; every server, socket and timer is closed by
 * the end of its test (the last test checks that no TCP handle or timer is left behind).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { LinkProxy, splitHostPort, joinHostPort } from "./link-proxy.js";
import { LinkMesh } from "./link-mesh.js";

const WAIT_MS = 5_000;
/** How long "nothing arrives" is watched for. */
const QUIET_MS = 200;

/** An echo server on 127.0.0.1 that tracks its sockets, closed after the test. */
async function echoServer(t: TestContext): Promise<{ server: Server; address: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, sockets };
}

async function proxyTo(t: TestContext, target: string): Promise<LinkProxy> {
  const proxy = await LinkProxy.start({ target });
  t.after(() => proxy.close());
  return proxy;
}

/** A client connection that records what it receives and how it ended. */
interface Client {
  readonly socket: Socket;
  received: string;
  error: NodeJS.ErrnoException | undefined;
  closed: boolean;
}

async function dial(t: TestContext, address: string): Promise<Client> {
  const [host, port] = splitHostPort(address);
  const socket = createConnection({ host, port, noDelay: true });
  const client: Client = { socket, received: "", error: undefined, closed: false };
  socket.on("data", (d: Buffer) => (client.received += d.toString()));
  socket.on("error", (e) => (client.error = e));
  socket.on("close", () => (client.closed = true));
  t.after(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return client;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function echoes(t: TestContext, proxy: LinkProxy, text = "ping"): Promise<void> {
  const c = await dial(t, proxy.address);
  c.socket.write(text);
  await waitFor(`the echo of "${text}"`, () => c.received === text);
  c.socket.destroy();
}

async function assertReset(c: Client, what: string): Promise<void> {
  await waitFor(`${what} to be reset`, () => c.closed);
  assert.equal(c.error?.code, "ECONNRESET", `${what}: ${c.error?.message ?? "closed without an error"}`);
}

test("pass forwards both ways and counts the bytes", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  assert.match(proxy.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(proxy.target, echo.address);
  const c = await dial(t, proxy.address);
  c.socket.write("hello ");
  c.socket.write("world");
  await waitFor("the echo", () => c.received === "hello world");
  assert.deepEqual(proxy.stats, { connectionsAccepted: 1, connectionsOpen: 1, bytesToTarget: 11, bytesFromTarget: 11, bytesDiscarded: 0, resets: 0 });
  c.socket.end();
  await waitFor("the connection to close on both sides", () => c.closed && proxy.stats.connectionsOpen === 0);
  assert.equal(c.error, undefined);
});

test("delay adds at least delayMs each way and keeps the order, also across a change", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  proxy.delayMs = 100;
  const c = await dial(t, proxy.address);
  const started = performance.now();
  c.socket.write("a");
  await waitFor("the delayed echo", () => c.received === "a");
  const roundTripMs = performance.now() - started;
  assert.ok(roundTripMs >= 200, `a round trip took ${roundTripMs.toFixed(1)} ms, expected at least 2 × 100`);
  let expected = "a";
  for (let i = 0; i < 50; i++) {
    if (i === 25) proxy.delayMs = 0; // later chunks are due earlier, but must not overtake
    c.socket.write(`${i},`);
    expected += `${i},`;
    if (i % 10 === 0) await sleep(3);
  }
  await waitFor("every chunk, in order", () => c.received.length >= expected.length);
  assert.equal(c.received, expected);
  assert.throws(() => (proxy.delayMs = -1), /delayMs must be an integer from 0 to 60000/);
});

test("blackhole: accepted but silent; pass resets what lost bytes, keeps what did not, and new connections work", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  const idle = await dial(t, proxy.address);
  const quiet = await dial(t, proxy.address);
  idle.socket.write("x");
  quiet.socket.write("q");
  await waitFor("the first echoes", () => idle.received === "x" && quiet.received === "q");
  proxy.mode = "blackhole";
  const talking = await dial(t, proxy.address); // still accepted
  talking.socket.write("lost");
  idle.socket.write("lost too");
  const fresh = await dial(t, proxy.address); // accepted while blackholed, silent
  await sleep(QUIET_MS);
  assert.deepEqual([talking.received, idle.received, talking.closed, idle.closed], ["", "x", false, false], "nothing forwarded, nothing closed");
  assert.equal(echo.sockets.size, 2, "a blackholed proxy does not dial the target");
  assert.equal(proxy.stats.bytesDiscarded, "lost".length + "lost too".length);
  proxy.mode = "pass";
  await assertReset(talking, "a connection that lost bytes");
  await assertReset(idle, "an idle connection that then lost bytes");
  fresh.socket.write("now");
  quiet.socket.write("still");
  await waitFor("the connections that lost nothing to go on", () => fresh.received === "now" && quiet.received === "qstill");
  await echoes(t, proxy);
  assert.equal(proxy.stats.resets, 2);
});

test("refuse resets existing connections and new ones at once", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  const before = await dial(t, proxy.address);
  before.socket.write("x");
  await waitFor("the echo", () => before.received === "x");
  proxy.mode = "refuse";
  await assertReset(before, "the existing connection");
  const [host, port] = splitHostPort(proxy.address);
  const after = createConnection({ host, port });
  t.after(() => {
    after.destroy();
  });
  const error = await new Promise<NodeJS.ErrnoException>((resolve) => after.on("error", resolve));
  assert.equal(error.code, "ECONNRESET");
  await waitFor("echo server connections to end", () => echo.sockets.size === 0);
  proxy.mode = "pass";
  await echoes(t, proxy);
  assert.equal(proxy.stats.resets, 2);
});

test("resetConnections resets both sides of every connection and keeps passing", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  const a = await dial(t, proxy.address);
  const b = await dial(t, proxy.address);
  a.socket.write("a");
  b.socket.write("b");
  await waitFor("both echoes", () => a.received === "a" && b.received === "b");
  assert.equal(echo.sockets.size, 2);
  assert.equal(proxy.resetConnections(), 2);
  await assertReset(a, "connection a");
  await assertReset(b, "connection b");
  await waitFor("the target's side to be reset too", () => echo.sockets.size === 0);
  await echoes(t, proxy);
});

test("a target that refuses or resets is passed on as a reset, never as an unhandled error", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  const c = await dial(t, proxy.address);
  c.socket.write("x");
  await waitFor("the echo", () => c.received === "x");
  for (const s of echo.sockets) s.resetAndDestroy();
  await assertReset(c, "a connection whose target reset");
  await new Promise((resolve) => echo.server.close(resolve)); // now nothing listens at the target
  const refused = await dial(t, proxy.address);
  refused.socket.write("anyone?");
  await assertReset(refused, "a connection whose target refused");
});

test("dropFor: silent for the window, then the connections that lived through it are reset and the link passes", async (t) => {
  const echo = await echoServer(t);
  const proxy = await proxyTo(t, echo.address);
  const c = await dial(t, proxy.address);
  const window = proxy.dropFor(300);
  assert.equal(proxy.effectiveMode, "blackhole");
  assert.equal(proxy.mode, "pass", "the mode itself is unchanged");
  c.socket.write("lost");
  await sleep(QUIET_MS);
  assert.deepEqual([c.received, c.closed], ["", false]);
  await window;
  assert.equal(proxy.effectiveMode, "pass");
  await assertReset(c, "the connection that lived through the window");
  await echoes(t, proxy);
  assert.throws(() => proxy.dropFor(0), /dropFor: ms must be an integer from 1/);
});

test("close is idempotent and leaves no socket, server or timer behind", async (t) => {
  const echo = await echoServer(t);
  const baseline = handles();
  const proxy = await LinkProxy.start({ target: echo.address });
  const c = await dial(t, proxy.address);
  c.socket.write("x");
  await waitFor("the echo", () => c.received === "x");
  proxy.delayMs = 1_000;
  c.socket.write("queued"); // a delay timer is pending
  const window = proxy.dropFor(60_000); // and a drop timer
  assert.ok(!sameHandles(handles(), baseline), "the check sees the proxy's handles while it is open");
  const [first, second] = [proxy.close(), proxy.close()];
  assert.equal(first, second);
  await Promise.all([first, window]);
  await waitFor("the client to see the end", () => c.closed);
  await waitFor("every handle of the proxy to be released", () => sameHandles(handles(), baseline), 2_000);
  await proxy.close();
  assert.equal(proxy.stats.connectionsOpen, 0);
});

/** Counts of active TCP handles and timers (the echo server is part of the baseline). */
function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (r.startsWith("TCP") || r === "Timeout") counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

function sameHandles(a: Map<string, number>, b: Map<string, number>): boolean {
  return [...new Set([...a.keys(), ...b.keys()])].every((k) => (a.get(k) ?? 0) <= (b.get(k) ?? 0));
}

// ------------------------------------------------------------------------------------- mesh

/** A mesh over nodes 1..n whose targets are never dialled (no test connects through it). */
async function mesh(t: TestContext, n: number): Promise<LinkMesh> {
  const m = await LinkMesh.start(new Map(Array.from({ length: n }, (_, i) => [i + 1, `127.0.0.1:${40_000 + i}`])));
  t.after(() => m.close());
  return m;
}

/** The links that are not passing, as "from→to mode". */
function blocked(m: LinkMesh): string[] {
  return m.links().filter(([f, to]) => m.link(f, to).mode !== "pass").map(([f, to]) => `${f}→${to} ${m.link(f, to).mode}`);
}

test("mesh: one proxy per directed link, routes per node, and the fault helpers' link states", async (t) => {
  const m = await mesh(t, 4);
  assert.deepEqual(m.ids, [1, 2, 3, 4]);
  assert.equal(m.links().length, 12);
  const routes = m.routesFor(2);
  assert.deepEqual([...routes.keys()], [1, 3, 4]);
  assert.equal(routes.get(3), m.link(2, 3).address);
  assert.equal(m.link(2, 3).target, "127.0.0.1:40002");
  assert.equal(new Set(m.links().map(([f, to]) => m.link(f, to).address)).size, 12, "every link has its own proxy");
  assert.throws(() => m.link(1, 1), /no link from node 1 to itself/);
  assert.throws(() => m.routesFor(5), /no node 5: the mesh has nodes 1,2,3,4/);
  assert.equal(m.describe(), "all links pass");

  m.isolate(1);
  assert.deepEqual(blocked(m), ["1→2 blackhole", "1→3 blackhole", "1→4 blackhole", "2→1 blackhole", "3→1 blackhole", "4→1 blackhole"]);
  m.heal();
  assert.deepEqual(blocked(m), []);

  m.partition([[1, 2], [3, 4]], "refuse");
  assert.deepEqual(blocked(m), ["1→3 refuse", "1→4 refuse", "2→3 refuse", "2→4 refuse", "3→1 refuse", "3→2 refuse", "4→1 refuse", "4→2 refuse"]);
  m.heal();
  m.partition([[1], [2]]);
  assert.deepEqual(blocked(m), ["1→2 blackhole", "2→1 blackhole"], "nodes in no group keep their links");
  assert.throws(() => m.partition([[1, 2], [2, 3]]), /node 2 is in more than one group/);
  m.heal();

  m.oneWay(1, 2);
  assert.deepEqual(blocked(m), ["1→2 blackhole"]);
  m.oneWay(3, 4, "refuse"); // faults stack
  assert.deepEqual(blocked(m), ["1→2 blackhole", "3→4 refuse"]);
  m.heal();

  m.bridge([1], [3, 4], 2);
  assert.deepEqual(blocked(m), ["1→3 blackhole", "1→4 blackhole", "3→1 blackhole", "4→1 blackhole"]);
  assert.throws(() => m.bridge([1, 2], [3], 2), /node 2 is the bridge/);
  m.setDelay(20, [[2, 1]]);
  assert.equal(m.describe(), "1→3 blackhole\n1→4 blackhole\n2→1 delay 20 ms\n3→1 blackhole\n4→1 blackhole");
  m.heal();
  assert.equal(m.describe(), "all links pass");
  assert.equal(m.link(2, 1).delayMs, 0, "heal clears delays");

  const dropping = m.dropFor(50, [[4, 3]]);
  assert.equal(m.describe(), "4→3 dropping");
  await dropping;
  assert.equal(m.describe(), "all links pass");
  assert.equal(m.resetAll(), 0);
  await m.close();
  await m.close();
});

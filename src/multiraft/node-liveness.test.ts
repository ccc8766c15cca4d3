import { test } from "node:test";
import assert from "node:assert/strict";
import { NodeLiveness } from "./node-liveness.js";

test("node liveness: a keep-alive goes to each known peer that was sent nothing since the last tick", () => {
  const l = new NodeLiveness(10);
  assert.deepEqual(l.tick().keepAlive, [], "no peer known yet");
  l.onSent(2);
  l.onHeard(3);
  assert.deepEqual(l.tick().keepAlive, [3], "2 was sent something during this tick");
  assert.deepEqual(l.tick().keepAlive, [2, 3]);
  l.onSent(3);
  l.onSent(3);
  assert.deepEqual(l.tick().keepAlive, [2]);
});

test("node liveness: a peer silent for more than silenceTicks ticks is reported once, until heard from again", () => {
  const l = new NodeLiveness(10);
  l.onHeard(2);
  l.onHeard(3);
  for (let t = 1; t <= 10; t++) {
    l.onHeard(3);
    assert.deepEqual(l.tick().fellSilent, [], `tick ${t}: 2 silent for ${t} ticks`);
  }
  l.onHeard(3);
  assert.deepEqual(l.tick().fellSilent, [2], "11 ticks of silence");
  assert.equal(l.silentTicks(2), 11);
  for (let t = 0; t < 30; t++) {
    l.onHeard(3);
    assert.deepEqual(l.tick().fellSilent, [], "reported once");
  }
  assert.equal(l.onHeard(2), true, "2 is back");
  assert.equal(l.onHeard(2), false);
  assert.equal(l.onHeard(3), false);
  for (let t = 0; t < 10; t++) assert.deepEqual(l.tick().fellSilent, []);
  assert.deepEqual(l.tick().fellSilent, [2, 3], "both silent, 11 ticks after they were last heard from");
});

test("node liveness: a peer only ever sent to counts as heard at the first send", () => {
  const l = new NodeLiveness(3);
  l.tick();
  l.onSent(4);
  for (let t = 0; t < 3; t++) assert.deepEqual(l.tick().fellSilent, []);
  assert.deepEqual(l.tick().fellSilent, [4]);
});

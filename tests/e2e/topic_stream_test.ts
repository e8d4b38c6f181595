/**
 * Channels with `/` levels, topic-filter streams (`?topic=sensors/+/temp`),
 * and current values first (`?rewind=N`), end to end on the hub.
 */

import assert from "node:assert/strict";
import { publish, request, subscribe, testHub, until, within } from "./_hub.ts";

async function idOf(port: number, channel: string, data: string): Promise<string> {
  const res = await publish(port, `/events/${channel}`, data);
  assert.equal(res.status, 202, res.body);
  return JSON.parse(res.body).id;
}

Deno.test("channels have /-separated levels: publish and subscribe to sensors/kitchen/temp", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const s = await subscribe(port, "/events/sensors/kitchen/temp");
  await using _s = s.client;
  await until(() => hub.events.count() === 1, "subscribed");
  await idOf(port, "sensors/kitchen/temp", "21.5");
  await within(s.client.readEvents(s.parser, 1), "event");
  assert.deepEqual(s.parser.events.map((e) => [e.type, e.data]), [["message", "21.5"]]);
  for (const bad of ["sensors//temp", "sensors/kitchen/", "a:b", "x/%20y", "./a"]) {
    assert.equal((await request(port, "GET", `/events/${bad}`)).status, 400, bad);
  }
});

Deno.test("a topic filter stream sees matching channels that appear after it connected, tagged", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const f = await subscribe(port, "/events?topic=sensors/%2B/temp");
  await using _f = f.client;
  await until(() => hub.events.count() === 1, "subscribed");
  await idOf(port, "sensors/hall/temp", "19");
  await idOf(port, "sensors/hall/humidity", "40");
  await idOf(port, "sensors/attic/temp", "12");
  await within(f.client.readEvents(f.parser, 2), "matching events");
  assert.deepEqual(f.parser.events.map((e) => [e.type, e.data]), [
    ["sensors/hall/temp", "19"],
    ["sensors/attic/temp", "12"],
  ]);
  const g = await subscribe(port, "/events?topic=sensors/%23");
  await using _g = g.client;
  await until(() => hub.events.count() === 2, "second subscribed");
  await idOf(port, "sensors/hall/humidity", "41");
  await within(g.client.readEvents(g.parser, 1), "hash filter");
  assert.equal(g.parser.events[0].type, "sensors/hall/humidity");
  for (const bad of ["topic=a/%23/b", "topic=a%2Bb", "topic=", "topic=a//b"]) {
    assert.equal((await request(port, "GET", `/events?${bad}`)).status, 400, bad);
  }
});

Deno.test("Last-Event-ID on a filter stream replays the matched channels in id order", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const first = await idOf(port, "sensors/a/temp", "1");
  await idOf(port, "sensors/b/temp", "2");
  await idOf(port, "other/c/temp", "no");
  await idOf(port, "sensors/a/temp", "3");
  const f = await subscribe(port, "/events?topic=sensors/%2B/temp", { "Last-Event-ID": first });
  await using _f = f.client;
  await within(f.client.readEvents(f.parser, 2), "replay");
  assert.deepEqual(f.parser.events.map((e) => [e.type, e.data]), [
    ["sensors/b/temp", "2"],
    ["sensors/a/temp", "3"],
  ]);
});

Deno.test("?rewind=N sends the newest N events of each channel before live ones", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  await idOf(port, "sensors/a/state", "a1");
  await idOf(port, "sensors/b/state", "b1");
  const a2 = await idOf(port, "sensors/a/state", "a2");
  const one = await subscribe(port, "/events/sensors/a/state?rewind=1");
  await using _o = one.client;
  await within(one.client.readEvents(one.parser, 1), "current value");
  assert.deepEqual(one.parser.events.map((e) => [e.data, e.lastEventId]), [["a2", a2]]);
  const all = await subscribe(port, "/events?topic=sensors/%23&rewind=1");
  await using _a = all.client;
  await within(all.client.readEvents(all.parser, 2), "current values");
  assert.deepEqual(all.parser.events.map((e) => [e.type, e.data]), [
    ["sensors/b/state", "b1"],
    ["sensors/a/state", "a2"],
  ]);
  await until(() => hub.events.count() === 2, "both live");
  await idOf(port, "sensors/a/state", "a3");
  await within(one.client.readEvents(one.parser, 2), "live after rewind");
  assert.equal(one.parser.events[1].data, "a3");
  for (const bad of ["rewind=-1", "rewind=x", "rewind=1001"]) {
    assert.equal((await request(port, "GET", `/events/a?${bad}`)).status, 400, bad);
  }
});

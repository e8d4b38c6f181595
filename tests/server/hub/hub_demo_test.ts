import assert from "node:assert/strict";
import { startHub } from "../../../server/hub/hub.ts";
import { RawClient } from "../../_util/raw_client.ts";

Deno.test("startHub with demo publishes sensor changes on channel sensors as event 'event'", async () => {
  await using hub = startHub({
    port: 0,
    hostname: "127.0.0.1",
    demo: { minIntervalMs: 5, maxIntervalMs: 20 },
  });
  const { client, head, parser } = await RawClient.stream(hub.server.addr.port, "/events/sensors");
  await using _ = client;
  assert.equal(head.status, 200);
  await client.readEvents(parser, 3);
  const ids = new Set<string>();
  for (const e of parser.events.slice(0, 3)) {
    assert.equal(e.type, "event");
    const msg = JSON.parse(e.data);
    assert.equal(msg.TYPE, "STATE");
    const [name] = Object.keys(msg).filter((k) => k !== "TYPE");
    assert.ok(name === "sensorA" || name === "sensorB", e.data);
    assert.notEqual(msg[name].state, msg[name].prevState);
    assert.notEqual(e.lastEventId, "", "demo events carry ids");
    ids.add(e.lastEventId);
  }
  assert.equal(ids.size, 3, "ids are distinct");
});

Deno.test("startHub refuses a bad demo interval before listening", () => {
  assert.throws(
    () => startHub({ port: 0, demo: { minIntervalMs: 10, maxIntervalMs: 1 } }),
    RangeError,
  );
});

import assert from "node:assert/strict";
import { serve } from "../../mod.ts";
import { RawClient } from "../_util/raw_client.ts";
import { SseParser } from "../_util/sse_parser.ts";
import { sleep, until, within } from "./_replay_util.ts";

const CLIENTS = 200;
const EVENTS = 3000;
const MAX_CUTS = 8;

/**
 * One storm client: reads the stream, cuts the connection at random points
 * (mid-event too: the partial event is discarded) and reconnects, as a
 * browser does, with the last event id of the last complete block it read
 * (an event, or the id-only block the server sends first), until it has
 * `EVENTS` events. Returns the data it received, in order.
 */
async function stormClient(port: number, rand: () => number, onReplay: () => void) {
  const received: string[] = [];
  const gaps: string[] = [];
  let lastId: string | undefined;
  let cuts = 0;
  while (received.length < EVENTS) {
    const headers: Record<string, string> = lastId === undefined ? {} : { "Last-Event-ID": lastId };
    const { client, head } = await RawClient.stream(port, "/events", headers);
    if (lastId !== undefined) onReplay();
    assert.equal(head.status, 200);
    const parser = new SseParser();
    let blocks = "";
    try {
      for (;;) {
        if (!client.buffer && !(await client.readMore())) {
          throw new Error("server closed the stream");
        }
        let text = client.buffer;
        client.buffer = "";
        // A client cut before it ever got an id has no way to resume (in a
        // browser too): cut only once the first block has set one.
        const cut = lastId !== undefined && cuts < MAX_CUTS && rand() < 0.25;
        // Cut anywhere in what arrived: the rest is lost, a partial event discarded.
        if (cut) text = text.slice(0, Math.floor(rand() * text.length));
        parser.feed(text);
        // The browser's "last event ID string": set by complete blocks only.
        blocks += text;
        for (let end = blocks.indexOf("\n\n"); end >= 0; end = blocks.indexOf("\n\n")) {
          for (const line of blocks.slice(0, end).split("\n")) {
            if (line.startsWith("id: ")) lastId = line.slice(4);
          }
          blocks = blocks.slice(end + 2);
        }
        for (const e of parser.events.splice(0)) {
          if (e.type === "sluice.gap") gaps.push(e.data);
          else received.push(e.data);
        }
        if (received.length >= EVENTS) break;
        if (cut) {
          cuts++;
          await sleep(Math.floor(rand() * 20)); // away for a moment, while publishing goes on
          break;
        }
      }
    } finally {
      client.close();
    }
  }
  return { received, gaps, cuts };
}

/** A small deterministic generator, so a failure can be replayed. */
function mulberry32(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test(`reconnect storm: ${CLIENTS} clients cut at random points and resuming with Last-Event-ID each receive the published sequence exactly`, async () => {
  const seed = Number(Deno.env.get("STORM_SEED") ?? Math.floor(Math.random() * 1e9));
  await using server = serve({
    hostname: "127.0.0.1",
    port: 0,
    keepAlive: 0,
    maxClients: CLIENTS * 4,
    history: EVENTS * 2,
    historyBytes: 16 * 1024 * 1024,
    queueSize: 4096,
  });
  const events = server.eventSource("/events");
  const port = server.addr.port;

  // One event before anyone subscribes: new subscribers get no backlog, only
  // its id as their resume point. Then everyone subscribes and publishing starts.
  assert.ok(events.send("before the storm"));
  let replays = 0;
  const runs = Array.from(
    { length: CLIENTS },
    (_, i) => stormClient(port, mulberry32(seed + i), () => replays++),
  );
  await within(until(() => events.count() >= CLIENTS, "all subscribed"), "subscribe");

  const published: string[] = [];
  const publisher = (async () => {
    while (published.length < EVENTS) {
      // Small bursts, each in one turn of the loop, while clients come and go.
      for (let k = 0; k < 5 && published.length < EVENTS; k++) {
        const data = `event ${published.length}`;
        if (events.send(data)) published.push(data);
      }
      await sleep(1);
    }
  })();

  const results = await within(
    Promise.all(runs),
    `storm: some client never got every event, lost or never sent (seed ${seed})`,
    60_000,
  );
  await publisher;
  let totalCuts = 0;
  for (const [i, r] of results.entries()) {
    assert.deepEqual(r.gaps, [], `client ${i} got a gap notice (seed ${seed})`);
    assert.equal(r.received.length, EVENTS, `client ${i} (seed ${seed})`);
    // Complete, in order, no duplicates: exactly the published sequence.
    assert.deepEqual(r.received, published, `client ${i} (seed ${seed})`);
    totalCuts += r.cuts;
  }
  assert.ok(totalCuts >= CLIENTS, `the storm cut connections (${totalCuts})`);
  assert.equal(replays, totalCuts, "every reconnect sent its Last-Event-ID");
  assert.ok(server.stats.replays >= totalCuts);
  assert.ok(server.stats.eventsReplayed >= totalCuts, "reconnects were served from history");
  assert.equal(server.stats.gapsSent, 0);
});

import assert from "node:assert/strict";
import { type Client, serve, type ServerOptions } from "../../mod.ts";
import type { CloseReason } from "../../sessions/session.ts";
import { RawClient } from "../_util/raw_client.ts";
import { SseParser } from "../_util/sse_parser.ts";
import { deferred, readEvents, sleep, subscribe, until, within } from "./_replay_util.ts";

const EVENT_BYTES = 8 * 1024;
const BUDGET = 64 * 1024;

function testServer(options: ServerOptions = {}) {
  return serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, ...options });
}

/** Event `i`: its number, padded to a fixed size. */
function payload(i: number): string {
  return `${i} `.padEnd(EVENT_BYTES, "x");
}

/** Keeps each connected client and the reason its session ended. */
function track(source: { onConnect(cb: (c: Client) => void): void }) {
  const clients: Client[] = [];
  const reasons = new Map<number, ReturnType<typeof deferred<CloseReason>>>();
  source.onConnect((client) => {
    clients.push(client);
    const d = deferred<CloseReason>();
    reasons.set(client.id, d);
    client.session.setContext(null, (_ctx, reason) => d.resolve(reason));
  });
  return { clients, reasons };
}

/** A stream whose client never reads: its socket buffers fill, then the server's. */
async function stalledStream(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  return c;
}

/** Reads a stream to its end in the background, collecting event data. */
function drainAll(s: { client: RawClient; parser: SseParser }) {
  return (async () => {
    while (await s.client.readMore()) {
      s.parser.feed(s.client.buffer);
      s.client.buffer = "";
    }
    return s.parser.events;
  })();
}

Deno.test("a stalled reader stays within its budget, is closed as slow-consumer, and the others get every event", async () => {
  await using server = testServer({ maxPendingBytes: BUDGET, queueSize: 4096 });
  const events = server.eventSource("/events");
  const { clients, reasons } = track(events);
  const fast = await Promise.all([1, 2, 3].map(() => subscribe(server.addr.port, "/events")));
  const stalled = await stalledStream(server.addr.port);
  await until(() => clients.length === 4, "4 streams attached");
  const stalledClient = clients[3];
  const readers = fast.map(drainAll);

  let maxPending = 0;
  let sent = 0;
  // One event per turn of the event loop (a burst larger than the budget would
  // overflow any reader). Publish until the stalled stream is dropped (its
  // kernel buffers fill first), then 20 more.
  let after = 20;
  while (after > 0) {
    assert.ok(sent < 20_000, "the stalled stream was never closed");
    if (stalledClient.closed) after--;
    if (events.send(payload(sent))) sent++;
    await sleep(0);
    if (!stalledClient.closed) {
      maxPending = Math.max(maxPending, stalledClient.session.pendingBytes);
    }
  }
  assert.equal(
    await within(reasons.get(stalledClient.id)!.promise, "stalled freed"),
    "slow-consumer",
  );
  assert.ok(maxPending <= BUDGET, `pending ${maxPending} > budget ${BUDGET}`);
  assert.ok(maxPending > 0, "the stalled stream did build a backlog");
  assert.equal(server.stats.sessions.closed["slow-consumer"], 1);

  // The fast readers got everything, in order.
  await within(
    (async () => {
      while (fast.some((f) => f.parser.events.length < sent)) await sleep(5);
    })(),
    "fast readers caught up",
  );
  for (const f of fast) {
    const numbers = f.parser.events.map((e) => Number(e.data.split(" ")[0]));
    assert.deepEqual(numbers, Array.from({ length: sent }, (_, i) => i));
  }
  for (const f of fast) f.client.close();
  stalled.close();
  await Promise.all(readers);
});

Deno.test("a write stuck longer than writeTimeout closes the stream as write-timeout", async () => {
  await using server = testServer({ writeTimeout: 100, queueSize: 4096 });
  const events = server.eventSource("/events");
  const { clients, reasons } = track(events);
  const stalled = await stalledStream(server.addr.port);
  await until(() => clients.length === 1, "stream attached");
  // Keep at most 256 KiB pending, so the budget (1 MiB) is never reached: once
  // the kernel buffers are full, the deadline is what ends the stream.
  const session = clients[0].session;
  await within(
    (async () => {
      for (let i = 0; !session.closed; i++) {
        if (session.pendingBytes < 256 * 1024) events.send(payload(i));
        else await sleep(5);
        if (i % 16 === 0) await sleep(0);
      }
    })(),
    "deadline close",
  );
  assert.equal(await within(reasons.get(clients[0].id)!.promise, "freed"), "write-timeout");
  assert.ok(server.stats.writeTimeouts >= 1);
  assert.ok(clients[0].session.droppedTotal === 0);
  stalled.close();
});

Deno.test("drop policy: a stalled reader skips events, then gets sluice.gap once it catches up, and history fills the hole", async () => {
  await using server = testServer({
    maxPendingBytes: BUDGET,
    slowConsumer: "drop",
    queueSize: 4096,
    history: 10_000,
    historyBytes: 256 * 1024 * 1024,
  });
  const events = server.eventSource("/events");
  const { clients } = track(events);
  const stalled = await stalledStream(server.addr.port);
  await using _s = stalled;
  await until(() => clients.length === 1, "stream attached");
  const session = clients[0].session;
  const ids: string[] = [];
  // Publish until events are being skipped, then a few more.
  let extra = 5;
  while (extra > 0) {
    assert.ok(ids.length < 20_000, "nothing was ever dropped");
    ids.push((await events.publish(payload(ids.length)))!);
    // Like a live publisher, let the loop turn: a fan-out pass then holds a
    // few events (4 x 8 KiB, under the budget), so only the real stall drops.
    if (ids.length % 4 === 0) await new Promise((r) => setTimeout(r, 0));
    if (session.droppedTotal > 0) extra--;
  }
  // publish() resolves once queued; the fan-out runs once per turn of the event loop.
  await until(() => server.stats.queue.depth === 0, "queue drained");
  assert.equal(session.closed, false, "drop keeps the connection");
  assert.ok(session.pendingBytes <= BUDGET);

  // Now read: everything written, then the gap notice.
  const head = await within(stalled.readHead(), "head");
  assert.equal(head.status, 200);
  const parser = new SseParser();
  await within(
    (async () => {
      while (!parser.events.some((e) => e.type === "sluice.gap")) {
        parser.feed(stalled.buffer);
        stalled.buffer = "";
        if (parser.events.some((e) => e.type === "sluice.gap")) break;
        assert.ok(await stalled.readMore(), "stream ended before the gap notice");
      }
    })(),
    "gap notice",
  );
  const gapAt = parser.events.findIndex((e) => e.type === "sluice.gap");
  assert.equal(gapAt, parser.events.length - 1, "nothing was written after the hole");
  const before = parser.events.slice(0, gapAt);
  assert.deepEqual(before.map((e) => e.lastEventId), ids.slice(0, gapAt), "a contiguous prefix");
  const gap = JSON.parse(parser.events[gapAt].data);
  assert.equal(gap.lastEventId, ids[gapAt - 1]);
  assert.equal(gap.earliest, ids[0]);
  assert.ok(gapAt < ids.length, "some events were skipped");
  assert.equal(server.stats.gapsSent, 1);
  assert.equal(server.stats.sessions.closed["slow-consumer"], 0);

  // Live events follow the notice.
  events.send("after the hole");
  const live = { client: stalled, parser };
  await readEvents(live, gapAt + 2);
  assert.equal(parser.events[gapAt + 1].data, "after the hole");

  // Reconnecting with the gap's lastEventId recovers exactly the skipped events.
  const again = await subscribe(server.addr.port, "/events", { "Last-Event-ID": gap.lastEventId });
  await using _a = again.client;
  const missed = ids.length - gapAt;
  const replay = await readEvents(again, missed + 1);
  assert.deepEqual(replay.map((e) => e.lastEventId).slice(0, missed), ids.slice(gapAt));
});

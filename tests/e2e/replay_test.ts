import assert from "node:assert/strict";
import { serve, type ServerOptions } from "../../mod.ts";
import {
  type HistoryInput,
  type HistoryReplay,
  type HistoryStore,
  MemoryHistory,
  type StoredEvent,
} from "../../queue/history.ts";
import { startHub } from "../../server/hub/hub.ts";
import { RawClient } from "../_util/raw_client.ts";
import { dataOf, deferred, readEvents, subscribe, within } from "./_replay_util.ts";

function testServer(options: ServerOptions = {}) {
  return serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, ...options });
}

Deno.test("Last-Event-ID header replays every later retained event in order, then live ones", async () => {
  await using server = testServer({ historyStore: new MemoryHistory({ firstId: 1 }) });
  const events = server.eventSource("/events");
  for (let i = 1; i <= 5; i++) assert.ok(events.send(`e${i}`));
  const s = await subscribe(server.addr.port, "/events", { "Last-Event-ID": "2" });
  await using _c = s.client;
  await readEvents(s, 3);
  events.send("e6");
  const got = await readEvents(s, 4);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [
    ["e3", "3"],
    ["e4", "4"],
    ["e5", "5"],
    ["e6", "6"],
  ]);
  assert.equal(server.stats.replays, 1);
  assert.equal(server.stats.eventsReplayed, 3);
  assert.equal(server.stats.gapsSent, 0);
});

Deno.test("?lastEventId= on the first connect replays like the header", async () => {
  await using server = testServer({ historyStore: new MemoryHistory({ firstId: 1 }) });
  const events = server.eventSource("/events/:channel");
  for (let i = 1; i <= 4; i++) events.send(`a${i}`, { channel: "a" });
  events.send("b1", { channel: "b" });
  const s = await subscribe(server.addr.port, "/events/a?lastEventId=3");
  await using _c = s.client;
  const got = await readEvents(s, 1);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [["a4", "4"]]);
});

Deno.test("an event published while the stream opens is delivered once, not replayed and sent live", async () => {
  await using server = testServer({ historyStore: new MemoryHistory({ firstId: 1 }) });
  const events = server.eventSource("/events", {
    // Runs inside the open, with no await before the replay is read.
    channels: () => {
      events.send("during the open");
      return ["default"];
    },
  });
  await events.publish("before");
  const s = await subscribe(server.addr.port, "/events", { "Last-Event-ID": "1" });
  await using _c = s.client;
  events.send("after");
  const got = await readEvents(s, 2);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [
    ["during the open", "2"],
    ["after", "3"],
  ]);
});

Deno.test("a new subscriber without an id gets only new events, no backlog", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  for (let i = 0; i < 50; i++) events.send(`old ${i}`);
  const latest = await events.publish("latest");
  const s = await subscribe(server.addr.port, "/events");
  await using _c = s.client;
  // No backlog, only the resume point: a block with the latest id and no data.
  await within(s.client.readUntil((b) => b.includes("\n\n")), "resume point");
  assert.equal(s.client.buffer, `id: ${latest}\n\n`);
  events.send("new");
  const got = await readEvents(s, 1);
  assert.deepEqual(dataOf(got), ["new"]);
  assert.ok(/^[0-9]+$/.test(got[0].lastEventId), "the server assigned a numeric id");
  assert.ok(BigInt(got[0].lastEventId) > BigInt(latest!));
  assert.equal(server.stats.eventsReplayed, 0);
});

Deno.test("an id that fell out of history gets sluice.gap first, then what is retained", async () => {
  await using server = testServer({ history: 3 });
  const events = server.eventSource("/events");
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await events.publish(`e${i}`))!);
  const s = await subscribe(server.addr.port, "/events", { "Last-Event-ID": ids[0] });
  await using _c = s.client;
  const got = await readEvents(s, 4);
  assert.equal(got[0].type, "sluice.gap");
  assert.deepEqual(JSON.parse(got[0].data), { lastEventId: ids[0], earliest: ids[3] });
  assert.equal(got[0].lastEventId, "", "the gap notice sets no id");
  assert.deepEqual(got.slice(1).map((e) => [e.data, e.lastEventId]), [
    ["e3", ids[3]],
    ["e4", ids[4]],
    ["e5", ids[5]],
  ]);
  // An id never seen is a gap too.
  const u = await subscribe(server.addr.port, "/events", { "Last-Event-ID": "never-sent" });
  await using _u = u.client;
  const unknown = await readEvents(u, 4);
  assert.deepEqual(JSON.parse(unknown[0].data), { lastEventId: "never-sent", earliest: ids[3] });
  assert.equal(server.stats.gapsSent, 2);
});

Deno.test("with history off no ids are assigned and Last-Event-ID replays nothing", async () => {
  await using server = testServer({ history: 0 });
  const events = server.eventSource("/events");
  events.send("before");
  const s = await subscribe(server.addr.port, "/events", { "Last-Event-ID": "1" });
  await using _c = s.client;
  events.send("after");
  const got = await readEvents(s, 1);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [["after", ""]]);
});

Deno.test("publisher ids are kept; a duplicate in the channel throws and sends nothing", async () => {
  await using server = testServer();
  const events = server.eventSource("/events/:channel");
  assert.equal(await events.publish("x", { channel: "a", id: "order-1" }), "order-1");
  assert.throws(() => events.send("y", { channel: "a", id: "order-1" }), {
    name: "DuplicateEventIdError",
  });
  await assert.rejects(events.publish("y", { channel: "a", id: "order-1" }), {
    name: "DuplicateEventIdError",
  });
  assert.equal(events.send("z", { channel: "b", id: "order-1" }), true, "other channel");
  assert.equal(server.stats.queue.pushed, 2);
});

/** A store that answers through promises, as a network store (Redis) would. */
class AsyncHistory implements HistoryStore {
  readonly inner = new MemoryHistory({ firstId: 1 });
  gate: Promise<void> = Promise.resolve();
  readonly sinceCalled = deferred();
  append(channel: string, event: HistoryInput): Promise<StoredEvent> {
    const stored = this.inner.append(channel, event);
    return new Promise((r) => setTimeout(() => r(stored), 1));
  }
  async since(channels: readonly string[], lastId?: string): Promise<HistoryReplay> {
    this.sinceCalled.resolve();
    await this.gate;
    return this.inner.since(channels, lastId);
  }
  close(): void {}
}

Deno.test("an asynchronous store: events published while the replay is pending arrive once, in order", async () => {
  const store = new AsyncHistory();
  await using server = testServer({ historyStore: store });
  const events = server.eventSource("/events");
  for (let i = 1; i <= 5; i++) assert.equal(await events.publish(`e${i}`), String(i));
  const open = deferred();
  store.gate = open.promise;
  const pending = subscribe(server.addr.port, "/events", { "Last-Event-ID": "2" });
  await within(store.sinceCalled.promise, "replay started");
  // Published while the replay is read: in the store's answer AND seen live.
  for (let i = 6; i <= 8; i++) await events.publish(`e${i}`);
  events.send("e9"); // accepted before its append resolves
  open.resolve();
  const s = await pending;
  await using _c = s.client;
  await readEvents(s, 7);
  events.send("e10");
  const got = await readEvents(s, 8);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [
    ["e3", "3"],
    ["e4", "4"],
    ["e5", "5"],
    ["e6", "6"],
    ["e7", "7"],
    ["e8", "8"],
    ["e9", "9"],
    ["e10", "10"],
  ]);
});

Deno.test("hub POST answers 202 with the assigned id; a reused id gets 409", async () => {
  await using hub = startHub({ hostname: "127.0.0.1", port: 0, keepAlive: 0 });
  const port = hub.server.addr.port;
  const post = async (path: string, body: string) => {
    await using c = await RawClient.connect(port);
    await c.send(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    return await within(c.readResponse(), "POST response");
  };
  const first = await post("/events/a", "one");
  assert.equal(first.status, 202);
  const id1 = JSON.parse(first.body).id;
  assert.match(id1, /^[0-9]+$/);
  const given = await post("/events/a?id=k-1", "two");
  assert.deepEqual(JSON.parse(given.body), { id: "k-1" });
  const again = await post("/events/a?id=k-1", "three");
  assert.equal(again.status, 409);
  const s = await subscribe(port, "/events/a", { "Last-Event-ID": id1 });
  await using _c = s.client;
  const got = await readEvents(s, 1);
  assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), [["two", "k-1"]]);
});

Deno.test("busy: retry answers a full table with 200, a jittered retry: and a close", async () => {
  await using server = testServer({ maxClients: 1, busy: "retry", retryAfter: 2 });
  server.eventSource("/events");
  const first = await subscribe(server.addr.port, "/events");
  await using _f = first.client;
  const second = await within(RawClient.stream(server.addr.port, "/events"), "second");
  await using _s = second.client;
  assert.equal(second.head.status, 200);
  const body = await within(second.client.readToEnd(), "soft reject body");
  const m = /^retry: ([0-9]+)\n\n$/.exec(body);
  assert.ok(m, `body was ${JSON.stringify(body)}`);
  assert.ok(Number(m[1]) >= 1000 && Number(m[1]) < 3000, `retry ${m[1]} around 2000`);
  assert.equal(server.stats.softRejected, 1);
  assert.equal(server.stats.httpErrors[503], undefined);
});

Deno.test("busy must be 503 or retry", () => {
  assert.throws(
    () => testServer({ busy: "later" as "retry" }),
    /busy must be "503" or "retry": received "later"/,
  );
});

Deno.test("shutdown ends each stream with a jittered retry: after its queued events", async () => {
  const server = testServer({ retry: 1000 });
  const events = server.eventSource("/events");
  const a = await subscribe(server.addr.port, "/events");
  const b = await subscribe(server.addr.port, "/events");
  events.send("last words");
  const done = server.shutdown();
  const texts = await within(
    Promise.all([a.client.readToEnd(), b.client.readToEnd()]),
    "streams end",
  );
  await done;
  for (const text of texts) {
    const m = /data: last words\n\nretry: ([0-9]+)\n\n$/.exec(text);
    assert.ok(m, `stream ended with ${JSON.stringify(text.slice(-60))}`);
    assert.ok(Number(m[1]) >= 500 && Number(m[1]) < 1500, `retry ${m[1]} around 1000`);
  }
  a.client.close();
  b.client.close();
});

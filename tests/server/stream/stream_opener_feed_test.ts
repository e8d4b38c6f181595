import assert from "node:assert/strict";
import { serve } from "../../../mod.ts";
import type { EventFeed, FeedEvent, FeedSink, FeedStats } from "../../../queue/event_feed.ts";
import { withEventId } from "../../../queue/event_ids.ts";
import type {
  HistoryInput,
  HistoryReplay,
  HistoryStore,
  StoredEvent,
} from "../../../queue/history.ts";
import { RawClient } from "../../_util/raw_client.ts";
import { within } from "../../_util/within.ts";

/**
 * A shared store whose feed the test moves by hand: events are appended at
 * once, and reach the sink only when `deliverUpTo` says so (an instance
 * whose feed lags behind another's).
 */
class HandFedStore implements HistoryStore, EventFeed {
  readonly events: FeedEvent[] = [];
  sinceCalls = 0;
  #sink: FeedSink | undefined;
  #delivered = 0;

  append(key: string, event: HistoryInput): Promise<StoredEvent> {
    const id = String(this.events.length + 1);
    const bytes = withEventId(id, event.bytes);
    this.events.push({ key, id, bytes });
    return Promise.resolve({ id, bytes });
  }

  since(keys: readonly string[], lastId?: string): Promise<HistoryReplay> {
    this.sinceCalls++;
    const mine = this.events.filter((e) => keys.includes(e.key));
    const after = lastId === undefined ? [] : mine.filter((e) => Number(e.id) > Number(lastId));
    return Promise.resolve({
      events: after.map(({ id, bytes }) => ({ id, bytes })),
      gap: false,
      earliest: mine[0]?.id ?? null,
      latest: mine.at(-1)?.id ?? null,
    });
  }

  follow(sink: FeedSink): () => void {
    this.#sink = sink;
    return () => this.#sink = undefined;
  }

  deliverUpTo(n: number): void {
    const batch = this.events.slice(this.#delivered, n);
    this.#delivered = n;
    assert.equal(this.#sink!.deliver(batch), batch.length);
  }

  get feedStats(): FeedStats {
    return {
      connected: true,
      position: this.#delivered === 0 ? null : String(this.#delivered),
      head: String(this.events.length),
      lag: this.events.length - this.#delivered,
      delivered: this.#delivered,
      reconnects: 0,
      gaps: 0,
      watchdogRestarts: 0,
    };
  }

  close(): void {}
}

async function until(cond: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5));
    })(),
    what,
  );
}

Deno.test("a client back from another instance, ahead of this one's feed, gets no event twice: the opener waits for the feed to pass its id", async () => {
  const store = new HandFedStore();
  await using server = serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, historyStore: store });
  const events = server.eventSource("/events");
  for (let i = 1; i <= 5; i++) assert.equal(await events.publish(`e${i}`), String(i));
  store.deliverUpTo(2); // This instance has fanned out 1 and 2; the client saw up to 4 (or 5).
  const port = server.addr.port;
  // The heads come with the replays, once the feed has caught up: not awaited yet.
  const opening = [
    RawClient.stream(port, "/events", { "Last-Event-ID": "4" }),
    RawClient.stream(port, "/events", { "Last-Event-ID": "5" }),
  ];
  await until(() => store.sinceCalls === 2, "both replays read");
  // The feed now brings 3, 4 and 5 while both streams wait for it.
  store.deliverUpTo(5);
  const [behind, level] = await within(Promise.all(opening), "both heads");
  try {
    assert.equal(behind.head.status, 200);
    assert.equal(level.head.status, 200);
    assert.equal(await events.publish("e6"), "6");
    store.deliverUpTo(6);
    await within(behind.client.readEvents(behind.parser, 2), "the stream at 4");
    await within(level.client.readEvents(level.parser, 1), "the stream at 5");
    assert.deepEqual(behind.parser.events.map((e) => [e.data, e.lastEventId]), [
      ["e5", "5"],
      ["e6", "6"],
    ]);
    assert.deepEqual(level.parser.events.map((e) => [e.data, e.lastEventId]), [["e6", "6"]]);
  } finally {
    behind.client.close();
    level.client.close();
  }
});

/**
 * One event, one record: a publish to the hub is encoded once, appended to
 * history once and takes one queue slot, also while multi-channel streams
 * follow the channel; a failed append is counted and answered, never swallowed.
 */

import assert from "node:assert/strict";
import {
  type HistoryInput,
  type HistoryReplay,
  type HistoryStore,
  MemoryHistory,
  type StoredEvent,
} from "../../mod.ts";
import { metric, publish, request, subscribe, testHub, until, within } from "./_hub.ts";

/** A memory store that counts appends (and can be told to fail them). */
class CountingHistory implements HistoryStore {
  readonly inner = new MemoryHistory({ firstId: 1 });
  appends = 0;
  fail = false;
  append(channel: string, event: HistoryInput): StoredEvent | Promise<StoredEvent> {
    this.appends++;
    if (this.fail) return Promise.reject(new Error("disk gone"));
    return this.inner.append(channel, event);
  }
  since(channels: readonly string[], lastId?: string): HistoryReplay {
    return this.inner.since(channels, lastId);
  }
  close(): void {
    this.inner.close();
  }
}

Deno.test("one publish is one append and one queue slot, with single- and multi-channel streams open", async () => {
  const store = new CountingHistory();
  await using hub = testHub({ historyStore: store });
  const port = hub.server.addr.port;
  const multi = await subscribe(port, "/events?channel=a&channel=b");
  const single = await subscribe(port, "/events/a");
  await using _m = multi.client;
  await using _s = single.client;
  await until(() => hub.events.count() === 2, "both subscribed");
  const pushed = hub.server.stats.queue.pushed;

  for (const data of ["one", "two", "three"]) {
    assert.equal((await publish(port, "/events/a", data)).status, 202);
  }
  await within(multi.client.readEvents(multi.parser, 3), "multi events");
  await within(single.client.readEvents(single.parser, 3), "single events");

  assert.equal(store.appends, 3, "one append per publish");
  assert.equal(hub.server.stats.queue.pushed - pushed, 3, "one queue slot per publish");
  const metrics = (await request(port, "GET", "/metrics")).body;
  assert.equal(metric(metrics, "sluice_events_published_total"), 3);
  // Both kinds read the same records: same ids, the multi copy tagged with its channel.
  assert.deepEqual(
    multi.parser.events.map((e) => [e.type, e.data, e.lastEventId]),
    single.parser.events.map((e) => ["a", e.data, e.lastEventId]),
  );
});

Deno.test("a multi-channel stream replays the same records as the single-channel one", async () => {
  await using hub = testHub({ history: 100 });
  const port = hub.server.addr.port;
  const first = JSON.parse((await publish(port, "/events/a?event=t", "x")).body).id;
  await publish(port, "/events/b", "y");
  await publish(port, "/events/a", "z");
  const multi = await subscribe(port, "/events?channel=a&channel=b", { "Last-Event-ID": first });
  await using _m = multi.client;
  await within(multi.client.readEvents(multi.parser, 2), "replayed");
  assert.deepEqual(multi.parser.events.map((e) => [e.type, e.data]), [["b", "y"], ["a", "z"]]);
});

Deno.test("a failed history append is answered 500, counted and logged, never swallowed", async () => {
  const store = new CountingHistory();
  const logged: string[] = [];
  await using hub = testHub({
    historyStore: store,
    logger: (level, message) => level === "error" && logged.push(message),
  });
  const port = hub.server.addr.port;
  store.fail = true;
  assert.equal((await publish(port, "/events/a", "lost?")).status, 500);
  assert.equal(hub.publish("a", "lost too?"), true, "send() queues and reports later");
  await until(() => hub.server.stats.appendFailures === 2, "both failures counted");
  assert.ok(logged.includes("history append failed"), logged.join());
  const metrics = (await request(port, "GET", "/metrics")).body;
  assert.equal(metric(metrics, "sluice_history_append_failures_total"), 2);
  assert.equal(hub.server.stats.eventsPublished, 0, "nothing was sent");
});

import assert from "node:assert/strict";
import { encodeEvent } from "../../../queue/encode_event.ts";
import { RedisEngine } from "../../../queue/redis/mod.ts";
import { startRedisServer } from "../../_util/redis_server.ts";
import { followedSink, RecordingSink, until } from "./_feed_util.ts";
import { startTcpProxy } from "./_tcp_proxy.ts";

function contiguous(ids: number[]): boolean {
  return ids.every((id, i) => i === 0 || id === ids[i - 1] + 1);
}

async function publish(
  engine: RedisEngine,
  key: string,
  n: number,
  tag: string,
): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(Number((await engine.append(key, { bytes: encodeEvent(`${tag}${i}`) })).id));
  }
  return ids;
}

Deno.test("two engines publishing concurrently get contiguous, increasing ids, and a follower delivers each event once in order", async () => {
  await using server = await startRedisServer();
  await using a = await RedisEngine.connect(server.url);
  await using b = await RedisEngine.connect(server.url);
  await using reader = await RedisEngine.connect(server.url);
  const sink = new RecordingSink();
  reader.follow(sink);
  await reader.whenFollowing();
  // Concurrent appends on each engine (pipelined on its connection) and between engines.
  const fromA = Promise.all(
    Array.from(
      { length: 300 },
      (_, i) => a.append("/events/:ch#a", { bytes: encodeEvent(`a${i}`) }),
    ),
  );
  const fromB = Promise.all(
    Array.from(
      { length: 300 },
      (_, i) => b.append("/events/:ch#b.ü", { bytes: encodeEvent(`b${i}`) }),
    ),
  );
  const idsA = (await fromA).map((e) => Number(e.id));
  const idsB = (await fromB).map((e) => Number(e.id));
  const all = [...idsA, ...idsB].sort((x, y) => x - y);
  assert.ok(contiguous(all), "one counter, no id skipped or repeated");
  assert.equal(new Set(all).size, 600);
  await until(() => sink.events.length >= 600, "600 events delivered");
  assert.deepEqual(sink.ids, all, "every event once, in id order");
  assert.deepEqual(sink.gaps, []);
  const byId = new Map(sink.events.map((e) => [Number(e.id), e]));
  assert.equal(byId.get(idsA[7])!.key, "/events/:ch#a");
  assert.equal(byId.get(idsB[7])!.key, "/events/:ch#b.ü");
  assert.equal(new TextDecoder().decode(byId.get(idsB[7])!.bytes), `id: ${idsB[7]}\ndata: b7\n\n`);
  const stats = reader.feedStats;
  assert.equal(stats.position, String(all[599]));
  assert.equal(stats.delivered, 600);
  assert.equal(a.stats.published, 300);
});

Deno.test("a full sink pauses the feed, which resumes when it has room, with nothing lost", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, { batchSize: 16 });
  const sink = new RecordingSink();
  sink.room = 5;
  engine.follow(sink);
  await engine.whenFollowing();
  const ids = await publish(engine, "k", 100, "e");
  await until(() => sink.partials > 0, "sink filled");
  assert.equal(sink.events.length, 5);
  assert.ok(engine.feedStats.lag > 0 || engine.feedStats.head === null);
  sink.open(20);
  await until(() => sink.events.length === 25 && sink.partials > 1, "second fill");
  sink.open();
  await until(() => sink.events.length === 100, "all delivered");
  assert.deepEqual(sink.ids, ids);
  assert.deepEqual(sink.gaps, []);
});

Deno.test("a paused follower whose position was trimmed from the log gets one gap, then the oldest retained events", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, {
    logMax: 10,
    trimming: "exact",
    batchSize: 4,
  });
  const sink = new RecordingSink();
  sink.room = 2;
  engine.follow(sink);
  await engine.whenFollowing();
  const ids = await publish(engine, "k", 50, "e");
  await until(() => sink.events.length === 2 && sink.partials > 0, "sink full");
  sink.open();
  await until(() => sink.gaps.length === 1 && sink.ids.at(-1) === ids.at(-1), "caught up");
  // The rest of the batch held in memory is delivered, then the gap, then the last 10 of the log.
  const gap = sink.gaps[0];
  assert.equal(gap.reason, "trimmed");
  assert.equal(gap.keys, undefined);
  const before = sink.ids.filter((id) => id <= Number(gap.afterId));
  const after = sink.ids.filter((id) => id > Number(gap.afterId));
  assert.deepEqual(before, ids.slice(0, before.length));
  assert.deepEqual(after, ids.slice(-10));
  assert.equal(engine.feedStats.gaps, 1);
});

Deno.test("the feed reconnects after its connection is killed and misses nothing", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, { backoffMinMs: 10 });
  const sink = await followedSink(engine);
  const first = await publish(engine, "k", 10, "a");
  await until(() => sink.events.length === 10, "first delivered");
  const list = await server.cli("CLIENT", "LIST");
  const feedId = /id=(\d+) .*name=sluice-feed/.exec(list)?.[1];
  assert.ok(feedId, list);
  await server.cli("CLIENT", "KILL", "ID", feedId);
  const second = await publish(engine, "k", 10, "b");
  await until(() => sink.events.length === 20, "second delivered");
  assert.deepEqual(sink.ids, [...first, ...second]);
  assert.deepEqual(sink.gaps, []);
  assert.ok(engine.feedStats.reconnects >= 1);
});

Deno.test("the watchdog restarts a wedged feed connection (half-open socket) and nothing is lost", async () => {
  await using server = await startRedisServer();
  await using proxy = startTcpProxy(server.port);
  await using engine = await RedisEngine.connect(`redis://127.0.0.1:${proxy.port}`, {
    watchdogIntervalMs: 100,
    watchdogStallMs: 300,
    blockMs: 200,
  });
  const sink = await followedSink(engine);
  const first = await publish(engine, "k", 5, "a");
  await until(() => sink.events.length === 5, "first delivered");
  assert.equal(proxy.wedge("XREAD"), 1, "the feed's connection is wedged");
  const second = await publish(engine, "k", 5, "b");
  await until(() => sink.events.length === 10, "delivered after the watchdog's restart");
  assert.deepEqual(sink.ids, [...first, ...second]);
  assert.deepEqual(sink.gaps, []);
  assert.ok(engine.feedStats.watchdogRestarts >= 1);
});

Deno.test("stopping the feed stops delivery; the engine can follow again", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url);
  const sink = new RecordingSink();
  const stop = engine.follow(sink);
  assert.throws(() => engine.follow(new RecordingSink()), /already has a follower/);
  await engine.whenFollowing();
  await publish(engine, "k", 3, "a");
  await until(() => sink.events.length === 3, "delivered");
  stop();
  stop();
  await publish(engine, "k", 3, "b");
  const again = new RecordingSink();
  engine.follow(again);
  await engine.whenFollowing();
  const later = await publish(engine, "k", 2, "c");
  await until(() => again.events.length === 2, "delivered to the new sink");
  assert.deepEqual(again.ids, later, "a new follow starts from now");
  assert.equal(sink.events.length, 3);
});

Deno.test("over rediss:// (TLS) the engine appends, replays and follows", async () => {
  await using server = await startRedisServer({ tls: true });
  await using engine = await RedisEngine.connect(server.tlsUrl!, { tlsCa: server.caPem });
  const sink = await followedSink(engine);
  const ids = await publish(engine, "k", 3, "t");
  await until(() => sink.events.length === 3, "delivered over TLS");
  assert.deepEqual(sink.ids, ids);
  assert.deepEqual(
    (await engine.since(["k"], String(ids[0]))).events.map((e) => Number(e.id)),
    ids.slice(1),
  );
  await assert.rejects(
    RedisEngine.connect(server.tlsUrl!, { connectTimeoutMs: 1000 }),
    /unavailable/,
  );
});

Deno.test("the watchdog leaves an idle feed on an empty Redis alone (no counter yet is nothing to read)", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, {
    watchdogIntervalMs: 20,
    watchdogStallMs: 50,
  });
  const sink = await followedSink(engine);
  // Many watchdog rounds past the stall bound, with nothing appended.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(engine.feedStats.watchdogRestarts, 0);
  assert.equal(engine.feedStats.reconnects, 0);
  const { id } = await engine.append("k", { bytes: encodeEvent("first") });
  await until(() => sink.events.length === 1, "the first event");
  assert.equal(sink.events[0].id, id);
});

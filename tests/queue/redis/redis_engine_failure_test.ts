import assert from "node:assert/strict";
import { encodeEvent } from "../../../queue/encode_event.ts";
import { EngineUnavailableError, RedisEngine } from "../../../queue/redis/mod.ts";
import { startRedisServer } from "../../_util/redis_server.ts";
import { within } from "../../_util/within.ts";
import { followedSink, until } from "./_feed_util.ts";

const block = encodeEvent("x");

/** Appends until `stopAt` says so, recording acknowledged ids and counting typed refusals. */
async function publishLoop(
  engine: RedisEngine,
  key: string,
  done: () => boolean,
): Promise<{ acked: number[]; refused: number }> {
  const acked: number[] = [];
  let refused = 0;
  while (!done()) {
    try {
      acked.push(Number((await engine.append(key, { bytes: block })).id));
    } catch (err) {
      assert.ok(err instanceof EngineUnavailableError, String(err));
      refused++;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { acked, refused };
}

Deno.test("with AOF (appendfsync always) a crash of Redis loses no acknowledged event, and the feed resumes without a gap", async () => {
  await using server = await startRedisServer({ appendOnly: true });
  await using engine = await RedisEngine.connect(server.url, {
    backoffMinMs: 10,
    backoffMaxMs: 200,
  });
  const sink = await followedSink(engine);
  const start = await engine.append("k", { bytes: block });
  let stop = false;
  const loop = publishLoop(engine, "k", () => stop);
  await until(() => engine.stats.published >= 50, "some published");
  await server.stop("SIGKILL");
  await until(() => engine.stats.publishErrors >= 1, "appends refused while down");
  await server.start();
  const published = engine.stats.published;
  await until(() => engine.stats.published >= published + 50, "publishing again");
  stop = true;
  const { acked, refused } = await loop;
  assert.ok(refused >= 1);
  const replay = await engine.since(["k"], start.id);
  const stored = new Set(replay.events.map((e) => Number(e.id)));
  for (const id of acked) assert.ok(stored.has(id), `acknowledged ${id} survived`);
  assert.equal(replay.gap, false);
  assert.ok(acked.every((id, i) => i === 0 || id > acked[i - 1]), "ids only grow");
  await until(() => sink.ids.at(-1) === acked.at(-1), "feed caught up");
  const delivered = new Set(sink.ids);
  for (const id of acked) assert.ok(delivered.has(id), `acknowledged ${id} delivered`);
  assert.equal(delivered.size, sink.ids.length, "no event delivered twice");
  assert.deepEqual(sink.gaps, []);
  assert.ok(engine.feedStats.reconnects >= 1);
});

Deno.test("without persistence a restart of Redis is one gap for the feed and replays, and ids never repeat", async () => {
  await using server = await startRedisServer({ appendOnly: false });
  await using engine = await RedisEngine.connect(server.url, {
    backoffMinMs: 10,
    backoffMaxMs: 200,
  });
  const sink = await followedSink(engine);
  const before: number[] = [];
  for (let i = 0; i < 20; i++) before.push(Number((await engine.append("k", { bytes: block })).id));
  await until(() => sink.events.length === 20, "delivered before");
  await server.stop();
  await server.start();
  await until(() => engine.stats.commandConnected, "engine reconnected");
  const after: number[] = [];
  while (after.length < 20) {
    try {
      after.push(Number((await engine.append("k", { bytes: block })).id));
    } catch (err) {
      assert.ok(err instanceof EngineUnavailableError);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  assert.ok(after[0] > before.at(-1)!, "the new dataset numbers past the lost one");
  await until(() => sink.ids.at(-1) === after.at(-1), "feed caught up");
  assert.equal(sink.gaps.length, 1, "exactly one gap");
  assert.equal(sink.gaps[0].reason, "epoch");
  assert.equal(sink.gaps[0].afterId, String(before.at(-1)));
  assert.deepEqual(sink.ids, [...before, ...after]);
  // A client that had an id of the lost dataset is told about the gap.
  const replay = await engine.since(["k"], String(before.at(-1)));
  assert.equal(replay.gap, true);
  assert.deepEqual(replay.events.map((e) => Number(e.id)), after);
  assert.equal((await engine.since(["k"], String(after[5]))).gap, false);
});

Deno.test("append rejects with EngineUnavailableError while Redis is down or frozen, and works again after", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, {
    commandTimeoutMs: 500,
    backoffMinMs: 10,
    backoffMaxMs: 100,
  });
  await engine.append("k", { bytes: block });
  server.freeze();
  try {
    const err = await within(
      engine.append("k", { bytes: block }).then(() => null, (e) => e),
      "append while frozen settles",
      5_000,
    );
    assert.ok(err instanceof EngineUnavailableError, String(err));
    assert.equal(err.reason, "timeout");
    assert.equal(err.retryAfterSeconds, 1);
    const replay = await within(
      engine.since(["k"]).then(() => null, (e) => e),
      "since while frozen settles",
      5_000,
    );
    assert.ok(replay instanceof EngineUnavailableError);
  } finally {
    server.thaw();
  }
  await server.stop();
  const down = await within(
    engine.append("k", { bytes: block }).then(() => null, (e) => e),
    "append while down settles",
    5_000,
  );
  assert.ok(down instanceof EngineUnavailableError, String(down));
  assert.equal(down.reason, "disconnected", down.message);
  await server.start();
  await until(() => engine.stats.commandConnected, "engine reconnected");
  const { id } = await engine.append("k", { bytes: block });
  assert.ok(Number(id) > 0);
  assert.ok(engine.stats.publishErrors >= 2);
});

Deno.test("append rejects as refused when Redis is out of memory under noeviction, and stores nothing", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url);
  const first = await engine.append("k", { bytes: block });
  await server.cli("CONFIG", "SET", "maxmemory", "1");
  const err = await engine.append("k", { bytes: block }).then(() => null, (e) => e);
  assert.ok(err instanceof EngineUnavailableError, String(err));
  assert.equal(err.reason, "refused");
  await server.cli("CONFIG", "SET", "maxmemory", "0");
  const next = await engine.append("k", { bytes: block });
  assert.equal(Number(next.id), Number(first.id) + 1, "the refused append took no id");
});

Deno.test("appends past maxPendingAppends reject at once as overloaded; the others are stored", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, { maxPendingAppends: 2 });
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => engine.append("k", { bytes: block })),
  );
  const ok = results.filter((r) => r.status === "fulfilled");
  const refused = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
  assert.equal(ok.length, 2);
  assert.equal(refused.length, 3);
  for (const err of refused) {
    assert.ok(err instanceof EngineUnavailableError);
    assert.equal(err.reason, "overloaded");
  }
  assert.equal(engine.stats.pendingAppends, 0);
  assert.equal((await engine.since(["k"], undefined, { last: 10 })).events.length, 2);
});

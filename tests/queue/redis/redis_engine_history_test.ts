import assert from "node:assert/strict";
import { encodeEvent } from "../../../queue/encode_event.ts";
import type { HistoryReplay } from "../../../queue/history.ts";
import {
  DEFAULT_REDIS_ENGINE_OPTIONS,
  EngineUnavailableError,
  PublisherIdRefusedError,
  RedisEngine,
  type RedisEngineOptions,
} from "../../../queue/redis/mod.ts";
import { startRedisServer } from "../../_util/redis_server.ts";

// The cases of tests/queue/_history_contract.ts, adapted to an asynchronous
// store whose ids come from Redis (publisher ids are refused, there is no
// byte bound and no firstId): every case runs on its own key prefix of one server.

const dec = new TextDecoder();
const enc = new TextEncoder();
let prefixes = 0;

async function withEngine(
  options: RedisEngineOptions,
  fn: (engine: RedisEngine, url: string) => Promise<void>,
): Promise<void> {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url, {
    prefix: `{t${prefixes++}}:`,
    trimming: "exact",
    ...options,
  });
  await fn(engine, server.url);
}

async function add(engine: RedisEngine, channel: string, data: string): Promise<string> {
  return (await engine.append(channel, { bytes: encodeEvent(data) })).id;
}

function ids(r: HistoryReplay): string[] {
  return r.events.map((e) => e.id);
}

Deno.test("RedisEngine assigns contiguous ids above the clock, and the bytes carry them", async () => {
  await withEngine({}, async (engine) => {
    const before = Date.now() * 1000;
    const a = await engine.append("a", { bytes: encodeEvent("x") });
    const b = await add(engine, "b", "y");
    const c = await add(engine, "a", "z");
    assert.ok(Number(a.id) >= before);
    assert.deepEqual([Number(b), Number(c)], [Number(a.id) + 1, Number(a.id) + 2]);
    assert.equal(dec.decode(a.bytes), `id: ${a.id}\ndata: x\n\n`);
    const stored = await engine.since(["a"], String(Number(a.id) - 1));
    assert.equal(dec.decode(stored.events[0].bytes), `id: ${a.id}\ndata: x\n\n`);
  });
});

Deno.test("RedisEngine refuses publisher ids with a typed error and stores nothing", async () => {
  await withEngine({}, async (engine) => {
    await assert.rejects(
      engine.append("a", { id: "500", bytes: encodeEvent("x", { id: "500" }) }),
      PublisherIdRefusedError,
    );
    assert.deepEqual(await engine.since(["a"]), {
      events: [],
      gap: false,
      earliest: null,
      latest: null,
    });
  });
});

Deno.test("RedisEngine.since gives the events after an id in order, without a gap", async () => {
  await withEngine({}, async (engine) => {
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(await add(engine, "a", `e${i}`));
    const r = await engine.since(["a"], got[1]);
    assert.deepEqual(ids(r), got.slice(2));
    assert.equal(r.gap, false);
    assert.equal(r.earliest, got[0]);
    assert.equal(r.latest, got[4]);
    const none = await engine.since(["a"], got[4]);
    assert.deepEqual(ids(none), []);
    assert.equal(none.gap, false);
    assert.equal(dec.decode(r.events[0].bytes), `id: ${got[2]}\ndata: e2\n\n`);
  });
});

Deno.test("RedisEngine.since without an id gives no events, only the bounds", async () => {
  await withEngine({}, async (engine) => {
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(await add(engine, "a", `e${i}`));
    assert.deepEqual(await engine.since(["a"]), {
      events: [],
      gap: false,
      earliest: got[0],
      latest: got[2],
    });
    assert.deepEqual(await engine.since(["nobody"]), {
      events: [],
      gap: false,
      earliest: null,
      latest: null,
    });
  });
});

Deno.test("RedisEngine.since: an expired, unknown or foreign id is a gap followed by all that is retained", async () => {
  await withEngine({ maxEvents: 3 }, async (engine) => {
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push(await add(engine, "a", `e${i}`));
    const expired = await engine.since(["a"], got[1]);
    assert.equal(expired.gap, true);
    assert.deepEqual(ids(expired), got.slice(3));
    assert.equal(expired.earliest, got[3]);
    const unknown = await engine.since(["a"], "no-such-id");
    assert.equal(unknown.gap, true);
    assert.deepEqual(ids(unknown), got.slice(3));
    // An id from before this dataset (another server, or Redis lost its data).
    const older = await engine.since(["a"], "1");
    assert.equal(older.gap, true);
    assert.deepEqual(ids(older), got.slice(3));
    // An id never handed out.
    const future = await engine.since(["a"], String(Number(got[5]) + 10));
    assert.equal(future.gap, true);
    assert.deepEqual(ids(future), []);
    // The oldest retained id, and the newest dropped one, are clean resume points.
    assert.equal((await engine.since(["a"], got[3])).gap, false);
    assert.equal((await engine.since(["a"], got[2])).gap, false);
    assert.deepEqual(await engine.since(["quiet"], "1"), {
      events: [],
      gap: true,
      earliest: null,
      latest: null,
    });
  });
});

Deno.test("RedisEngine.since merges several keys in id order, and a hole in one is a gap", async () => {
  await withEngine({ maxEvents: 2 }, async (engine) => {
    const a1 = await add(engine, "a", "a1");
    const b1 = await add(engine, "b", "b1");
    const a2 = await add(engine, "a", "a2");
    const b2 = await add(engine, "b", "b2");
    const r = await engine.since(["a", "b", "a"], b1);
    assert.deepEqual(ids(r), [a2, b2]);
    assert.equal(r.gap, false);
    assert.equal(r.earliest, a1);
    const b3 = await add(engine, "b", "b3"); // drops b1
    const b4 = await add(engine, "b", "b4"); // drops b2, published after a2
    const late = await engine.since(["a", "b"], a2);
    assert.equal(late.gap, true, "b dropped b2, published after a2");
    assert.deepEqual(ids(late), [b3, b4]);
    assert.equal((await engine.since(["a"], a2)).gap, false, "a alone lost nothing after a2");
  });
});

Deno.test("RedisEngine.since with last gives the newest N of each key (rewind), merged", async () => {
  await withEngine({ maxEvents: 10 }, async (engine) => {
    const a: string[] = [];
    const b: string[] = [];
    for (let i = 0; i < 4; i++) {
      a.push(await add(engine, "a", `a${i}`));
      b.push(await add(engine, "b", `b${i}`));
    }
    const rewind = await engine.since(["a", "b"], undefined, { last: 2 });
    assert.deepEqual(ids(rewind), [a[2], b[2], a[3], b[3]]);
    assert.equal(rewind.gap, false);
    const more = await engine.since(["a"], undefined, { last: 100 });
    assert.deepEqual(ids(more), a);
    // After an id, a cut is a gap; no cut is none.
    const cut = await engine.since(["a"], a[0], { last: 2 });
    assert.deepEqual(ids(cut), [a[2], a[3]]);
    assert.equal(cut.gap, true);
    const whole = await engine.since(["a"], a[1], { last: 2 });
    assert.deepEqual(ids(whole), [a[2], a[3]]);
    assert.equal(whole.gap, false);
    await assert.rejects(
      engine.since(["a"], undefined, { last: 0 }),
      /last must be a positive integer: received 0/,
    );
  });
});

Deno.test("RedisEngine keeps binary-safe bytes and keys with / : # . and unicode", async () => {
  await withEngine({}, async (engine) => {
    const key = "/events/:channel#kitchen.ünï";
    // Not valid UTF-8: the bytes must come back as they were given.
    const block = new Uint8Array([...enc.encode("data: \u{1F600} "), 0xff, 0xfe, 0x00, 10, 10]);
    const { id } = await engine.append(key, { bytes: block });
    const r = await engine.since([key], String(Number(id) - 1));
    assert.deepEqual(
      r.events[0].bytes,
      new Uint8Array([...enc.encode(`id: ${id}\n`), ...block]),
    );
  });
});

Deno.test("RedisEngine options are checked at construction with messages naming the value", async () => {
  await assert.rejects(
    RedisEngine.connect("redis://127.0.0.1:1", { maxEvents: 0 }),
    /maxEvents must be a positive integer: received 0/,
  );
  await assert.rejects(
    RedisEngine.connect("redis://127.0.0.1:1", { logMax: 1.5 }),
    /logMax must be a positive integer: received 1.5/,
  );
  await assert.rejects(
    RedisEngine.connect("redis://127.0.0.1:1", { backoffMinMs: 100, backoffMaxMs: 10 }),
    /backoffMaxMs must be at least backoffMinMs \(100\): received 10/,
  );
  await assert.rejects(
    RedisEngine.connect("http://127.0.0.1:1"),
    /url must be a redis:\/\/ or rediss:\/\/ URL/,
  );
  await assert.rejects(
    RedisEngine.connect("redis://127.0.0.1:1/x"),
    /url database must be a number/,
  );
  assert.equal(DEFAULT_REDIS_ENGINE_OPTIONS.maxEvents, 1000);
});

Deno.test("RedisEngine.connect rejects with EngineUnavailableError when nothing listens", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assert.rejects(
    RedisEngine.connect(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 500 }),
    EngineUnavailableError,
  );
});

Deno.test("RedisEngine uses the database and password of the URL", async () => {
  await using server = await startRedisServer();
  await server.cli("CONFIG", "SET", "requirepass", "s3cret");
  await assert.rejects(
    RedisEngine.connect(server.url, { connectTimeoutMs: 500 }),
    EngineUnavailableError,
  );
  await using engine = await RedisEngine.connect(`redis://:s3cret@127.0.0.1:${server.port}/3`);
  await add(engine, "a", "x");
  const keys = await server.cli("-a", "s3cret", "--no-auth-warning", "-n", "3", "DBSIZE");
  assert.equal(keys, "4"); // counter, born, log, the key's stream
});

Deno.test("RedisEngine.close is idempotent and later calls reject as unavailable", async () => {
  await using server = await startRedisServer();
  const engine = await RedisEngine.connect(server.url);
  await engine.close();
  await engine.close();
  await engine[Symbol.asyncDispose]();
  await assert.rejects(engine.append("a", { bytes: encodeEvent("x") }), EngineUnavailableError);
});

Deno.test("RedisEngine runs its scripts again after Redis forgot them (SCRIPT FLUSH)", async () => {
  await using server = await startRedisServer();
  await using engine = await RedisEngine.connect(server.url);
  const first = await add(engine, "a", "x");
  await server.cli("SCRIPT", "FLUSH");
  const results = await Promise.all([add(engine, "a", "y"), add(engine, "a", "z")]);
  assert.deepEqual(results.map(Number), [Number(first) + 1, Number(first) + 2]);
  assert.deepEqual(ids(await engine.since(["a"], first)), results);
});

/**
 * Several hubs sharing one Redis, run as a user runs them: `main.ts --redis`
 * in child processes, a private `redis-server` on a free port, real sockets.
 * Publish on one instance and receive on all; clients that lose their
 * instance (SIGKILL) come back to another with `Last-Event-ID` and miss
 * nothing; Redis crashing (with and without AOF), an instance frozen past
 * the log's bound, new streams while Redis is down, and a browser.
 *
 * Counts are small and every wait is a hang guard, never a timing check.
 *
 * @module
 */

import { freePort } from "../_util/free_port.ts";
import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { type RedisServer, redisServerAvailable, startRedisServer } from "../_util/redis_server.ts";
import { type ParsedEvent, SseParser } from "../_util/sse_parser.ts";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";
import { publish, request, subscribe, within } from "./_hub.ts";
import { sleep, until } from "./_replay_util.ts";

const noRedis = !redisServerAvailable();

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A hub run by the CLI, which a test may kill or freeze. */
interface Instance extends AsyncDisposable {
  readonly port: number;
  readonly pid: number;
  /** Its log lines so far. */
  readonly lines: string[];
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT). */
  signal(sig: Deno.Signal): void;
  /** Ends it (SIGTERM, or SIGKILL when frozen or already killed) and waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `main.ts --redis <url>` and waits for its "listening" line. */
async function startInstance(
  redisUrl: string,
  args: string[] = [],
  options: { port?: number; denoFlags?: string[] } = {},
): Promise<Instance> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(options.denoFlags ?? []),
      MAIN,
      "--redis",
      redisUrl,
      "--port",
      String(options.port ?? 0),
      "--hostname",
      "127.0.0.1",
      "--keepalive",
      "0",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let listening: ((port: number) => void) | undefined;
  const port = new Promise<number>((resolve) => listening = resolve);
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const m = /listening url="http:\/\/127\.0\.0\.1:(\d+)\/"/.exec(line);
        if (m) listening?.(Number(m[1]));
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  let killed = false;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill(killed ? "SIGKILL" : "SIGTERM");
      } catch { /* already exited */ }
      await within(child.status, "instance exit", 20_000);
      await drained;
    })();
  const exited = child.status.then(() => {
    throw new Error(`instance exited before listening:\n${lines.join("\n")}`);
  });
  let p: number;
  try {
    p = await within(Promise.race([port, exited]), "instance listening", 30_000);
  } catch (err) {
    killed = true;
    await stop();
    throw err;
  }
  exited.catch(() => {});
  return {
    port: p,
    pid: child.pid,
    lines,
    signal(sig) {
      // Once frozen or killed, only SIGKILL ends it for sure.
      if (sig === "SIGKILL" || sig === "SIGSTOP") killed = true;
      if (sig === "SIGCONT") killed = false;
      child.kill(sig);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Starts several instances at once; stops those that started when one fails. */
async function startInstances(
  n: number,
  redisUrl: string,
  args: string[] = [],
  options: { port?: number; denoFlags?: string[] } = {},
): Promise<Instance[]> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => startInstance(redisUrl, args, options)),
  );
  const started = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(started.map((i) => i.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return started;
}

/** The id of a 202 answer. */
function idOf(res: { status: number; body: string }): string {
  assert.equal(res.status, 202, res.body);
  const id = JSON.parse(res.body).id;
  assert.match(id, /^[0-9]+$/);
  return id;
}

/** The parsed `/status` of an instance. */
async function status(port: number): Promise<Record<string, unknown>> {
  const res = await request(port, "GET", "/status");
  assert.equal(res.status, 200);
  return JSON.parse(res.body);
}

/** Waits until an instance's feed has fanned out event `id`. */
async function feedAt(port: number, id: string): Promise<void> {
  await within(
    (async () => {
      for (;;) {
        const feed = (await status(port)).feed as { position: string | null };
        if (feed.position !== null && BigInt(feed.position) >= BigInt(id)) return;
        await sleep(20);
      }
    })(),
    `feed of :${port} at ${id}`,
  );
}

type Stream = Awaited<ReturnType<typeof subscribe>>;

/** Reads a stream until `pred` holds on its events. */
async function readUntil(
  s: Stream,
  pred: (events: readonly ParsedEvent[]) => boolean,
  what: string,
  ms = 15_000,
): Promise<ParsedEvent[]> {
  await within(
    (async () => {
      for (;;) {
        if (s.client.buffer) {
          s.parser.feed(s.client.buffer);
          s.client.buffer = "";
        }
        if (pred(s.parser.events)) return;
        if (!(await s.client.readMore())) {
          throw new Error(`${what}: stream ended: ${JSON.stringify(s.parser.events)}`);
        }
      }
    })(),
    what,
    ms,
  );
  return s.parser.events;
}

const isGap = (e: ParsedEvent) => e.type === "sluice.gap";
const idsOf = (events: readonly ParsedEvent[]) =>
  events.filter((e) => !isGap(e)).map((e) => e.lastEventId);

function assertIncreasing(ids: readonly string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(BigInt(ids[i]) > BigInt(ids[i - 1]), `${what}: ${ids[i - 1]} then ${ids[i]}`);
  }
}

for (const n of [2, 3]) {
  Deno.test({
    name: `${n} instances on their own ports: a POST to any of them reaches streams on every one`,
    ignore: noRedis,
  }, async () => {
    await using redis = await startRedisServer();
    const hubs = await startInstances(n, redis.url);
    const streams: Stream[] = [];
    try {
      for (const h of hubs) streams.push(await subscribe(h.port, "/events/news"));
      const sent: { data: string; type: string; id: string }[] = [];
      for (const [i, h] of hubs.entries()) {
        const data = `from ${i}\nline two`;
        const id = idOf(await publish(h.port, `/events/news?event=e${i}`, data));
        sent.push({ data, type: `e${i}`, id });
        const id2 = idOf(await publish(h.port, "/events/news", `plain ${i}`));
        sent.push({ data: `plain ${i}`, type: "message", id: id2 });
      }
      assertIncreasing(sent.map((e) => e.id), "ids of the POSTs");
      for (const [i, s] of streams.entries()) {
        const got = await readUntil(s, (e) => e.length >= sent.length, `stream on instance ${i}`);
        assert.deepEqual(
          got.map((e) => ({ data: e.data, type: e.type, id: e.lastEventId })),
          sent,
          `instance ${i}`,
        );
      }
    } finally {
      for (const s of streams) s.client.close();
      await Promise.all(hubs.map((h) => h.stop()));
    }
  });
}

Deno.test({
  name: "two instances on one port (--reuse-port): both take streams, every stream gets every POST",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer();
  const port = freePort();
  const hubs = await startInstances(2, redis.url, ["--reuse-port"], {
    port,
    denoFlags: ["--unstable-net"],
  });
  const streams: Stream[] = [];
  const opened = (h: Instance) => h.lines.filter((l) => l.includes("stream opened")).length;
  try {
    // The kernel spreads connections by their addresses: open until both have some.
    while (streams.length < 8 || hubs.some((h) => opened(h) === 0)) {
      assert.ok(streams.length < 64, "the kernel sent 64 streams to one instance");
      streams.push(await subscribe(port, "/events/news"));
      await until(() => opened(hubs[0]) + opened(hubs[1]) === streams.length, "stream logged");
    }
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(idOf(await publish(port, "/events/news", `m${i}`)));
    for (const s of streams) {
      const got = await readUntil(s, (e) => e.length >= 4, "stream on the shared port");
      assert.deepEqual(got.map((e) => [e.data, e.lastEventId]), ids.map((id, i) => [`m${i}`, id]));
    }
  } finally {
    for (const s of streams) s.client.close();
    await Promise.all(hubs.map((h) => h.stop()));
  }
});

/**
 * A raw-socket SSE client that follows a channel across instances: on EOF it
 * connects to the next live instance with the `Last-Event-ID` it has.
 */
class RoamingClient {
  readonly ids: string[] = [];
  gaps = 0;
  connections = 0;
  /** Set once the head of the first stream was read. */
  subscribed = false;
  #lastId: string | undefined;
  #conn: RawClient | undefined;
  #target: string | undefined;
  #next: number;

  constructor(readonly ports: () => readonly number[], first: number) {
    this.#next = first;
  }

  get done(): boolean {
    return this.#target !== undefined && this.ids.at(-1) === this.#target;
  }

  /** The last id published: the client stops once it has it. */
  finish(lastId: string): void {
    this.#target = lastId;
    if (this.done) this.#conn?.close();
  }

  close(): void {
    this.#target = "";
    this.#conn?.close();
  }

  async run(): Promise<void> {
    while (!this.done && this.#target !== "") {
      const ports = this.ports();
      const port = ports[this.#next % ports.length];
      let c: RawClient;
      try {
        c = await RawClient.connect(port);
      } catch {
        this.#next++;
        await sleep(20);
        continue;
      }
      this.#conn = c;
      this.connections++;
      try {
        const last = this.#lastId === undefined ? "" : `Last-Event-ID: ${this.#lastId}\r\n`;
        await c.send(`GET /events/storm HTTP/1.1\r\nHost: 127.0.0.1\r\n${last}\r\n`);
        const head = await c.readHead();
        assert.equal(head.status, 200, head.statusLine);
        this.subscribed = true;
        const parser = new SseParser();
        let seen = 0;
        for (;;) {
          if (c.buffer) {
            parser.feed(c.buffer);
            c.buffer = "";
          }
          for (; seen < parser.events.length; seen++) {
            const e = parser.events[seen];
            if (isGap(e)) this.gaps++;
            else this.ids.push(e.lastEventId);
          }
          if (parser.lastEventId !== "") this.#lastId = parser.lastEventId;
          if (this.done || !(await c.readMore())) break;
        }
      } catch {
        // The instance died under us: the next one.
      } finally {
        c.close();
        this.#conn = undefined;
      }
      if (!this.done) {
        this.#next++;
        await sleep(10);
      }
    }
  }
}

Deno.test({
  name:
    "200 clients over 3 instances, one killed (SIGKILL) mid-stream: its clients resume elsewhere with Last-Event-ID and every client has every id once, in order, without a gap",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer();
  const hubs = await startInstances(4, redis.url);
  const [a, b, c, publisher] = hubs;
  let alive = [a.port, b.port, c.port];
  const clients = Array.from({ length: 200 }, (_, i) => new RoamingClient(() => alive, i));
  let runs: Promise<void>[] = [];
  try {
    // A resume point for every client, reached by every feed before they open.
    const seed = idOf(await publish(publisher.port, "/events/storm", "seed"));
    for (const h of [a, b, c]) await feedAt(h.port, seed);
    runs = clients.map((cl) => cl.run());
    await until(() => clients.every((cl) => cl.subscribed), "200 clients subscribed", 30_000);
    const published: string[] = [];
    for (let i = 0; i < 150; i++) {
      published.push(idOf(await publish(publisher.port, "/events/storm", `n${i}`)));
      if (i === 50) {
        c.signal("SIGKILL");
        alive = [a.port, b.port];
      }
      await sleep(3);
    }
    for (const cl of clients) cl.finish(published.at(-1)!);
    await within(Promise.all(runs), "every client has the last id", 30_000);
    for (const [i, cl] of clients.entries()) {
      assert.equal(cl.gaps, 0, `client ${i}: gap notices`);
      assert.deepEqual(cl.ids, published, `client ${i} (${cl.connections} connections)`);
    }
    // The clients of the killed instance did move.
    const moved = clients.filter((cl) => cl.connections > 1).length;
    assert.ok(moved >= 60, `${moved} clients reconnected`);
  } finally {
    for (const cl of clients) cl.close();
    await Promise.allSettled(runs);
    await Promise.all(hubs.map((h) => h.stop()));
  }
});

/**
 * Two instances, a stream on each and a publisher on the first, publishing
 * every ~10 ms; Redis is killed (SIGKILL) and started again meanwhile. Every
 * refusal must be a 503 with `Retry-After`.
 */
async function redisOutage(redis: RedisServer): Promise<{
  acked: string[];
  refused: number;
  streams: ParsedEvent[][];
}> {
  const hubs = await startInstances(2, redis.url);
  const streams: Stream[] = [];
  const state = { acked: [] as string[], refused: 0, stop: false };
  let loop: Promise<void> | undefined;
  try {
    for (const h of hubs) streams.push(await subscribe(h.port, "/events/news"));
    loop = (async () => {
      for (let i = 0; !state.stop; i++) {
        const res = await publish(hubs[0].port, "/events/news", `p${i}`);
        if (res.status === 202) state.acked.push(JSON.parse(res.body).id);
        else {
          assert.equal(res.status, 503, res.body);
          assert.match(res.headers.get("retry-after") ?? "", /^[0-9]+$/);
          state.refused++;
        }
        await sleep(10);
      }
    })();
    await until(() => state.acked.length >= 20, "20 events before the crash");
    await redis.stop("SIGKILL");
    await until(() => state.refused >= 3, "503 while Redis is down", 20_000);
    const before = state.acked.length;
    await redis.start();
    await until(() => state.acked.length >= before + 20, "202 again after the restart", 20_000);
    state.stop = true;
    await loop;
    const last = state.acked.at(-1)!;
    const events = await Promise.all(
      streams.map((s, i) =>
        readUntil(s, (e) => e.some((x) => x.lastEventId === last), `stream ${i} reaches ${last}`)
      ),
    );
    return { acked: state.acked, refused: state.refused, streams: events };
  } finally {
    state.stop = true;
    await loop?.catch(() => {});
    for (const s of streams) s.client.close();
    await Promise.all(hubs.map((h) => h.stop()));
  }
}

Deno.test({
  name:
    "Redis crashes and restarts with AOF (appendfsync always): publishes get 503 + Retry-After meanwhile, no acknowledged event is lost, streams see no gap",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer({ appendOnly: true });
  const { acked, refused, streams } = await redisOutage(redis);
  assert.ok(refused >= 3, `${refused} refusals`);
  for (const [i, events] of streams.entries()) {
    assert.equal(events.filter(isGap).length, 0, `stream ${i}: gap notices`);
    const ids = idsOf(events);
    assertIncreasing(ids, `stream ${i}`);
    const got = new Set(ids);
    const lost = acked.filter((id) => !got.has(id));
    assert.deepEqual(lost, [], `stream ${i}: acknowledged events missing`);
  }
});

Deno.test({
  name:
    "Redis restarts without persistence: each open stream gets exactly one sluice.gap, ids keep growing and none repeats",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer();
  const { refused, streams } = await redisOutage(redis);
  assert.ok(refused >= 3, `${refused} refusals`);
  for (const [i, events] of streams.entries()) {
    assert.equal(events.filter(isGap).length, 1, `stream ${i}: ${JSON.stringify(events)}`);
    const ids = idsOf(events);
    assertIncreasing(ids, `stream ${i}`);
    assert.equal(new Set(ids).size, ids.length, `stream ${i}: an id repeats`);
  }
});

Deno.test({
  name:
    "an instance frozen (SIGSTOP) while more events than --redis-log-max are published: the other keeps up, the frozen one's stream gets one sluice.gap after SIGCONT",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer();
  const [a, b] = await startInstances(2, redis.url, ["--redis-log-max", "20"]);
  const streams: Stream[] = [];
  try {
    streams.push(await subscribe(a.port, "/events/news"), await subscribe(b.port, "/events/news"));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(idOf(await publish(a.port, "/events/news", `w${i}`)));
    for (const s of streams) await readUntil(s, (e) => e.length >= 5, "before the freeze");
    b.signal("SIGSTOP");
    // Several stream nodes (the log is trimmed by whole nodes of ~100 entries).
    for (let i = 0; i < 400; i++) {
      ids.push(idOf(await publish(a.port, "/events/news", `f${i}`)));
    }
    // The running instance's stream has them all while the other is frozen.
    const onA = await readUntil(streams[0], (e) => e.length >= ids.length, "A keeps up");
    assert.deepEqual(idsOf(onA), ids);
    assert.equal(onA.filter(isGap).length, 0);
    b.signal("SIGCONT");
    ids.push(idOf(await publish(a.port, "/events/news", "after")));
    const onB = await readUntil(
      streams[1],
      (e) => e.at(-1)?.data === "after",
      "B resumes",
      30_000,
    );
    const got = idsOf(onB);
    assertIncreasing(got, "B");
    const missing = ids.filter((id) => !got.includes(id)).length;
    assert.equal(onB.filter(isGap).length, missing > 0 ? 1 : 0, `${missing} missing`);
    assert.ok(missing > 0, "the log kept everything: the test did not reach its case");
    const gap = onB.find(isGap)!;
    assert.equal(JSON.parse(gap.data).lastEventId, onB[onB.indexOf(gap) - 1].lastEventId);
  } finally {
    for (const s of streams) s.client.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

Deno.test({
  name:
    "while Redis is down a new stream gets 200 with retry: then close, /status shows the feed down and /metrics has sluice_feed_*; back up, the open stream hears one gap",
  ignore: noRedis,
}, async () => {
  await using redis = await startRedisServer();
  const [a] = await startInstances(1, redis.url);
  let open: Stream | undefined;
  try {
    open = await subscribe(a.port, "/events/news");
    const before = idOf(await publish(a.port, "/events/news", "before"));
    await readUntil(open, (e) => e.length === 1, "the event before the outage");
    await redis.stop();
    await within(
      (async () => {
        while (((await status(a.port)).feed as { connected: boolean }).connected) await sleep(20);
      })(),
      "feed sees Redis down",
    );
    await using c = await RawClient.connect(a.port);
    await c.send("GET /events/news HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const head = await within(c.readHead(), "head of a stream while Redis is down");
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), "text/event-stream");
    const body = await within(c.readToEnd(), "the stream ends");
    const parser = new SseParser();
    parser.feed(body);
    assert.ok(parser.retry !== undefined && parser.retry > 0, JSON.stringify(body));
    assert.equal(parser.events.length, 0);

    const down = await status(a.port);
    assert.equal((down.feed as { connected: boolean }).connected, false);
    const metrics = (await request(a.port, "GET", "/metrics")).body;
    assert.match(metrics, /^sluice_feed_connected 0$/m);
    assert.match(metrics, /^sluice_feed_reconnects_total \d+$/m);
    const refused = await publish(a.port, "/events/news", "while down");
    assert.equal(refused.status, 503);
    assert.match(refused.headers.get("retry-after") ?? "", /^[0-9]+$/);

    await redis.start();
    let id: string | undefined;
    await within(
      (async () => {
        for (;;) {
          const res = await publish(a.port, "/events/news", "back");
          if (res.status === 202) return id = JSON.parse(res.body).id;
          await sleep(100);
        }
      })(),
      "202 after Redis is back",
      20_000,
    );
    const got = await readUntil(open, (e) => e.some((x) => x.data === "back"), "open stream");
    // Redis came back empty (no persistence): the event before is gone, which the stream hears.
    assert.deepEqual(got.map((e) => e.type), ["message", "sluice.gap", "message"]);
    assert.deepEqual(JSON.parse(got[1].data), { lastEventId: before, earliest: null });
    assert.equal(got[2].lastEventId, id);
    const up = (await status(a.port)).feed as { connected: boolean; reconnects: number };
    assert.equal(up.connected, true);
    assert.ok(up.reconnects >= 1, JSON.stringify(up));
  } finally {
    open?.client.close();
    await a.stop();
  }
});

const PAGE = `<!doctype html><title>failover</title><script>
window.got = [];
window.gaps = 0;
window.opens = 0;
let last = "";
function connect(urls) {
  const url = urls[0] + (last ? "?lastEventId=" + encodeURIComponent(last) : "");
  const es = new EventSource(url);
  es.onopen = () => window.opens++;
  es.onmessage = (e) => { window.got.push([e.data, e.lastEventId]); last = e.lastEventId; };
  es.addEventListener("sluice.gap", () => window.gaps++);
  // This instance is gone: go to the next one, from the last id seen.
  es.onerror = () => { if (urls.length > 1) { es.close(); connect(urls.slice(1)); } };
}
window.connect = connect;
</script>`;

Deno.test({
  name:
    "Chromium's EventSource on instance A gets events POSTed to B; A killed, the page moves to B with its last id and misses nothing",
  ignore: noRedis || !browserAvailable(),
}, async () => {
  await using redis = await startRedisServer();
  const [a, b] = await startInstances(2, redis.url, ["--cors-origin", "*"]);
  const pageServer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(PAGE, { headers: { "Content-Type": "text/html; charset=utf-8" } }),
  );
  try {
    await using browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${pageServer.addr.port}/`);
    await page.evaluate(
      `connect(["http://127.0.0.1:${a.port}/events/news", "http://127.0.0.1:${b.port}/events/news"])`,
    );
    await page.waitForFunction("window.opens === 1", null, { timeout: 20_000 });
    const ids: string[] = [];
    for (const d of ["e1", "e2"]) ids.push(idOf(await publish(b.port, "/events/news", d)));
    await page.waitForFunction("window.got.length === 2", null, { timeout: 20_000 });
    a.signal("SIGKILL");
    for (const d of ["e3", "e4"]) ids.push(idOf(await publish(b.port, "/events/news", d)));
    await page.waitForFunction("window.opens === 2", null, { timeout: 20_000 });
    ids.push(idOf(await publish(b.port, "/events/news", "e5")));
    await page.waitForFunction("window.got.length >= 5", null, { timeout: 20_000 });
    const got = await page.evaluate("window.got") as [string, string][];
    assert.deepEqual(got, ["e1", "e2", "e3", "e4", "e5"].map((d, i) => [d, ids[i]]));
    assert.equal(await page.evaluate("window.gaps"), 0);
  } finally {
    await pageServer.shutdown();
    await Promise.all([a.stop(), b.stop()]);
  }
});

/**
 * Slowloris: connections that trickle their request head must not keep real
 * clients out. The header timeout ends each of them (408) and at most
 * `maxPendingHeads` sockets may be receiving a request at once; past that the
 * one receiving longest is answered 503 and closed.
 *
 * The limits are small here so the test stays quick; the defaults are a
 * 10 s header timeout and 512 pending heads.
 *
 * @module
 */

import assert from "node:assert/strict";
import { prometheusText } from "../../server/metrics.ts";
import { serve, type SluiceServer } from "../../server/server.ts";
import { RawClient } from "../_util/raw_client.ts";
import { until } from "./_hub.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What one trickling connection saw. */
interface TrickleResult {
  /** Status of the answer, or `undefined` when closed without one. */
  status: number | undefined;
}

/**
 * Connects, sends `prefix`, then one byte of `X-Slow: ...` every `everyMs`
 * until the server answers or closes (or `stop` aborts).
 */
async function trickle(
  port: number,
  opts: { prefix: string; everyMs: number; stop: AbortSignal },
): Promise<TrickleResult> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return { status: undefined };
  }
  let received = "";
  let done = false;
  const reader = (async () => {
    const buf = new Uint8Array(1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      received += decoder.decode(buf.subarray(0, n));
    }
    done = true;
  })();
  const onAbort = () => {
    try {
      conn.close();
    } catch { /* closed */ }
  };
  opts.stop.addEventListener("abort", onAbort, { once: true });
  try {
    await conn.write(encoder.encode(opts.prefix));
    const drip = encoder.encode("X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    for (let i = 0; !done && !opts.stop.aborted; i = (i + 1) % drip.length) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([reader, new Promise((r) => timer = setTimeout(r, opts.everyMs))]);
      clearTimeout(timer);
      if (done || opts.stop.aborted) break;
      await conn.write(drip.subarray(i, i + 1));
    }
  } catch {
    // Closed by the server (or reset) while trickling: what we are waiting for.
  }
  await reader;
  opts.stop.removeEventListener("abort", onAbort);
  try {
    conn.close();
  } catch { /* closed */ }
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(received);
  return { status: m ? Number(m[1]) : undefined };
}

async function drained(server: SluiceServer): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (
    (server.stats.connections > 0 || server.sessions.size > 0 || server.stats.pendingHeads > 0) &&
    Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = server.stats;
  assert.equal(s.connections, 0, "connections left open");
  assert.equal(server.sessions.size, 0, "sessions left open");
  assert.equal(s.pendingHeads, 0, "connections left in the header phase");
  const closed = Object.values(s.connectionsClosed).reduce((a, b) => a + b, 0);
  assert.equal(closed, s.accepted, `every socket has a close reason: ${JSON.stringify(s)}`);
}

Deno.test("1000 slowloris connections do not keep real clients from connecting and receiving events", async () => {
  const CAP = 100;
  const ATTACKERS = 1_000;
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    maxClients: 64,
    maxConnections: ATTACKERS + 200,
    maxPendingHeads: CAP,
    headerTimeout: 4_000,
    keepAlive: 0,
  });
  server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
  const events = server.eventSource("/events/:channel");
  const port = server.addr.port;

  let maxPending = 0;
  const sampler = setInterval(() => {
    maxPending = Math.max(maxPending, server.stats.pendingHeads);
  }, 5);
  const stop = new AbortController();
  const statuses = new Map<string, number>();
  // Each attacker comes back after it is thrown out, as slowloris does.
  const attackers = Array.from({ length: ATTACKERS }, async (_, i) => {
    await new Promise((r) => setTimeout(r, i % 200));
    while (!stop.signal.aborted) {
      const r = await trickle(port, {
        prefix: "GET /events/a HTTP/1.1\r\nHost: x\r\n",
        everyMs: 200,
        stop: stop.signal,
      });
      const key = String(r.status ?? "closed");
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 300));
    }
  });
  try {
    // Let the attack fill the pending slots.
    const fillDeadline = Date.now() + 10_000;
    while (server.stats.pendingHeads < CAP && Date.now() < fillDeadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(server.stats.pendingHeads, CAP, "the attack did not fill the pending slots");

    // Real clients: streams that receive events, and plain requests, during the attack.
    const streams = await Promise.all(
      Array.from({ length: 20 }, () => RawClient.stream(port, "/events/real")),
    );
    try {
      for (const s of streams) assert.equal(s.head.status, 200);
      for (let i = 0; i < 3; i++) assert.ok(events.send(`event ${i}`, { channel: "real" }));
      for (const s of streams) {
        await s.client.readEvents(s.parser, 3);
        assert.deepEqual(s.parser.events.map((e) => e.data), ["event 0", "event 1", "event 2"]);
      }
      const plain = await Promise.all(Array.from({ length: 20 }, async () => {
        await using c = await RawClient.connect(port);
        await c.send("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return (await c.readResponse()).status;
      }));
      assert.deepEqual(plain, Array(20).fill(200));
    } finally {
      for (const s of streams) s.client.close();
    }
  } finally {
    stop.abort();
    await Promise.all(attackers);
    clearInterval(sampler);
  }
  assert.ok(maxPending <= CAP, `pending heads reached ${maxPending}, cap ${CAP}`);
  const s = server.stats;
  // The cap was enforced by answering and closing, and counted.
  assert.ok(s.connectionsClosed["pending-heads-full"] > 0, JSON.stringify(s.connectionsClosed));
  assert.ok((statuses.get("503") ?? 0) > 0, `attackers saw ${JSON.stringify([...statuses])}`);
  assert.equal(s.httpErrors[503], s.connectionsClosed["pending-heads-full"]);
  assert.ok(
    prometheusText(s).includes(
      `sluice_connections_closed_total{reason="pending-heads-full"} ${
        s.connectionsClosed["pending-heads-full"]
      }\n`,
    ),
    "the evictions are in the metrics",
  );
  assert.equal(s.sessions.opened, 20, "only the real clients opened streams");
  await drained(server);
});

Deno.test("a head or body trickled past the header timeout is answered 408 and closed", async () => {
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    headerTimeout: 600,
    idleTimeout: 60_000,
    keepAlive: 0,
  });
  server.route("POST", "/in", () => ({ status: 200 }));
  const port = server.addr.port;
  const stop = new AbortController();
  const results = await Promise.all([
    // Heads that never end.
    ...Array.from(
      { length: 10 },
      () =>
        trickle(port, { prefix: "GET / HTTP/1.1\r\nHost: x\r\n", everyMs: 50, stop: stop.signal }),
    ),
    // A body that never ends (the head is complete).
    trickle(port, {
      prefix: "POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
      everyMs: 50,
      stop: stop.signal,
    }),
    // Silence: connect and send nothing.
    trickle(port, { prefix: "", everyMs: 60_000, stop: stop.signal }),
  ]);
  assert.deepEqual(results.map((r) => r.status), Array(12).fill(408));
  await drained(server);
  assert.equal(server.stats.httpErrors[408], 12);
  assert.equal(server.stats.connectionsClosed["header-timeout"], 12);
});

Deno.test("a request begun on an idle keep-alive socket gets the header timeout, not the idle timeout", async () => {
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    headerTimeout: 500,
    idleTimeout: 60_000,
    keepAlive: 0,
  });
  server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal((await c.readResponse()).status, 200);
  // Start the next request and stall: the header timeout (not the 60 s idle timeout) ends it.
  await c.send("GET /ok HTTP/1.1\r\nHo");
  const res = await c.readResponse();
  assert.equal(res.status, 408);
  assert.equal(res.headers.get("connection"), "close");
  assert.equal(await c.readToEnd(), "");
  await drained(server);
  assert.equal(server.stats.connectionsClosed["header-timeout"], 1);
});

Deno.test("an idle keep-alive socket is closed silently after the idle timeout", async () => {
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    headerTimeout: 60_000,
    idleTimeout: 300,
    keepAlive: 0,
  });
  server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal((await c.readResponse()).status, 200);
  assert.equal(await c.readToEnd(), "", "no 408 for a socket that sent nothing more");
  await drained(server);
  assert.equal(server.stats.connectionsClosed["idle-timeout"], 1);
});

Deno.test("maxPendingHeads must be a positive integer", () => {
  assert.throws(
    () => serve({ port: 0, hostname: "127.0.0.1", maxPendingHeads: 0 }),
    { name: "RangeError", message: "maxPendingHeads must be a positive integer: received 0" },
  );
});

/** `GET path` with curl bound to 127.0.0.2 (another peer); the status, or 0 when it failed. */
async function curlStatusFrom127002(port: number, path: string): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "10",
      "--interface",
      "127.0.0.2",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://127.0.0.1:${port}${path}`,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  return Number(new TextDecoder().decode(out.stdout)) || 0;
}

/** Connects and sends nothing; resolves when the server closes the socket or `stop` aborts. */
async function silent(port: number, stop: AbortSignal): Promise<"closed" | "refused"> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return "refused";
  }
  const onAbort = () => {
    try {
      conn.close();
    } catch { /* closed */ }
  };
  stop.addEventListener("abort", onAbort, { once: true });
  const buf = new Uint8Array(512);
  try {
    while ((await conn.read(buf)) !== null) { /* the 503, if any */ }
  } catch {
    // Reset or closed by the abort.
  }
  stop.removeEventListener("abort", onAbort);
  onAbort();
  return "closed";
}

Deno.test({
  name: "a flood of silent connects from one peer does not starve another peer's requests",
  ignore: !(await (async () => {
    try {
      return (await new Deno.Command("curl", { args: ["--version"], stdout: "null" }).output())
        .success;
    } catch {
      return false;
    }
  })()),
  async fn() {
    const FLOOD = 3_000;
    const AT_ONCE = 600;
    await using server = serve({
      port: 0,
      hostname: "127.0.0.1",
      maxClients: 64, // maxConnections: the default, 64 + 256
      maxPendingHeads: 100,
      headerTimeout: 4_000,
      keepAlive: 0,
    });
    server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
    const port = server.addr.port;
    const stop = new AbortController();
    let started = 0;
    // AT_ONCE connections held silent at any moment, each replaced as soon as it ends.
    const flood = Array.from({ length: AT_ONCE }, async () => {
      while (started < FLOOD && !stop.signal.aborted) {
        started++;
        await silent(port, stop.signal);
      }
    });
    const statuses: number[] = [];
    let maxOpen = 0;
    const sampler = setInterval(() => {
      maxOpen = Math.max(maxOpen, server.stats.connections);
    }, 5);
    try {
      await until(() => started >= AT_ONCE, "the flood under way");
      // The other peer's requests, one after another while the flood goes on.
      for (let i = 0; i < 10; i++) statuses.push(await curlStatusFrom127002(port, "/ok"));
    } finally {
      stop.abort();
      await Promise.all(flood);
      clearInterval(sampler);
    }
    assert.deepEqual(statuses, Array(10).fill(200), `answers to 127.0.0.2: ${statuses}`);
    const s = server.stats;
    // The flood filled every socket, and room was made by evicting its silent sockets; the
    // sockets evicted and still closing are all that can pass maxConnections.
    assert.ok(maxOpen >= 64 + 256, `the flood held ${maxOpen} sockets at most`);
    assert.ok(maxOpen <= 2 * (64 + 256), `${maxOpen} sockets open at once`);
    assert.ok(s.connectionsClosed["pending-heads-full"] > 0, JSON.stringify(s.connectionsClosed));
    await drained(server);
  },
});

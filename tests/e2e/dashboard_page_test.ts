import assert from "node:assert/strict";
import { loadStaticAssets, type StaticAsset } from "../../server/hub/static_assets.ts";
import { browserAvailable, launchBrowser, type Page } from "../_util/browser.ts";

// Drives server/static (the hub's dashboard) in Chromium against a fake hub: a raw
// Deno.listen server that serves the assets and scripted SSE streams.

/** The page's DOM, as far as the functions evaluated in Chromium use it. */
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

/** The dashboard's test hook, `window.sluiceDashboard`. */
declare const sluiceDashboard: { received: string[] };

const encoder = new TextEncoder();
const SCREENSHOT = "/tmp/dashboard.png";
const HEARTBEAT_TIME = "2025-01-02T03:04:05.000Z";
const SENSOR_EVENTS = 40;

/** Sensor events 1..40 alternating A/B, a keep-alive, then unnamed event 41. */
function firstStream(): string {
  let out = "retry: 200\n\n";
  for (let id = 1; id <= SENSOR_EVENTS; id++) {
    const sensor = id % 2 === 1 ? "sensorA" : "sensorB";
    const state = id % 2 === 1
      ? Math.round(50 + 30 * Math.sin(id / 4))
      : Math.round(30 + 15 * Math.cos(id / 5));
    const data = JSON.stringify({ TYPE: "STATE", [sensor]: { state, prevState: state - 1 } });
    out += `id: ${id}\nevent: event\ndata: ${data}\n\n`;
    if (id === 20) out += `event: event\ndata: {"TYPE":"KEEP-ALIVE"}\n\n`;
  }
  out += `id: 41\ndata: {"TYPE":"STATE","sensorB":{"state":33,"prevState":32}}\n\n`;
  return out;
}

const SSE_HEAD =
  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

interface Request {
  path: string;
  query: string;
  lastEventId: string | null;
}

async function readRequest(conn: Deno.Conn): Promise<Request | null> {
  const buf = new Uint8Array(8192);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null || head.length > 65536) return null;
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  const lines = head.split("\r\n");
  const target = lines[0].split(" ")[1] ?? "/";
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const idLine = lines.find((l) => l.toLowerCase().startsWith("last-event-id:"));
  return { path, query, lastEventId: idLine === undefined ? null : idLine.slice(14).trim() };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Resolves when the peer closes `conn` (or the socket is closed locally). */
async function untilPeerCloses(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(1024);
  try {
    while (await conn.read(buf) !== null) { /* discard */ }
  } catch { /* closed locally */ }
}

/**
 * A fake hub. The first /events/sensors stream sends {@linkcode firstStream} and
 * stays open until `dropSensorStream()`; the reconnect request is held until
 * `resumeSensorStream()` answers it with event 42.
 */
function startFakeHub(assets: Map<string, StaticAsset>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const drop = Promise.withResolvers<void>();
  const resume = Promise.withResolvers<void>();
  const reconnected = Promise.withResolvers<string | null>();
  const sensorQueries: string[] = [];
  const sensorsClosedByPeer = Promise.withResolvers<void>();
  const heartbeatClosedByPeer = Promise.withResolvers<void>();
  let sensorRequests = 0;

  async function handle(conn: Deno.Conn): Promise<void> {
    const request = await readRequest(conn);
    if (request === null) return;
    if (request.path === "/events/sensors") {
      sensorRequests += 1;
      sensorQueries.push(request.query);
      if (sensorRequests === 1) {
        await writeAll(conn, encoder.encode(SSE_HEAD + firstStream()));
        const peer = untilPeerCloses(conn);
        await Promise.race([peer, drop.promise]);
        conn.close();
        conns.delete(conn);
        await peer;
      } else {
        reconnected.resolve(request.lastEventId);
        const peer = untilPeerCloses(conn);
        await Promise.race([peer, resume.promise]);
        const data = `{"TYPE":"STATE","sensorA":{"state":60,"prevState":59}}`;
        await writeAll(conn, encoder.encode(`${SSE_HEAD}id: 42\nevent: event\ndata: ${data}\n\n`));
        await peer;
        sensorsClosedByPeer.resolve();
      }
    } else if (request.path === "/events/heartbeat") {
      const data = JSON.stringify({ time: HEARTBEAT_TIME, uptime: 42.7 });
      await writeAll(conn, encoder.encode(`${SSE_HEAD}event: heartbeat\ndata: ${data}\n\n`));
      await untilPeerCloses(conn);
      heartbeatClosedByPeer.resolve();
    } else {
      const asset = assets.get(request.path);
      await answerAsset(conn, asset);
    }
  }

  const accepting = acceptAll(listener, conns, handlers, handle);

  return {
    url: `http://127.0.0.1:${listener.addr.port}/`,
    /** Closes the first sensors stream from the server side. */
    dropSensorStream: () => drop.resolve(),
    /** Resolves with the Last-Event-ID header of the sensors reconnect request. */
    reconnected: reconnected.promise,
    /** Answers the held reconnect request with event 42. */
    resumeSensorStream: () => resume.resolve(),
    /** Resolves when the browser closes the resumed sensors stream. */
    sensorsClosedByPeer: sensorsClosedByPeer.promise,
    /** The query string of every sensors stream request. */
    sensorQueries,
    /** Resolves when the browser closes the heartbeat stream. */
    heartbeatClosedByPeer: heartbeatClosedByPeer.promise,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      drop.resolve();
      resume.resolve();
      for (const conn of conns) conn.close();
      conns.clear();
      await Promise.all(handlers);
    },
  };
}

async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  try {
    await page.waitForFunction(
      ([s, t]) => document.querySelector(s)?.textContent === t,
      [selector, text] as const,
    );
  } catch (error) {
    const actual = await page.textContent(selector);
    throw new Error(`${selector} never showed ${JSON.stringify(text)}: shows ${actual}`, {
      cause: error,
    });
  }
}

/** Answers a request for a dashboard file (404 when there is none), then the socket closes. */
async function answerAsset(
  conn: Deno.Conn,
  asset: { contentType: string; body: Uint8Array } | undefined,
): Promise<void> {
  const body = asset?.body ?? encoder.encode("not found");
  const head = `HTTP/1.1 ${asset ? "200 OK" : "404 Not Found"}\r\n` +
    `Content-Type: ${asset?.contentType ?? "text/plain"}\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  await writeAll(conn, encoder.encode(head));
  await writeAll(conn, body);
}

/** Accepts every connection of a fake hub and runs `handle` on it, tracking what is open. */
function acceptAll(
  listener: Deno.Listener,
  conns: Set<Deno.Conn>,
  handlers: Set<Promise<void>>,
  handle: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  return (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const done: Promise<void> = handle(conn)
        .catch(() => {/* peer went away */})
        .finally(() => {
          if (conns.delete(conn)) conn.close();
          handlers.delete(done);
        });
      handlers.add(done);
    }
  })().catch(() => {});
}

Deno.test({
  name: "dashboard shows live sensor values, ids and state through reconnect and close",
  ignore: !browserAvailable(),
}, async () => {
  await using hub = startFakeHub(await loadStaticAssets());
  await using browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 800, height: 720 } });
  await page.goto(hub.url);

  await waitForText(page, "#state", "open");
  await waitForText(page, "#lastId", "41");
  // The newest events first, so the cards show current values at once.
  assert.match(hub.sensorQueries[0], /^rewind=\d+$/);
  const expectedA = String(Math.round(50 + 30 * Math.sin(39 / 4)));
  assert.equal(await page.textContent("#sensorA"), expectedA, "value of the last sensorA event");
  assert.equal(await page.textContent("#sensorB"), "33", "unnamed message updates #sensorB");
  assert.equal(await page.textContent("#count"), "42", "40 named + 1 keep-alive + 1 unnamed");
  await waitForText(page, "#heartbeat", `${HEARTBEAT_TIME} (uptime 42 s)`);
  const received = await page.evaluate(() => sluiceDashboard.received);
  assert.deepEqual(received, Array.from({ length: 41 }, (_, i) => String(i + 1)));
  await page.waitForFunction(() => document.querySelectorAll("#chart polyline").length === 2);
  // Events arrived within the 5 s window, so the rate is positive (a guard, not a timing check).
  await page.waitForFunction(() => Number(document.querySelector("#eps")?.textContent) > 0);
  assert.match(await page.textContent("#eps") ?? "", /^\d+\.\d$/);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  hub.dropSensorStream();
  await waitForText(page, "#state", "reconnecting");
  assert.equal(await hub.reconnected, "41", "reconnect resumes from the last id");
  hub.resumeSensorStream();
  await waitForText(page, "#state", "open");
  await waitForText(page, "#lastId", "42");
  assert.equal(await page.textContent("#sensorA"), "60");

  await page.click("#close");
  await waitForText(page, "#state", "closed");
  assert.equal(await page.isDisabled("#close"), true);
  await hub.sensorsClosedByPeer;
  await hub.heartbeatClosedByPeer;
  const after = await page.evaluate(() => sluiceDashboard.received);
  assert.deepEqual(after, Array.from({ length: 42 }, (_, i) => String(i + 1)));
});

/**
 * A scripted fake hub for the open-state tests: each stream path answers with
 * the events it is given and stays open; `/status` answers `status` (404 when
 * undefined). `push(path, text)` sends more on the open streams of `path`.
 */
function startScriptedHub(
  assets: Map<string, StaticAsset>,
  streams: Record<string, string>,
  status?: object,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const open = new Map<string, Deno.Conn[]>();
  const queries = new Map<string, string>();

  async function handle(conn: Deno.Conn): Promise<void> {
    const request = await readRequest(conn);
    if (request === null) return;
    const script = streams[request.path];
    if (script !== undefined) {
      queries.set(request.path, request.query);
      await writeAll(conn, encoder.encode(SSE_HEAD + script));
      open.set(request.path, [...(open.get(request.path) ?? []), conn]);
      await untilPeerCloses(conn);
      return;
    }
    const asset = request.path === "/status"
      ? status && { contentType: "application/json", body: encoder.encode(JSON.stringify(status)) }
      : assets.get(request.path);
    await answerAsset(conn, asset);
  }

  const accepting = acceptAll(listener, conns, handlers, handle);

  return {
    url: `http://127.0.0.1:${listener.addr.port}/`,
    /** The query string each stream path was requested with. */
    queries,
    /** Sends `text` on every open stream of `path`. */
    async push(path: string, text: string): Promise<void> {
      for (const conn of open.get(path) ?? []) await writeAll(conn, encoder.encode(text));
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
      conns.clear();
      await Promise.all(handlers);
    },
  };
}

/** The chart's axis labels, top to bottom as drawn (numeric ones only). */
async function axisNumbers(page: Page): Promise<string[]> {
  const labels = await page.evaluate(() =>
    [...document.querySelectorAll("#chart .axis-label") as unknown as { textContent: string }[]]
      .map((n) => n.textContent)
  );
  return labels.filter((t) => /^-?\d+(\.\d+)?$/.test(t));
}

Deno.test({
  name: "dashboard shows the current value on open, round distinct axis labels, none without data",
  ignore: !browserAvailable(),
}, async () => {
  const assets = await loadStaticAssets();
  await using browser = await launchBrowser();
  {
    // What the hub's ?rewind= answers with when sensor A changed once: one event.
    const one =
      `id: 7\nevent: event\ndata: {"TYPE":"STATE","sensorA":{"state":21,"prevState":20}}\n\n`;
    await using hub = startScriptedHub(assets, {
      "/events/sensors": one,
      "/events/heartbeat": "",
    });
    const page = await browser.newPage();
    await page.goto(hub.url);
    await waitForText(page, "#sensorA", "21");
    assert.equal(await page.textContent("#sensorAPrev"), "20");
    assert.equal(await page.textContent("#sensorB"), "–");
    assert.match(hub.queries.get("/events/sensors") ?? "", /^rewind=\d+$/);
    assert.equal(hub.queries.get("/events/heartbeat"), "rewind=1");
    await page.waitForFunction(() => document.querySelectorAll("#chart polyline").length === 1);
    const labels = await axisNumbers(page);
    const values = labels.map(Number);
    assert.ok(labels.length >= 2 && labels.length <= 6, `labels: ${labels}`);
    assert.equal(new Set(labels).size, labels.length, `distinct labels: ${labels}`);
    assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `ascending: ${labels}`);
    assert.ok(values[0] < 21 && values.at(-1)! > 21, `21 inside the axis: ${labels}`);
    // Without MQTT in /status (404 here), the MQTT section stays hidden.
    assert.equal(await page.isHidden("#mqtt"), true);
    await page.close();
  }
  {
    await using hub = startScriptedHub(assets, { "/events/sensors": "", "/events/heartbeat": "" });
    const page = await browser.newPage();
    await page.goto(hub.url);
    await waitForText(page, "#state", "open");
    assert.deepEqual(await axisNumbers(page), [], "no numbers on an axis without data");
    assert.equal(await page.textContent("#chart .no-data"), "no values yet");
    await page.close();
  }
});

Deno.test({
  name: "dashboard shows one tile per bridged MQTT sensor with its latest value, updated live",
  ignore: !browserAvailable(),
}, async () => {
  const state = (n: number) => `{"TYPE":"STATE","sensorB":{"state":${n},"prevState":1}}`;
  await using hub = startScriptedHub(await loadStaticAssets(), {
    "/events/sensors": "",
    "/events/heartbeat": "",
    // What ?topic=sensors/+/#&rewind=1 answers with: the latest event of each channel.
    "/events": `id: 5\nevent: sensors/d02/state\ndata: ${state(300)}\n\n` +
      `id: 6\nevent: sensors/kitchen/temp\ndata: 21.50\n\n`,
  }, { mqtt: { connected: true } });
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(hub.url);
  await page.waitForFunction(() => document.querySelectorAll(".tile").length === 2);
  assert.equal(await page.isVisible("#mqtt"), true);
  assert.equal(await page.isHidden("#mqttEmpty"), true);
  assert.equal(hub.queries.get("/events"), "topic=sensors/%2B/%23&rewind=1");
  const tile = (channel: string) => `.tile[data-channel="${channel}"] .tile-value`;
  assert.equal(await page.textContent(tile("sensors/d02/state")), "sensorB 300");
  assert.equal(await page.textContent(tile("sensors/kitchen/temp")), "21.50");
  // A new device and a new value of a known one, live; tiles sorted by channel.
  await hub.push("/events", `id: 7\nevent: sensors/d01/state\ndata: ${state(42)}\n\n`);
  await hub.push("/events", `id: 8\nevent: sensors/kitchen/temp\ndata: 22\n\n`);
  await waitForText(page, tile("sensors/kitchen/temp"), "22");
  assert.equal(await page.textContent(tile("sensors/d01/state")), "sensorB 42");
  const order = await page.evaluate(() =>
    [...document.querySelectorAll(".tile h3") as unknown as { textContent: string }[]]
      .map((n) => n.textContent)
  );
  assert.deepEqual(order, ["sensors/d01/state", "sensors/d02/state", "sensors/kitchen/temp"]);
  await page.click("#close");
  await waitForText(page, "#state", "closed");
});

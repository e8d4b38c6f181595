/**
 * The hub with its MQTT bridge, end to end, as a user runs it: a private
 * Mosquitto (persistence on) on a free port, the CLI (`main.ts --mqtt`) as a
 * child process, devices publishing with `mosquitto_pub` or MQTT.js, and
 * subscribers reading with `curl -N`, the raw client and Chromium's
 * `EventSource`. Deadlines only guard against hangs.
 */

import assert from "node:assert/strict";
import { MQTT_CLIENT_SPECIFIER } from "../../server/hub/mqtt/mod.ts";
import { Mosquitto, MOSQUITTO_PUB_PATH, mosquittoAvailable } from "../_util/mosquitto.ts";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";
import { RawClient } from "../_util/raw_client.ts";
import { type ParsedEvent, SseParser } from "../_util/sse_parser.ts";
import { within } from "../_util/within.ts";
import { hasCommand, publish, request } from "./_hub.ts";

const ignore = !mosquittoAvailable();
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The hub CLI with a bridge, in a child process, its log kept. */
interface MqttHub extends AsyncDisposable {
  readonly port: number;
  /** Everything it logged so far (stdout and stderr). */
  log(): string;
  /** Sends `signal` and waits for the process to exit. Idempotent. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

async function startHub(mqttUrl: string, args: string[], port = 0): Promise<MqttHub> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", MAIN, "--port", String(port), "--hostname", "127.0.0.1"],
      ...["--keepalive", "0", "--mqtt", mqttUrl, ...args],
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) log += text;
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  let killed: Promise<Deno.CommandStatus> | undefined;
  const kill = (signal: Deno.Signal = "SIGTERM") =>
    killed ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      const status = await within(child.status, "hub exit");
      await reading;
      return status;
    })();
  try {
    const listening = await within(
      (async () => {
        for (;;) {
          const m = /listening url="http:\/\/127\.0\.0\.1:(\d+)\/"/.exec(log);
          if (m) return Number(m[1]);
          const exited = await Promise.race([
            child.status.then(() => true),
            new Promise((r) => setTimeout(r, 20, false)),
          ]);
          if (exited) throw new Error(`hub exited before listening: ${log}`);
        }
      })(),
      "hub listening",
      30_000,
    );
    return { port: listening, log: () => log, kill, [Symbol.asyncDispose]: () => kill().then() };
  } catch (err) {
    await kill("SIGKILL");
    throw err;
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function status(port: number): Promise<Json> {
  const res = await request(port, "GET", "/status");
  assert.equal(res.status, 200);
  return JSON.parse(res.body);
}

/**
 * Polls the hub's `/status` until `pred` holds (a hang guard, not a timing
 * check). The CLI listens before its bridge is loaded, so `mqtt` may be
 * missing at first: that counts as "not yet".
 */
async function untilStatus(port: number, what: string, pred: (s: Json) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last: Json;
  while (!(last = await status(port)).mqtt || !pred(last)) {
    if (Date.now() > deadline) throw new Error(`hung: ${what}; /status: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return last;
}

async function untilLog(hub: MqttHub, re: RegExp, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(hub.log())) {
    if (Date.now() > deadline) throw new Error(`hung: log ${re}: ${hub.log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `curl -N` on a stream, read in the background; `stop()` ends it and parses what came. */
function curlStream(url: string) {
  const child = new Deno.Command("curl", {
    args: ["-sSN", "--max-time", "40", url],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let text = "";
  const reading = (async () => {
    for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) text += t;
  })();
  const events = (): ParsedEvent[] => {
    const p = new SseParser();
    p.feed(text);
    return p.events;
  };
  return {
    events,
    async until(n: number, what: string): Promise<ParsedEvent[]> {
      const deadline = Date.now() + 20_000;
      while (events().length < n) {
        if (Date.now() > deadline) throw new Error(`hung: ${what}: ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return events();
    },
    async stop(): Promise<Deno.CommandStatus> {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const s = await child.status;
      await reading;
      return s;
    },
  };
}

Deno.test({
  name: "mosquitto_pub messages (QoS 0/1, retained or not) reach curl -N and EventSource " +
    "with exact data, topic and id; ?rewind=1 shows the retained value first",
  ignore: ignore || !hasCommand("curl") || !browserAvailable(),
}, async () => {
  await using broker = await Mosquitto.start();
  // Retained before the hub starts: the bridge's new subscription brings it.
  await broker.pub("sensors/kitchen/temp", "21.0", { qos: 1, retain: true });
  await using hub = await startHub(broker.url, [
    ...["--mqtt-topic", "sensors/#", "--mqtt-client-id", `e2e-deliver-${Deno.pid}`],
  ]);
  const base = `http://127.0.0.1:${hub.port}`;
  await untilStatus(hub.port, "retained recorded", (s) => s.mqtt.published === 1);

  const single = curlStream(`${base}/events/sensors/kitchen/temp?rewind=1`);
  const filter = curlStream(`${base}/events?topic=sensors/%2B/temp`);
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/status`);
    await page.evaluate(`(() => {
      const got = globalThis.got = { single: [], filter: [], errors: 0 };
      const one = new EventSource("/events/sensors/kitchen/temp?rewind=1");
      one.onmessage = (e) => got.single.push([e.type, e.data, e.lastEventId]);
      one.onerror = () => got.errors++;
      const many = new EventSource("/events?topic=sensors/%2B/temp");
      for (const t of ["sensors/kitchen/temp", "sensors/attic/temp", "sensors/kitchen/hum"]) {
        many.addEventListener(t, (e) => got.filter.push([e.type, e.data, e.lastEventId]));
      }
      many.onmessage = (e) => got.filter.push(["message", e.data, e.lastEventId]);
      many.onerror = () => got.errors++;
    })()`);
    await untilStatus(hub.port, "four streams", (s) => s.sessions.open === 4);

    await broker.pub("sensors/kitchen/temp", "21.5", { qos: 0 });
    await broker.pub("sensors/kitchen/temp", "22.0", { qos: 1, retain: true });
    // A topic the filter stream has never seen, after it connected.
    await broker.pub("sensors/attic/temp", '{"t":12.5,"unit":"°C"}', { qos: 1 });
    await broker.pub("sensors/kitchen/hum", "40", { qos: 1 });
    await broker.pub("sensors/kitchen/temp", "line 1\nline 2", { qos: 0, retain: true });

    const a = await single.until(4, "single stream");
    const f = await filter.until(4, "filter stream");
    assert.deepEqual(a.map((e) => [e.type, e.data]), [
      ["message", "21.0"], // the retained value, first
      ["message", "21.5"],
      ["message", "22.0"],
      ["message", "line 1\nline 2"],
    ]);
    assert.deepEqual(f.map((e) => [e.type, e.data]), [
      ["sensors/kitchen/temp", "21.5"],
      ["sensors/kitchen/temp", "22.0"],
      ["sensors/attic/temp", '{"t":12.5,"unit":"°C"}'],
      ["sensors/kitchen/temp", "line 1\nline 2"],
    ]);
    // One id per event, the same on every stream, increasing.
    assert.deepEqual(
      f.filter((e) => e.type === "sensors/kitchen/temp").map((e) => e.lastEventId),
      a.slice(1).map((e) => e.lastEventId),
    );
    const ids = f.map((e) => BigInt(e.lastEventId));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], "ids increase");

    await page.waitForFunction("got.single.length === 4 && got.filter.length === 4", null, {
      timeout: 20_000,
    });
    const got = await page.evaluate("got") as Json;
    assert.deepEqual(got.single, a.map((e) => [e.type, e.data, e.lastEventId]));
    assert.deepEqual(got.filter, f.map((e) => [e.type, e.data, e.lastEventId]));
    assert.equal(got.errors, 0);

    // A new stream with ?rewind=1 starts with the current (last retained) value.
    const late = await RawClient.stream(hub.port, "/events/sensors/kitchen/temp?rewind=1");
    await using _late = late.client;
    await within(late.client.readEvents(late.parser, 1), "rewind");
    assert.deepEqual(late.parser.events[0], a[3]);
    const s = await status(hub.port);
    assert.equal(s.mqtt.published, 6);
    assert.equal(s.mqtt.messagesIn, 6);
  } finally {
    await page.close();
    await single.stop();
    await filter.stop();
  }
});

Deno.test({
  name: "hub killed with SIGKILL while 10 000 QoS 1 messages flow: after a restart every " +
    "message is in history, duplicates within the bridge's bound",
  ignore,
}, async () => {
  const N = 10_000;
  // The queue must hold a burst: mosquitto_pub outruns the bridge, and the
  // default max_queued_messages (1000) drops what is beyond it.
  await using broker = await Mosquitto.start({ config: ["max_queued_messages 0"] });
  const dir = await Deno.makeTempDir({ prefix: "sluice_mqtt_kill_" });
  const args = [
    ...["--mqtt-topic", "load/#", "--mqtt-client-id", `e2e-kill-${Deno.pid}`],
    ...["--history", "20000", "--history-bytes", "8000000", "--history-file", `${dir}/h.db`],
  ];
  let hub = await startHub(broker.url, args);
  let pub: Deno.ChildProcess | undefined;
  try {
    await untilStatus(hub.port, "subscribed", (s) => s.mqtt.subscribed);
    await broker.pub("load/seq", "start", { qos: 1 });
    await untilStatus(hub.port, "start marker", (s) => s.mqtt.published === 1);
    const first = await RawClient.stream(hub.port, "/events/load/seq?rewind=1");
    let startId: string;
    {
      await using _c = first.client;
      await within(first.client.readEvents(first.parser, 1), "start marker");
      startId = first.parser.events[0].lastEventId;
    }

    // One device: mosquitto_pub -l, one QoS 1 message per line of its stdin.
    pub = new Deno.Command(MOSQUITTO_PUB_PATH, {
      args: ["-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-t", "load/seq", "-l"],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = Array.from({ length: N }, (_, i) => `${i + 1}\n`).join("");
    const w = pub.stdin.getWriter();
    await w.write(new TextEncoder().encode(lines));
    await w.close();

    // Kill the hub mid-flow, with part of the messages recorded.
    const atKill = await untilStatus(hub.port, "some recorded", (s) => s.mqtt.published >= 501);
    const killed = await hub.kill("SIGKILL");
    assert.equal(killed.signal, "SIGKILL");
    const out = await within(pub.output(), "mosquitto_pub done");
    pub = undefined;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    await broker.pub("load/seq", "end", { qos: 1 });

    hub = await startHub(broker.url, args);
    const s = await RawClient.stream(hub.port, "/events/load/seq", { "Last-Event-ID": startId });
    await using _s = s.client;
    await within(
      (async () => {
        while (s.parser.events.at(-1)?.data !== "end") {
          await s.client.readEvents(s.parser, s.parser.events.length + 1);
        }
      })(),
      "the end marker",
      40_000,
    );
    const events = s.parser.events.slice(0, -1);
    assert.ok(events.every((e) => e.type === "message"), "no gap notice");
    const values = events.map((e) => Number(e.data));
    const unique = new Set(values);
    const duplicates = values.length - unique.size;
    assert.equal(unique.size, N, "every message is in history");
    // First occurrences keep the publish order.
    const firsts = values.filter((v, i) => values.indexOf(v) === i);
    assert.deepEqual(firsts, Array.from({ length: N }, (_, i) => i + 1));
    // The bound of server/hub/mqtt/README.md: the in-flight window per lost
    // connection (receiveMaximum 16); in practice 0 or 1.
    assert.ok(duplicates <= 16, `${duplicates} duplicates`);
    const st = await status(hub.port);
    console.log(
      `sent ${N}, recorded before SIGKILL about ${atKill.mqtt.published - 1}, ` +
        `in history ${values.length} (${unique.size} distinct), ` +
        `duplicates ${duplicates}, redelivered after restart ${st.mqtt.redelivered}`,
    );
  } finally {
    if (pub) {
      try {
        pub.kill("SIGKILL");
      } catch { /* exited */ }
      await pub.output().catch(() => {});
    }
    await hub.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "broker stopped and restarted: the bridge reconnects, a persistent-session device's " +
    "messages from meanwhile arrive, open streams stay open without errors",
  ignore,
}, async () => {
  await using broker = await Mosquitto.start();
  await using hub = await startHub(broker.url, [
    ...["--mqtt-topic", "dev/#", "--mqtt-client-id", `e2e-restart-${Deno.pid}`],
  ]);
  await untilStatus(hub.port, "subscribed", (s) => s.mqtt.subscribed);
  const sub = await RawClient.stream(hub.port, "/events?topic=dev/%23");
  await using _sub = sub.client;
  const mqtt = await import(MQTT_CLIENT_SPECIFIER) as typeof import("npm:mqtt@5.16.0");
  const device = mqtt.connect(broker.url, {
    clientId: `e2e-device-${Deno.pid}`,
    clean: false,
    reconnectPeriod: 200,
  });
  try {
    await within(new Promise((r) => device.once("connect", r)), "device connected");
    await device.publishAsync("dev/d1/state", "before", { qos: 1 });
    await within(sub.client.readEvents(sub.parser, 1), "before");

    await broker.stop();
    await untilStatus(hub.port, "bridge disconnected", (s) => !s.mqtt.connected);
    // Published while the broker is down: the device keeps them until it is back.
    const during = [1, 2, 3].map((i) =>
      device.publishAsync("dev/d1/state", `during ${i}`, { qos: 1 })
    );
    await broker.restart();
    await within(Promise.all(during), "device's messages acknowledged");
    await within(sub.client.readEvents(sub.parser, 4), "messages from the outage");
    await broker.pub("dev/d2/state", "after", { qos: 1 });
    await within(sub.client.readEvents(sub.parser, 5), "after");
    assert.deepEqual(sub.parser.events.map((e) => [e.type, e.data]), [
      ["dev/d1/state", "before"],
      ["dev/d1/state", "during 1"],
      ["dev/d1/state", "during 2"],
      ["dev/d1/state", "during 3"],
      ["dev/d2/state", "after"],
    ]);
    const s = await status(hub.port);
    assert.equal(s.mqtt.connected, true);
    assert.ok(s.mqtt.reconnects >= 1, "the bridge reconnected");
    // The same stream carried everything: never closed, no gap notice.
    assert.equal(s.sessions.open, 1);
    assert.equal(sub.client.eof, false);
    // The broker kept the bridge's session across its restart.
    await untilLog(hub, /mqtt bridge connected sessionPresent=true/);
  } finally {
    await device.endAsync(true);
  }
});

Deno.test({
  name: "bad input: non-UTF-8, oversized, odd topics and refused credentials are logged and " +
    "counted in /metrics and /status; the hub keeps serving",
  ignore,
}, async () => {
  await using broker = await Mosquitto.start({ users: { gw: "gw-pass" } });
  const url = (password: string) => broker.url.replace("://", `://gw:${password}@`);
  await using refused = await startHub(url("not-the-password"), [
    ...["--mqtt-client-id", `e2e-refused-${Deno.pid}`],
  ]);
  await using hub = await startHub(url("gw-pass"), [
    ...["--mqtt-client-id", `e2e-bad-${Deno.pid}`, "--max-event-bytes", "1000"],
  ]);

  // Refused credentials: an error line with the user (never the password),
  // a metric, and the hub still serves publishers and subscribers.
  await untilLog(refused, /ERROR\s+mqtt bridge not authorized.*user="gw"/);
  assert.doesNotMatch(refused.log(), /not-the-password/);
  const metrics = (await request(refused.port, "GET", "/metrics")).body;
  assert.match(metrics, /^sluice_mqtt_auth_failures [1-9]\d*$/m);
  assert.match(metrics, /^sluice_mqtt_connected 0$/m);
  const rs = await status(refused.port);
  assert.ok(rs.mqtt.authFailures >= 1);
  assert.equal(rs.mqtt.connected, false);
  const news = await RawClient.stream(refused.port, "/events/news");
  await using _news = news.client;
  await untilStatus(refused.port, "news stream", (s) => s.sessions.open === 1);
  assert.equal((await publish(refused.port, "/events/news", "still serving")).status, 202);
  await within(news.client.readEvents(news.parser, 1), "news");
  assert.equal(news.parser.events[0].data, "still serving");

  await untilStatus(hub.port, "subscribed", (s) => s.mqtt.subscribed);
  const sub = await RawClient.stream(hub.port, "/events?topic=%23");
  await using _sub = sub.client;
  await untilStatus(hub.port, "filter stream", (s) => s.sessions.open === 1);
  const dev = { qos: 1, user: "gw", password: "gw-pass" } as const;
  await broker.pub("dev/bin", new Uint8Array([0x7b, 0xc3, 0x28, 0xff, 0x7d]), dev);
  await broker.pub("dev/big", "x".repeat(1001), dev);
  for (const topic of ["dev//x", "dev/with space", "dev/café", "dev/a:b", "/dev"]) {
    await broker.pub(topic, "odd", dev);
  }
  await broker.pub("dev/ok", "y".repeat(1000), dev);
  await within(sub.client.readEvents(sub.parser, 1), "the good message");
  assert.deepEqual(sub.parser.events.map((e) => [e.type, e.data.length]), [["dev/ok", 1000]]);

  const m = (await request(hub.port, "GET", "/metrics")).body;
  assert.match(m, /^sluice_mqtt_refused_not_utf8 1$/m);
  assert.match(m, /^sluice_mqtt_refused_too_large 1$/m);
  assert.match(m, /^sluice_mqtt_refused_bad_topic 5$/m);
  assert.match(m, /^sluice_mqtt_published 1$/m);
  const s = await status(hub.port);
  assert.deepEqual(s.mqtt.refused, { badTopic: 5, tooLarge: 1, notUtf8: 1, empty: 0 });
  // One clear line each (the logger batches lines: wait for them).
  await untilLog(hub, /WARN\s+mqtt bridge refused a message: notUtf8 topic="dev\/bin"/);
  await untilLog(hub, /WARN\s+mqtt bridge refused a message: tooLarge topic="dev\/big" bytes=1001/);
  for (const topic of ["dev//x", "dev/with space", "dev/café", "dev/a:b", "/dev"]) {
    const line = `outside the channel grammar topic=${JSON.stringify(topic)}`;
    await untilLog(hub, new RegExp(line.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")));
  }
  assert.equal((await request(hub.port, "GET", "/")).status, 200, "still serving");
});

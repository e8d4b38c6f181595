/**
 * The MQTT bridge against a real Mosquitto: devices publish with
 * `mosquitto_pub` (or MQTT.js), the bridge hands messages to a `publish`
 * backed by an in-memory log, and the tests check what the log holds and
 * what the broker redelivers. Deadlines only guard against hangs.
 */

import assert from "node:assert/strict";
import {
  MQTT_CLIENT_SPECIFIER,
  MqttBridge,
  type MqttBridgeOptions,
  type MqttEventFields,
} from "../../server/hub/mqtt/mod.ts";
import { Mosquitto, mosquittoAvailable } from "../_util/mosquitto.ts";

const ignore = !mosquittoAvailable();

interface Recorded {
  readonly channel: string;
  readonly data: string;
  readonly retained: boolean;
}

/** The hub's side, in memory: an ordered log that can be made to refuse. */
class EventLog {
  readonly events: Recorded[] = [];
  failing = false;
  attempts = 0;
  readonly publish = (channel: string, data: string, fields: MqttEventFields): Promise<string> => {
    this.attempts++;
    if (this.failing) return Promise.reject(new Error("queue full"));
    this.events.push({ channel, data, retained: fields.retained === true });
    return Promise.resolve(String(this.events.length));
  };
  data(channel?: string): string[] {
    return this.events.filter((e) => channel === undefined || e.channel === channel).map((e) =>
      e.data
    );
  }
}

interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

async function waitFor(what: string, pred: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`hung: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let nextId = 0;
function startBridge(
  broker: Mosquitto,
  log: EventLog,
  options: Partial<MqttBridgeOptions> = {},
  lines: LogLine[] = [],
): Promise<MqttBridge> {
  return MqttBridge.start({
    url: broker.url,
    publish: log.publish,
    clientId: `test-bridge-${Deno.pid}-${nextId++}`,
    reconnectMinMs: 50,
    reconnectMaxMs: 300,
    retryMinMs: 20,
    retryMaxMs: 100,
    logger: (level, message, fields) => lines.push({ level, message, fields }),
    ...options,
  });
}

// Sanitizers stay on: close() and endAsync() leave no timer or socket behind.
const mqttTest = { ignore } as const;

Deno.test({
  name: "bridge publishes QoS 0 and 1, retained and not, with exact data on the topic's channel",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  const retainedJson = '{"TYPE":"STATE","sensorA":{"state":7,"prevState":3}}';
  await broker.pub("sensors/d0/state", retainedJson, { qos: 1, retain: true });
  await using bridge = await startBridge(broker, log, { topics: ["sensors/#", "alarms/+"] });
  await waitFor("retained message", () => log.events.length === 1);
  assert.deepEqual(log.events[0], {
    channel: "sensors/d0/state",
    data: retainedJson,
    retained: true,
  });
  await waitFor("subscribed", () => bridge.stats.subscribed);

  const json = '{"TYPE":"STATE","sensorB":{"state":1,"prevState":65535}}';
  await broker.pub("sensors/d1/state", json, { qos: 0 });
  await broker.pub("sensors/d1/state", "two\nlines ünïcode", { qos: 1 });
  await broker.pub("other/x", "not subscribed", { qos: 1 });
  await broker.pub("alarms/d1", "alarm", { qos: 1, retain: true });
  await waitFor("four events", () => log.events.length === 4);
  assert.deepEqual(log.events.slice(1), [
    { channel: "sensors/d1/state", data: json, retained: false },
    { channel: "sensors/d1/state", data: "two\nlines ünïcode", retained: false },
    // A retained message published while subscribed arrives as a live one.
    { channel: "alarms/d1", data: "alarm", retained: false },
  ]);
  const s = bridge.stats;
  assert.equal(s.connected, true);
  assert.equal(s.messagesIn, 4);
  assert.equal(s.published, 4);
  assert.equal(s.acksWithheld, 0);
});

Deno.test({
  name:
    "bridge refuses non-UTF-8, oversized, empty payloads and odd topics, acks them, keeps going",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  const lines: LogLine[] = [];
  const clientId = `test-refuse-${Deno.pid}`;
  {
    await using bridge = await startBridge(broker, log, { clientId, maxPayloadBytes: 100 }, lines);
    await waitFor("subscribed", () => bridge.stats.subscribed);
    await broker.pub("dev/bin", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), { qos: 1 });
    await broker.pub("dev/big", "x".repeat(101), { qos: 1 });
    await broker.pub("dev/fits", "y".repeat(100), { qos: 1 });
    await broker.pub("dev/empty", "", { qos: 1 });
    for (const topic of ["a//b", "/x", "x/", "with space", "capteur/é", "a/../b"]) {
      await broker.pub(topic, "odd", { qos: 1 });
      await broker.pub(topic, "odd again", { qos: 1 });
    }
    await broker.pub("dev/last", "still working", { qos: 1 });
    await waitFor("last message", () => log.data().includes("still working"));
    assert.deepEqual(log.events.map((e) => e.channel), ["dev/fits", "dev/last"]);
    const s = bridge.stats;
    assert.deepEqual(s.refused, { notUtf8: 1, tooLarge: 1, empty: 1, badTopic: 12 });
    assert.equal(s.messagesIn, 17);
    assert.equal(s.published, 2);
    // Each bad topic is logged once, however often it comes.
    const topicLines = lines.filter((l) => l.message.includes("outside the channel grammar"));
    assert.deepEqual(topicLines.map((l) => l.fields?.topic), [
      "a//b",
      "/x",
      "x/",
      "with space",
      "capteur/é",
      "a/../b",
    ]);
    assert.ok(lines.some((l) => l.message.includes("notUtf8")));
    assert.ok(lines.some((l) => l.message.includes("tooLarge")));
  }
  // The refused messages were acknowledged: the session holds nothing for
  // the same client id, which gets only what is published next.
  const log2 = new EventLog();
  await using again = await startBridge(broker, log2, { clientId });
  await waitFor("subscribed again", () => again.stats.subscribed);
  await broker.pub("dev/next", "next", { qos: 1 });
  await waitFor("next message", () => log2.events.length === 1);
  assert.deepEqual(log2.data(), ["next"]);
  assert.equal(again.stats.messagesIn, 1);
  assert.equal(again.stats.redelivered, 0);
});

Deno.test({
  name: "while publish rejects the ack is withheld; a restarted bridge gets every message again",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const clientId = `test-withhold-${Deno.pid}`;
  const failing = new EventLog();
  failing.failing = true;
  {
    await using bridge = await startBridge(broker, failing, { clientId });
    await waitFor("subscribed", () => bridge.stats.subscribed);
    for (let i = 1; i <= 3; i++) await broker.pub("q/a", `m${i}`, { qos: 1 });
    await waitFor("retries", () => failing.attempts >= 3 && bridge.stats.acksWithheld === 1);
    assert.equal(bridge.stats.published, 0);
    assert.ok(bridge.stats.publishFailures >= 3);
    assert.match(bridge.stats.lastError ?? "", /queue full/);
    // One message at a time, in order: the first is retried, the others wait.
    assert.equal(bridge.stats.messagesIn, 1);
  }
  // Second observation: the broker never got a PUBACK, so the same session
  // receives all three again, the first marked as a redelivery.
  const log = new EventLog();
  await using bridge = await startBridge(broker, log, { clientId });
  await waitFor("three messages", () => log.events.length === 3);
  assert.deepEqual(log.data(), ["m1", "m2", "m3"]);
  assert.ok(bridge.stats.redelivered >= 1);
});

Deno.test({
  name: "publish rejecting for a while loses nothing and keeps the order once it resolves",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  await using bridge = await startBridge(broker, log, { topics: ["q/#"] });
  await waitFor("subscribed", () => bridge.stats.subscribed);
  await broker.pub("q/a", "before", { qos: 1 });
  await waitFor("first", () => log.events.length === 1);
  log.failing = true;
  for (let i = 1; i <= 5; i++) await broker.pub(`q/${i % 2 ? "a" : "b"}`, `m${i}`, { qos: 1 });
  await waitFor("withheld", () => bridge.stats.acksWithheld === 1 && log.attempts >= 4);
  log.failing = false;
  await waitFor("all", () => log.events.length === 6);
  assert.deepEqual(log.data(), ["before", "m1", "m2", "m3", "m4", "m5"]);
  assert.equal(bridge.stats.acksWithheld, 0);
  assert.equal(bridge.stats.published, 6);
});

Deno.test({
  name: "after a broker restart the bridge reconnects and gets what a device queued meanwhile",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  const lines: LogLine[] = [];
  await using bridge = await startBridge(broker, log, { topics: ["sensors/#"] }, lines);
  await waitFor("subscribed", () => bridge.stats.subscribed);
  await broker.pub("sensors/d1/state", "before", { qos: 1 });
  await waitFor("before", () => log.events.length === 1);

  await broker.stop();
  await waitFor("disconnected", () => !bridge.stats.connected);
  // A device with a persistent session publishes while the broker is down;
  // MQTT.js keeps its QoS 1 messages and sends them when it reconnects.
  const mqtt = await import(MQTT_CLIENT_SPECIFIER) as typeof import("npm:mqtt@5.16.0");
  const device = mqtt.connect(broker.url, {
    clientId: `test-device-${Deno.pid}`,
    clean: false,
    reconnectPeriod: 50,
  });
  try {
    const sent = [1, 2, 3].map((i) =>
      device.publishAsync("sensors/d1/state", `while down ${i}`, { qos: 1 })
    );
    await broker.restart();
    await Promise.all(sent);
    await waitFor("queued messages", () => log.events.length === 4);
  } finally {
    await device.endAsync(true);
  }
  assert.deepEqual(log.data(), ["before", "while down 1", "while down 2", "while down 3"]);
  assert.ok(bridge.stats.reconnects >= 1);
  assert.equal(bridge.stats.connected, true);
  assert.ok(lines.some((l) => l.message === "mqtt bridge disconnected"));
  assert.ok(lines.filter((l) => l.message === "mqtt bridge connected").length >= 2);
});

Deno.test({
  name: "a bridge whose session the broker kept gets messages published while it was away",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const clientId = `test-away-${Deno.pid}`;
  {
    await using bridge = await startBridge(broker, new EventLog(), { clientId });
    await waitFor("subscribed", () => bridge.stats.subscribed);
  }
  // Bridge gone; broker restarted too: the session and its queue are on disk.
  await broker.pub("sensors/d2/state", "queued 1", { qos: 1 });
  await broker.restart();
  await broker.pub("sensors/d2/state", "queued 2", { qos: 1 });
  const log = new EventLog();
  await using bridge = await startBridge(broker, log, { clientId });
  await waitFor("queued", () => log.events.length === 2);
  assert.deepEqual(log.data(), ["queued 1", "queued 2"]);
  assert.equal(bridge.stats.connected, true);
});

Deno.test({
  name: "bad credentials are counted and logged as not authorized; the bridge keeps retrying",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start({ users: { gw: "s3cret:/@" } });
  const lines: LogLine[] = [];
  const log = new EventLog();
  {
    await using bridge = await startBridge(broker, log, {
      url: `mqtt://gw:wrong@127.0.0.1:${broker.port}`,
    }, lines);
    await waitFor("two refusals", () => bridge.stats.authFailures >= 2);
    assert.equal(bridge.stats.connected, false);
    assert.ok(bridge.stats.reconnects >= 1);
    const refusals = lines.filter((l) => l.level === "error" && /not authorized/.test(l.message));
    assert.ok(refusals.length >= 2);
    assert.equal(refusals[0].fields?.user, "gw");
    // The password never reaches the logs.
    assert.ok(!JSON.stringify(lines).includes("wrong"));
  }
  // The right password, percent-encoded in the URL, is accepted.
  const pw = encodeURIComponent("s3cret:/@");
  await using bridge = await startBridge(broker, log, {
    url: `mqtt://gw:${pw}@127.0.0.1:${broker.port}`,
  });
  await waitFor("subscribed", () => bridge.stats.subscribed);
  await broker.pub("x/y", "authorized", { qos: 1, user: "gw", password: "s3cret:/@" });
  await waitFor("message", () => log.events.length === 1);
  assert.equal(bridge.stats.authFailures, 0);
});

Deno.test({
  name: "close() is idempotent and stops reconnecting to a broker that is down",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const bridge = await startBridge(broker, new EventLog());
  await waitFor("subscribed", () => bridge.stats.subscribed);
  await broker.stop();
  await waitFor("disconnected", () => !bridge.stats.connected);
  await Promise.all([bridge.close(), bridge.close()]);
  await bridge.close();
  const reconnects = bridge.stats.reconnects;
  await broker.restart();
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(bridge.stats.reconnects, reconnects);
  assert.equal(bridge.stats.connected, false);
});

Deno.test({
  name: "an outage longer than the keep-alive reconnects without losing or reordering messages",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  // While a withheld message stalls the connection, keep-alive answers wait
  // behind it, so the client times out and reconnects; the broker then
  // redelivers the withheld message on the new connection.
  await using bridge = await startBridge(broker, log, { keepaliveSeconds: 1 });
  await waitFor("subscribed", () => bridge.stats.subscribed);
  log.failing = true;
  for (let i = 1; i <= 4; i++) await broker.pub("k/a", `m${i}`, { qos: 1 });
  await waitFor("a reconnect during the outage", () => bridge.stats.reconnects >= 1);
  await waitFor("a redelivery", () => bridge.stats.redelivered >= 1);
  log.failing = false;
  await waitFor("all", () => log.events.length === 4);
  assert.deepEqual(log.data(), ["m1", "m2", "m3", "m4"]);
  await broker.pub("k/a", "after", { qos: 1 });
  await waitFor("after", () => log.events.length === 5);
  assert.equal(log.data()[4], "after");
});

async function runSim(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "examples/mqtt_device_sim.ts",
      ...args,
    ],
    cwd: new URL("../..", import.meta.url).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test({
  name: "the device simulator's sensor states reach the bridge as the demo's JSON",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const log = new EventLog();
  await using bridge = await startBridge(broker, log, { topics: ["sensors/+/state"] });
  await waitFor("subscribed", () => bridge.stats.subscribed);
  const sim = await runSim([
    "--broker",
    broker.url,
    "--devices",
    "2",
    "--interval",
    "0.02",
    "--count",
    "6",
  ]);
  assert.equal(sim.code, 0, sim.stderr);
  assert.equal(sim.stdout.trim().split("\n").length, 6);
  await waitFor("six states", () => log.events.length === 6);
  const channels = new Set(log.events.map((e) => e.channel));
  assert.deepEqual([...channels].sort(), ["sensors/d01/state", "sensors/d02/state"]);
  for (const e of log.events) {
    const json = JSON.parse(e.data);
    assert.equal(json.TYPE, "STATE");
    const [sensor, ...rest] = Object.keys(json).filter((k) => k !== "TYPE");
    assert.deepEqual(rest, []);
    assert.match(sensor, /^sensor[AB]$/);
    assert.deepEqual(Object.keys(json[sensor]), ["state", "prevState"]);
    assert.ok(sim.stdout.includes(`${e.channel} ${e.data}`));
  }
});

Deno.test("the device simulator answers --help with its usage and an unknown flag with exit 2", async () => {
  const help = await runSim(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: deno run -A examples\/mqtt_device_sim.ts/);
  assert.match(help.stdout, /--broker/);
  const bad = await runSim(["--colour", "red"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split("\n").length, 1);
  assert.match(bad.stderr, /--colour.*--help/);
});

async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-days", "2", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      // A leaf, not a CA: rustls refuses a CA certificate as the server's.
      ...["-addext", "basicConstraints=critical,CA:FALSE"],
      ...["-keyout", keyFile, "-out", certFile],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return { certFile, keyFile };
}

const hasOpenssl = (() => {
  try {
    return Deno.statSync("/usr/bin/openssl").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "bridge over mqtts:// trusts the given CA and publishes what arrives",
  ...mqttTest,
  ignore: ignore || !hasOpenssl,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_mqtts_" });
  try {
    const tls = await selfSignedCertificate(dir);
    // Mosquitto runs as root here and reads the key itself.
    await using broker = await Mosquitto.start({ tls });
    assert.match(broker.url, /^mqtts:\/\//);
    {
      // Without the CA the certificate is not trusted: errors, retries, no crash.
      await using untrusted = await startBridge(broker, new EventLog());
      await waitFor("a refused handshake", () => untrusted.stats.reconnects >= 1);
      assert.equal(untrusted.stats.connected, false);
      assert.ok(untrusted.stats.lastError !== null);
    }
    const log = new EventLog();
    await using bridge = await startBridge(broker, log, {
      ca: await Deno.readTextFile(tls.certFile),
    });
    await waitFor("subscribed", () => bridge.stats.subscribed);
    await broker.pub("secure/x", "over tls", { qos: 1 });
    await waitFor("message", () => log.events.length === 1);
    assert.deepEqual(log.events[0], { channel: "secure/x", data: "over tls", retained: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "with MQTT 3.1.1 the session persists too and withheld messages come back in order",
  ...mqttTest,
}, async () => {
  await using broker = await Mosquitto.start();
  const clientId = `test-v4-${Deno.pid}`;
  const failing = new EventLog();
  failing.failing = true;
  {
    await using bridge = await startBridge(broker, failing, { clientId, protocolVersion: 4 });
    await waitFor("subscribed", () => bridge.stats.subscribed);
    for (let i = 1; i <= 3; i++) await broker.pub("v4/a", `m${i}`, { qos: 1, retain: i === 3 });
    await waitFor("withheld", () => bridge.stats.acksWithheld === 1);
  }
  const log = new EventLog();
  await using bridge = await startBridge(broker, log, { clientId, protocolVersion: 4 });
  await waitFor("three messages", () => log.events.length === 3);
  assert.deepEqual(log.data(), ["m1", "m2", "m3"]);
  assert.ok(bridge.stats.redelivered >= 1);
});

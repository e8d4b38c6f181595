/**
 * Simulated ESP-class devices that publish sensor states over MQTT, for
 * trying the hub's MQTT bridge without hardware.
 *
 * ```sh
 * deno run --allow-net --allow-env --allow-read examples/mqtt_device_sim.ts \
 *   --broker mqtt://127.0.0.1:1883 --devices 3 --interval 2
 * ```
 *
 * Each device `d01`, `d02`, ... is its own MQTT client (client id
 * `sim-<device>`, persistent session) with two sensors, `sensorA` and
 * `sensorB`. Every `--interval` seconds each device gives one of its sensors
 * a new random 16-bit value and publishes the change to
 * `sensors/<device>/state`, QoS 1, retained, as the hub's demo sensors
 * shape it: `{"TYPE":"STATE","sensorA":{"state":N,"prevState":M}}`.
 * With `--count N` it stops after N messages in all were acknowledged by the
 * broker; without, it runs until interrupted. Each published message is
 * printed as `<topic> <json>`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sensorStateJson } from "../mod.ts";

const MQTT = "npm:mqtt@5.16.0";

const USAGE = `Usage: mqtt_device_sim [options]

Publishes simulated sensor states over MQTT (QoS 1, retained).

Options:
  --broker URL     mqtt://[user:pass@]host[:port] or mqtts://... (default mqtt://127.0.0.1:1883)
  --devices N      number of devices, 1-99 (default 2)
  --interval S     seconds between two messages of one device (default 1)
  --count N        stop after N messages in all; 0 runs forever (default 0)
  --help           show this help
`;

function fail(message: string): never {
  console.error(`mqtt_device_sim: ${message} (try --help)`);
  Deno.exit(2);
}

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: false,
      options: {
        broker: { type: "string", default: "mqtt://127.0.0.1:1883" },
        devices: { type: "string", default: "2" },
        interval: { type: "string", default: "1" },
        count: { type: "string", default: "0" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    // parseArgs explains at length; the first sentence says what was wrong.
    fail(String((err as Error).message).split(". ")[0]);
  }
}

function intFlag(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    fail(`--${name} must be an integer from ${min} to ${max}: received ${JSON.stringify(text)}`);
  }
  return n;
}

const flags = parseFlags();
if (flags.help) {
  console.log(USAGE.trimEnd());
  Deno.exit(0);
}
const devices = intFlag("devices", flags.devices, 1, 99);
const count = intFlag("count", flags.count, 0, Number.MAX_SAFE_INTEGER);
const intervalS = Number(flags.interval);
if (!Number.isFinite(intervalS) || intervalS <= 0 || intervalS > 86_400) {
  fail(`--interval must be seconds, more than 0: received ${JSON.stringify(flags.interval)}`);
}
if (!/^mqtts?:\/\/[^/]+\/?$/.test(flags.broker)) {
  fail(`--broker must be mqtt://[user:pass@]host[:port] or mqtts://...: received ${flags.broker}`);
}

const mqtt = await import(MQTT) as typeof import("npm:mqtt@5.16.0");

interface Device {
  readonly name: string;
  readonly client: import("npm:mqtt@5.16.0").MqttClient;
  readonly values: Map<string, number>;
}

const sims: Device[] = [];
for (let i = 1; i <= devices; i++) {
  const name = `d${String(i).padStart(2, "0")}`;
  const client = mqtt.connect(flags.broker, {
    clientId: `sim-${name}`,
    clean: false,
    reconnectPeriod: 1000,
  });
  client.on("error", (err) => console.error(`mqtt_device_sim: ${name}: ${err.message}`));
  sims.push({ name, client, values: new Map([["sensorA", 0], ["sensorB", 0]]) });
}

let started = 0;
let acked = 0;
const timers: ReturnType<typeof setInterval>[] = [];
const { promise: finished, resolve: finish } = Promise.withResolvers<void>();

function tick(device: Device): void {
  if (count > 0 && started >= count) return;
  started++;
  const sensor = Math.random() < 0.5 ? "sensorA" : "sensorB";
  const prevState = device.values.get(sensor)!;
  let state = Math.floor(Math.random() * 65_536);
  if (state === prevState) state = (state + 1) % 65_536;
  device.values.set(sensor, state);
  const topic = `sensors/${device.name}/state`;
  const json = sensorStateJson({ name: sensor, state, prevState });
  // MQTT.js keeps a QoS 1 message until the broker acknowledges it, across
  // reconnections.
  device.client.publishAsync(topic, json, { qos: 1, retain: true }).then(() => {
    console.log(`${topic} ${json}`);
    acked++;
    if (count > 0 && acked >= count) finish();
  }, (err) => console.error(`mqtt_device_sim: ${topic}: ${err.message}`));
}

for (const device of sims) {
  tick(device);
  timers.push(setInterval(() => tick(device), intervalS * 1000));
}

const stop = () => finish();
Deno.addSignalListener("SIGINT", stop);
await finished;
Deno.removeSignalListener("SIGINT", stop);
for (const t of timers) clearInterval(t);
await Promise.all(sims.map((d) => d.client.endAsync()));

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

import { cliFlags, sensorStateJson } from "../server/hub/mod.ts";

const MQTT = "npm:mqtt@5.16.0";

const { values: flags } = cliFlags({
  name: "mqtt_device_sim",
  usage: "deno run -A examples/mqtt_device_sim.ts [flags]",
  description: "Publishes simulated sensor states over MQTT (QoS 1, retained), as the seed " +
    'sketches did over SSE: {"TYPE":"STATE","sensorA":{"state":N,"prevState":M}}.',
  flags: {
    broker: {
      type: "string",
      default: "mqtt://127.0.0.1:1883",
      help: "mqtt://[user:pass@]host[:port] or mqtts://...",
    },
    devices: { type: "integer", default: 2, min: 1, max: 99, help: "number of devices" },
    interval: { type: "number", default: 1, help: "seconds between two messages of one device" },
    count: { type: "integer", default: 0, min: 0, help: "stop after N messages in all; 0: never" },
  },
});

function fail(message: string): never {
  console.error(`mqtt_device_sim: ${message}; run with --help for usage`);
  Deno.exit(2);
}

const devices = flags.devices;
const count = flags.count;
const intervalS = flags.interval;
if (!(intervalS > 0 && intervalS <= 86_400)) {
  fail(`--interval must be seconds, more than 0: received ${intervalS}`);
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

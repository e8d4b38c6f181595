import assert from "node:assert/strict";
import {
  DEFAULT_MQTT_BRIDGE_OPTIONS,
  MqttBridge,
  type MqttBridgeOptions,
  parseBrokerUrl,
} from "../../../server/hub/mqtt/mod.ts";

const publish = () => Promise.resolve("1");

async function refused(
  options: Partial<MqttBridgeOptions>,
  type: typeof TypeError | typeof RangeError,
  text: string,
): Promise<void> {
  await assert.rejects(
    () => MqttBridge.start({ url: "mqtt://127.0.0.1:1", publish, ...options }),
    (err) => {
      assert.ok(err instanceof type, `${err}`);
      assert.ok((err as Error).message.includes(text), (err as Error).message);
      return true;
    },
  );
}

Deno.test("parseBrokerUrl reads mqtt:// and mqtts:// URLs with percent-encoded credentials", () => {
  assert.deepEqual(parseBrokerUrl("mqtt://gw:p%40ss%3Aw@broker.local:1884"), {
    protocol: "mqtt",
    host: "broker.local",
    port: 1884,
    username: "gw",
    password: "p@ss:w",
  });
  assert.deepEqual(parseBrokerUrl("mqtts://10.0.0.2"), {
    protocol: "mqtts",
    host: "10.0.0.2",
    port: 8883,
    username: undefined,
    password: undefined,
  });
  assert.equal(parseBrokerUrl("mqtt://[::1]").host, "::1");
  assert.equal(parseBrokerUrl("mqtt://[::1]").port, 1883);
  assert.equal(parseBrokerUrl("mqtt://h/").port, 1883);
});

Deno.test("parseBrokerUrl refuses other schemes, paths and garbage, hiding the password", () => {
  for (const url of ["http://h:1883", "ws://h", "mqtt://h/topic", "mqtt://h?x=1", "broker:1883"]) {
    assert.throws(() => parseBrokerUrl(url), TypeError, url);
  }
  assert.throws(() => parseBrokerUrl("tcp://u:hunter2@h"), (err) => {
    assert.ok(err instanceof TypeError);
    assert.ok(!err.message.includes("hunter2"), err.message);
    return true;
  });
});

Deno.test("MqttBridge.start validates options before loading the client, naming the value", async () => {
  await refused({ url: "http://h" }, TypeError, `received "http://h"`);
  await refused(
    { publish: undefined as unknown as MqttBridgeOptions["publish"] },
    TypeError,
    "publish must be a function",
  );
  await refused({ topics: [] }, TypeError, "topics must be a non-empty list");
  await refused({ topics: ["a/#/b"] }, TypeError, `"#" may only be the last level`);
  await refused({ topics: ["$SYS/#"] }, TypeError, "level 1 must be");
  await refused({ clientId: "has space" }, TypeError, `received "has space"`);
  await refused({ clientId: "" }, TypeError, `received ""`);
  await refused({ maxPayloadBytes: 0 }, RangeError, "maxPayloadBytes must be an integer from 1");
  await refused({ maxPayloadBytes: 1.5 }, RangeError, "received 1.5");
  await refused({ receiveMaximum: 70_000 }, RangeError, "received 70000");
  await refused(
    { protocolVersion: 3 as 4 },
    RangeError,
    "protocolVersion must be 4 or 5: received 3",
  );
  await refused({ keepaliveSeconds: 0 }, RangeError, "keepaliveSeconds");
  await refused({ reconnectMinMs: 1000, reconnectMaxMs: 10 }, RangeError, "received 10");
  await refused({ retryMinMs: 100, retryMaxMs: 50 }, RangeError, "received 50");
  await refused({ event: "a\nb" }, TypeError, "without CR or LF");
  await refused(
    { logger: "console" as unknown as MqttBridgeOptions["logger"] },
    TypeError,
    "logger",
  );
});

Deno.test("DEFAULT_MQTT_BRIDGE_OPTIONS subscribes to everything with a 64 KiB payload cap", () => {
  assert.deepEqual(DEFAULT_MQTT_BRIDGE_OPTIONS.topics, ["#"]);
  assert.equal(DEFAULT_MQTT_BRIDGE_OPTIONS.maxPayloadBytes, 65_536);
  assert.equal(DEFAULT_MQTT_BRIDGE_OPTIONS.protocolVersion, 5);
});

Deno.test("the bridge's entry point loads no npm package: a hub without --mqtt starts offline", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_offline_" });
  try {
    const mod = new URL("../../../server/hub/mqtt/mod.ts", import.meta.url).href;
    const code = `const m = await import(${JSON.stringify(mod)});
      console.log(typeof m.MqttBridge.start, m.MQTT_CLIENT_SPECIFIER);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-lock", code],
      // An empty cache and an unreachable registry: any npm fetch would fail.
      env: { DENO_DIR: dir, NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    assert.equal(stdout.trim(), "function npm:mqtt@5.16.0");
    assert.ok(!stderr.includes("Download"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

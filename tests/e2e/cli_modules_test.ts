/**
 * The modules the hub loads on demand (Redis engine, MQTT bridge) fit the
 * small interfaces `main.ts` and `server/hub/mqtt_wiring.ts` describe them
 * with (they avoid `typeof import(…)`, which would load them at start).
 * Type-checking this file is the check; the test loads them too.
 */

import assert from "node:assert/strict";
import type { RedisEngineModule } from "../../main.ts";
import type { BridgeModule } from "../../server/hub/mqtt_wiring.ts";

Deno.test("the Redis engine and MQTT bridge modules fit what the CLI expects of them", async () => {
  const redis: RedisEngineModule = await import("../../queue/redis/mod.ts");
  const mqtt: BridgeModule = await import("../../server/hub/mqtt/mod.ts");
  assert.equal(typeof redis.RedisEngine.connect, "function");
  assert.equal(typeof mqtt.MqttBridge.start, "function");
});

/**
 * The hub's MQTT to SSE bridge: every message a device publishes to the
 * broker becomes an SSE event on the channel named by its topic, and is
 * acknowledged to the broker only once the hub recorded it. See this
 * folder's README for the topic grammar, the no-loss rules and the broker
 * settings that matter.
 *
 * A separate entry point of the hub application: importing it loads no
 * MQTT client; {@linkcode MqttBridge.start} does.
 *
 * @example
 * ```ts
 * import { MqttBridge } from "./mod.ts";
 * await using bridge = await MqttBridge.start({
 *   url: "mqtt://127.0.0.1:1883",
 *   topics: ["sensors/#"],
 *   publish: (channel, data, { retained }) => {
 *     console.log(channel, data, retained);
 *     return Promise.resolve("1");
 *   },
 * });
 * console.log(bridge.stats);
 * ```
 *
 * @module
 */

export { MQTT_CLIENT_SPECIFIER, MqttBridge } from "./mqtt_bridge.ts";
export type { MqttBridgeStats } from "./_stats.ts";
export { DEFAULT_MQTT_BRIDGE_OPTIONS, parseBrokerUrl } from "./_options.ts";
export type {
  MqttBridgeOptions,
  MqttBrokerAddress,
  MqttEventFields,
  MqttLogger,
  MqttPublish,
} from "./_options.ts";
export type { MqttRefusal } from "./_classify.ts";

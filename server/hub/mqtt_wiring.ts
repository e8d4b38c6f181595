/**
 * The hub's MQTT bridge: loads the bridge (and its npm client) only when the
 * hub is given a broker, publishes each message through the hub's source so
 * that it is recorded before the broker gets its acknowledgement, and adds
 * the bridge's counters to `/status` and `/metrics`.
 *
 * @module
 */

import type { Logger } from "../http/types.ts";
import type { Hub } from "./hub.ts";

/** The bridge module, loaded on start only (not a literal: see `mqtt/_mqtt_client.ts`). */
const BRIDGE_MODULE = new URL("./mqtt/mod.ts", import.meta.url).href;

/** How long one message waits for room in the hub's queue before the bridge retries it. */
const PUBLISH_WAIT_MS = 1000;

/** Options of {@linkcode startMqttBridge} (see `MqttBridgeOptions` in `mqtt/`). */
export interface HubBridgeOptions {
  /** `mqtt://[user:pass@]host:port` or `mqtts://…`. */
  readonly url: string;
  /** Topic filters to subscribe to. @default {["#"]} */
  readonly topics?: readonly string[];
  /** The persistent client id. @default {"sluice-<hostname>"} */
  readonly clientId?: string;
  /** Largest payload, in bytes (the hub's publish limit). */
  readonly maxPayloadBytes?: number;
  /** Where the bridge logs. */
  readonly logger?: Logger;
}

/** A running bridge, as the hub sees it. */
export interface HubBridge {
  /** Its counters (for `/status` and `/metrics`). */
  readonly stats: object;
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * What the hub uses of the bridge module. Written here rather than taken with
 * `typeof import(…)`: Deno loads a type-only import's module graph at start
 * too. `tests/e2e/cli_modules_test.ts` checks that the real module fits.
 */
export interface BridgeModule {
  /** The bridge's class. */
  readonly MqttBridge: {
    start(
      options: HubBridgeOptions & {
        publish: (channel: string, data: string, fields: { event?: string }) => Promise<string>;
      },
    ): Promise<HubBridge>;
  };
}

/**
 * Starts the MQTT bridge of a hub. Each message is published on the channel
 * named by its topic; the broker gets its acknowledgement once the event is
 * recorded (while the hub refuses, the bridge withholds it and retries).
 *
 * @param hub The running hub.
 * @param options Broker URL, topics, client id, limits, logger.
 * @returns The bridge (the hub stops it when it shuts down).
 * @throws {TypeError | RangeError} When an option is invalid.
 * @example
 * ```ts
 * import { startHub } from "./hub.ts";
 * import { startMqttBridge } from "./mqtt_wiring.ts";
 * await using hub = startHub({ port: 0 });
 * // await startMqttBridge(hub, { url: "mqtt://127.0.0.1:1883", topics: ["sensors/#"] });
 * ```
 */
export async function startMqttBridge(hub: Hub, options: HubBridgeOptions): Promise<HubBridge> {
  const { MqttBridge } = await import(BRIDGE_MODULE) as BridgeModule;
  const bridge = await MqttBridge.start({
    ...options,
    publish: async (channel, data, fields) =>
      await hub.events.publish(data, {
        channel,
        event: fields.event,
        timeoutMs: PUBLISH_WAIT_MS,
      }) ?? "",
  });
  hub.addStatus("mqtt", () => bridge.stats);
  hub.onShutdown(() => bridge.close());
  return bridge;
}

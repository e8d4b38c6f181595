/**
 * The Sluice hub: the application `main.ts` runs, as a library. Channels at
 * `/events/<channel>` (`GET` subscribes, `POST` publishes), multi-channel
 * streams at `/events?channel=a&channel=b`, the dashboard, `/metrics` and
 * `/status`, and the pieces the CLI builds it from (hub auth policy, publish
 * API parsing, demo sensors, memory reclaim, the CLI's line logger).
 *
 * @example
 * ```ts
 * import { startHub } from "@sluice/sluice/hub";
 *
 * await using hub = startHub({ port: 0, heartbeat: 1 });
 * hub.publish("news", "hello");
 * // curl -N http://127.0.0.1:<port>/events/news
 * ```
 *
 * @module
 */

export { DEFAULT_HUB_OPTIONS, type Hub, type HubOptions, startHub } from "./hub.ts";
export { channelsFromQuery, DEFAULT_MAX_CHANNELS, selectionFromQuery } from "./channels.ts";
export {
  DEFAULT_PUBLISH_API_OPTIONS,
  parsePublishRequest,
  PUBLISH_JSON_KEYS,
  type PublishApiOptions,
  type PublishRequest,
} from "./publish_api.ts";
export {
  countAuthFailures,
  DEFAULT_SUBSCRIBER_AUTH_OPTIONS,
  isLoopback,
  publisherAuth,
  type PublisherAuthOptions,
  SUBSCRIBER_AUTH_SCHEMES,
  type SubscriberAuthScheme,
} from "./hub_auth.ts";
export { subscriberAuth, type SubscriberAuthOptions } from "./subscriber_auth.ts";
export {
  DEFAULT_DEMO_SENSORS,
  DemoSensors,
  type DemoSensorsOptions,
  type SensorChange,
  sensorStateJson,
} from "./demo_sensors.ts";
export {
  DEFAULT_MEMORY_RECLAIM_OPTIONS,
  type MemoryReclaim,
  type MemoryReclaimOptions,
  startMemoryReclaim,
} from "./memory_reclaim.ts";
export { createLineLogger, type LineLogger, type LineLoggerOptions } from "./line_logger.ts";
export { parseUserFlag } from "../middleware/users.ts";
export {
  cliFlags,
  type CliSpec,
  FLAG_ERROR_HINT,
  FlagError,
  type FlagSpec,
  type FlagType,
  type FlagValueOf,
  type FlagValues,
  type ParsedFlags,
  parseFlags,
  usageText,
} from "./cli_flags.ts";

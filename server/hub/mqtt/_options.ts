/**
 * Options of the MQTT bridge: their types, defaults, the broker URL parser
 * and the one gate that validates them.
 *
 * @module
 */

import { parseTopicFilter } from "../../stream/topic_filter.ts";

/** Fields of an event handed to {@linkcode MqttPublish}. */
export interface MqttEventFields {
  /** Event type, when {@linkcode MqttBridgeOptions.event} is set. */
  readonly event?: string;
  /** `true` when the broker delivered the message as retained. */
  readonly retained?: boolean;
}

/**
 * How the bridge hands an event to the hub. Resolves with the event id once
 * the event is recorded in history; rejects while it cannot be (queue full,
 * history unavailable). The bridge acknowledges an MQTT message only after
 * this resolved, and retries a rejected message, in order, until it does.
 */
export type MqttPublish = (
  channel: string,
  data: string,
  fields: MqttEventFields,
) => Promise<string>;

/** A log sink; the hub's CLI supplies one. Library code never prints. */
export type MqttLogger = (
  level: "debug" | "info" | "warn" | "error",
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** Options of {@linkcode MqttBridge.start}. Every default is in {@linkcode DEFAULT_MQTT_BRIDGE_OPTIONS}. */
export interface MqttBridgeOptions {
  /**
   * The broker: `mqtt://[user:pass@]host[:port]` or `mqtts://...` (TLS).
   * User and password are percent-decoded. Default ports 1883 and 8883.
   */
  url: string;
  /** Records one event in the hub (see {@linkcode MqttPublish}). */
  publish: MqttPublish;
  /**
   * Topic filters to subscribe to, with QoS 1. Each is a channel-grammar
   * filter (`+`, `#`), so `$SYS/#` is refused.
   * @default {["#"]}
   */
  topics?: readonly string[];
  /**
   * The MQTT client id of the persistent session: fixed, so a restarted
   * bridge gets its queued messages. Default `sluice-` and the host name
   * (characters outside `[A-Za-z0-9_-]` become `-`, 23 characters at most).
   * @default {"sluice-<hostname>"}
   */
  clientId?: string;
  /** User name; overrides the one in `url`. @default {undefined} */
  username?: string;
  /** Password; overrides the one in `url`. @default {undefined} */
  password?: string;
  /** CA certificates (PEM) to trust for `mqtts://`. @default {undefined} (system roots) */
  ca?: string;
  /**
   * Largest payload published, in bytes; larger messages are acknowledged
   * and refused (the hub passes its publish limit).
   * @default {65536}
   */
  maxPayloadBytes?: number;
  /**
   * Event type given to every event. @default {undefined} (unnamed events,
   * `message` in browsers)
   */
  event?: string;
  /** MQTT protocol version: 5, or 4 (3.1.1) for older brokers. @default {5} */
  protocolVersion?: 4 | 5;
  /**
   * Most unacknowledged QoS 1 messages the broker may send at once (MQTT 5
   * Receive Maximum; with 3.1.1 the broker's `max_inflight_messages`
   * applies). Also the bound on duplicates after a crash.
   * @default {16}
   */
  receiveMaximum?: number;
  /**
   * Seconds the broker keeps the session (and queues messages) while the
   * bridge is away (MQTT 5 Session Expiry Interval; 4294967295 = never
   * expires). Ignored with 3.1.1, where the broker's
   * `persistent_client_expiration` decides.
   * @default {4294967295}
   */
  sessionExpirySeconds?: number;
  /** MQTT keep-alive, in seconds. @default {30} */
  keepaliveSeconds?: number;
  /** Milliseconds to wait for CONNACK. @default {10000} */
  connectTimeoutMs?: number;
  /** First delay before reconnecting, in ms; doubles up to `reconnectMaxMs`, with jitter. @default {500} */
  reconnectMinMs?: number;
  /** Longest delay before reconnecting, in ms. @default {30000} */
  reconnectMaxMs?: number;
  /** First delay before retrying a rejected publish, in ms; doubles up to `retryMaxMs`. @default {100} */
  retryMinMs?: number;
  /** Longest delay before retrying a rejected publish, in ms. @default {5000} */
  retryMaxMs?: number;
  /** Milliseconds `close()` waits for a publish in progress before ending the connection. @default {2000} */
  closeTimeoutMs?: number;
  /** Log sink. @default {undefined} (no logs) */
  logger?: MqttLogger;
}

/** Defaults of {@linkcode MqttBridgeOptions}, in one block. */
export const DEFAULT_MQTT_BRIDGE_OPTIONS = {
  topics: ["#"] as readonly string[],
  maxPayloadBytes: 65_536,
  protocolVersion: 5 as 4 | 5,
  receiveMaximum: 16,
  sessionExpirySeconds: 4_294_967_295,
  keepaliveSeconds: 30,
  connectTimeoutMs: 10_000,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  retryMinMs: 100,
  retryMaxMs: 5_000,
  closeTimeoutMs: 2_000,
} as const;

/** Where the broker is, parsed from {@linkcode MqttBridgeOptions.url}. */
export interface MqttBrokerAddress {
  /** `mqtt` or `mqtts`. */
  readonly protocol: "mqtt" | "mqtts";
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** Port. */
  readonly port: number;
  /** User name from the URL, percent-decoded, if any. */
  readonly username?: string;
  /** Password from the URL, percent-decoded, if any. */
  readonly password?: string;
}

/** Options after validation, defaults applied. */
export interface ResolvedMqttBridgeOptions extends
  Required<
    Omit<MqttBridgeOptions, "url" | "username" | "password" | "ca" | "event" | "logger">
  > {
  readonly broker: MqttBrokerAddress;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly ca: string | undefined;
  readonly event: string | undefined;
  readonly logger: MqttLogger | undefined;
}

/** The URL with its password hidden, for logs. */
export function redactUrl(broker: MqttBrokerAddress): string {
  const user = broker.username === undefined ? "" : `${encodeURIComponent(broker.username)}@`;
  const host = broker.host.includes(":") ? `[${broker.host}]` : broker.host;
  return `${broker.protocol}://${user}${host}:${broker.port}`;
}

/**
 * Parses `mqtt://[user:pass@]host[:port]` or `mqtts://...`.
 *
 * @throws {TypeError} When the URL is malformed, of another scheme, or has a path or query.
 */
export function parseBrokerUrl(url: string): MqttBrokerAddress {
  const shown = JSON.stringify(url.replace(/\/\/[^@/]*@/, "//***@"));
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(
      `url must be mqtt://[user:pass@]host[:port] or mqtts://...: received ${shown}`,
    );
  }
  const protocol = u.protocol.slice(0, -1);
  if (protocol !== "mqtt" && protocol !== "mqtts") {
    throw new TypeError(`url scheme must be mqtt:// or mqtts://: received ${shown}`);
  }
  if (u.hostname === "") throw new TypeError(`url has no host: received ${shown}`);
  if ((u.pathname !== "" && u.pathname !== "/") || u.search !== "" || u.hash !== "") {
    throw new TypeError(`url must have no path, query or fragment: received ${shown}`);
  }
  const port = u.port === "" ? (protocol === "mqtt" ? 1883 : 8883) : Number(u.port);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = u.username === "" ? undefined : decodeURIComponent(u.username);
    password = u.password === "" ? undefined : decodeURIComponent(u.password);
  } catch {
    throw new TypeError(`url credentials are not valid percent-encoding: received ${shown}`);
  }
  return { protocol, host, port, username, password };
}

const CLIENT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The default client id: `sluice-` and the host name, sanitized to
 * `[A-Za-z0-9_-]`, 23 characters at most (what every MQTT 3.1.1 broker must
 * accept). Asks `Deno.hostname()` only when the `sys` permission is granted
 * (no prompt), else reads `/etc/hostname`, else uses `sluice-bridge`.
 */
export function defaultClientId(): string {
  let host = "";
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      host = Deno.hostname();
    } else if (
      Deno.permissions.querySync({ name: "read", path: "/etc/hostname" }).state === "granted"
    ) {
      host = Deno.readTextFileSync("/etc/hostname").trim();
    }
  } catch {
    host = "";
  }
  const clean = host.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 16);
  return clean === "" ? "sluice-bridge" : `sluice-${clean}`;
}

function intIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}: received ${value}`);
  }
  return value;
}

/**
 * Validates options and applies defaults: the one gate of the bridge.
 *
 * @throws {TypeError} For a malformed URL, client id, topic filter, event or missing `publish`.
 * @throws {RangeError} For a number out of range.
 */
export function resolveMqttBridgeOptions(options: MqttBridgeOptions): ResolvedMqttBridgeOptions {
  const d = DEFAULT_MQTT_BRIDGE_OPTIONS;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be an object: received ${options}`);
  }
  if (typeof options.url !== "string") {
    throw new TypeError(`url must be a string: received ${typeof options.url}`);
  }
  const broker = parseBrokerUrl(options.url);
  if (typeof options.publish !== "function") {
    throw new TypeError(`publish must be a function: received ${typeof options.publish}`);
  }
  const topics = options.topics ?? d.topics;
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new TypeError(`topics must be a non-empty list: received ${JSON.stringify(topics)}`);
  }
  for (const t of topics) {
    try {
      parseTopicFilter(t);
    } catch (err) {
      throw new TypeError(`topics: ${(err as Error).message}`);
    }
  }
  const clientId = options.clientId ?? defaultClientId();
  if (typeof clientId !== "string" || !CLIENT_ID_RE.test(clientId)) {
    throw new TypeError(
      `clientId must be 1-64 characters of [A-Za-z0-9._:-]: received ${JSON.stringify(clientId)}`,
    );
  }
  const protocolVersion = options.protocolVersion ?? d.protocolVersion;
  if (protocolVersion !== 4 && protocolVersion !== 5) {
    throw new RangeError(`protocolVersion must be 4 or 5: received ${protocolVersion}`);
  }
  const event = options.event;
  if (event !== undefined && (typeof event !== "string" || /[\r\n]/.test(event) || event === "")) {
    throw new TypeError(
      `event must be a non-empty string without CR or LF: received ${JSON.stringify(event)}`,
    );
  }
  for (const key of ["username", "password", "ca"] as const) {
    const v = options[key];
    if (v !== undefined && typeof v !== "string") {
      throw new TypeError(`${key} must be a string: received ${typeof v}`);
    }
  }
  if (options.logger !== undefined && typeof options.logger !== "function") {
    throw new TypeError(`logger must be a function: received ${typeof options.logger}`);
  }
  const day = 86_400_000;
  const reconnectMinMs = intIn(
    "reconnectMinMs",
    options.reconnectMinMs ?? d.reconnectMinMs,
    1,
    day,
  );
  const reconnectMaxMs = intIn(
    "reconnectMaxMs",
    options.reconnectMaxMs ?? d.reconnectMaxMs,
    1,
    day,
  );
  if (reconnectMaxMs < reconnectMinMs) {
    throw new RangeError(
      `reconnectMaxMs must be at least reconnectMinMs (${reconnectMinMs}): received ${reconnectMaxMs}`,
    );
  }
  const retryMinMs = intIn("retryMinMs", options.retryMinMs ?? d.retryMinMs, 1, day);
  const retryMaxMs = intIn("retryMaxMs", options.retryMaxMs ?? d.retryMaxMs, 1, day);
  if (retryMaxMs < retryMinMs) {
    throw new RangeError(
      `retryMaxMs must be at least retryMinMs (${retryMinMs}): received ${retryMaxMs}`,
    );
  }
  return {
    broker,
    publish: options.publish,
    topics: [...topics],
    clientId,
    username: options.username ?? broker.username,
    password: options.password ?? broker.password,
    ca: options.ca,
    maxPayloadBytes: intIn(
      "maxPayloadBytes",
      options.maxPayloadBytes ?? d.maxPayloadBytes,
      1,
      268_435_455,
    ),
    event,
    protocolVersion,
    receiveMaximum: intIn("receiveMaximum", options.receiveMaximum ?? d.receiveMaximum, 1, 65_535),
    sessionExpirySeconds: intIn(
      "sessionExpirySeconds",
      options.sessionExpirySeconds ?? d.sessionExpirySeconds,
      1,
      4_294_967_295,
    ),
    keepaliveSeconds: intIn(
      "keepaliveSeconds",
      options.keepaliveSeconds ?? d.keepaliveSeconds,
      1,
      65_535,
    ),
    connectTimeoutMs: intIn(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? d.connectTimeoutMs,
      1,
      day,
    ),
    reconnectMinMs,
    reconnectMaxMs,
    retryMinMs,
    retryMaxMs,
    closeTimeoutMs: intIn("closeTimeoutMs", options.closeTimeoutMs ?? d.closeTimeoutMs, 0, day),
    logger: options.logger,
  };
}

/**
 * The hub: what `main.ts` runs. Channels at `/events/<channel>`: `GET`
 * subscribes, `POST` publishes (the publish API, `publish_api.ts`).
 * `GET /events?channel=a&channel=b` subscribes one stream to several channels
 * (`channels.ts`). Without publisher tokens, publishing is
 * accepted only from loopback. Optional subscriber auth and CORS;
 * `GET /metrics` (Prometheus) and `GET /status` (JSON).
 *
 * @module
 */

import type { EventFields } from "../../queue/encode_event.ts";
import {
  DuplicateEventIdError,
  EventIdRefusedError,
  HistoryUnavailableError,
} from "../../queue/history.ts";
import { cors, type CorsOptions } from "../middleware/cors.ts";
import { DemoSensors, type DemoSensorsOptions, sensorStateJson } from "./demo_sensors.ts";
import { type EventSource, PublishRejectedError } from "../stream/event_source.ts";
import { checkChannelName } from "../stream/channel_name.ts";
import { countAuthFailures, publisherAuth } from "./hub_auth.ts";
import { DEFAULT_MAX_CHANNELS, selectionFromQuery } from "./channels.ts";
import { prometheusText, statusObject } from "../metrics.ts";
import { DEFAULT_PUBLISH_API_OPTIONS, parsePublishRequest } from "./publish_api.ts";
import { serve, type SluiceServer } from "../server.ts";
import { DEFAULT_SERVER_OPTIONS, type ServerOptions } from "../server_options.ts";
import { loadStaticAssets, type StaticAsset } from "./static_assets.ts";
import type { HttpRequest, HttpResponse, Middleware } from "../http/types.ts";

/** Defaults of the hub's own options (the CLI's flag table shows these). */
export const DEFAULT_HUB_OPTIONS = {
  heartbeat: 0,
  /** The demo sensors' pace when `demo: true`. */
  demo: { minIntervalMs: 1000, maxIntervalMs: 3000 },
  maxEventBytes: DEFAULT_PUBLISH_API_OPTIONS.maxEventBytes,
  maxChannels: DEFAULT_MAX_CHANNELS,
} as const;

/** Options of {@linkcode startHub}: the server's, plus the hub's own. */
export interface HubOptions extends ServerOptions {
  /** Seconds between `heartbeat` events on channel `heartbeat`; `0` for none. @default {0} */
  heartbeat?: number;
  /**
   * Publish the simulated sensors of `examples/rest_subscribe.ts` on channel
   * `sensors` (event `event`, data `{"TYPE":"STATE","sensorA":{"state":N,"prevState":M}}`,
   * numbered ids): `true` for the default sensors, or their options.
   * @default {false}
   */
  demo?: boolean | DemoSensorsOptions;
  /**
   * Bearer tokens publishers must send (`Authorization: Bearer <token>`).
   * Without any, publishing is accepted from loopback peers only.
   * @default {[]}
   */
  publishTokens?: string[];
  /** Largest publish request body, in bytes (`413` beyond). @default {65536} */
  maxEventBytes?: number;
  /** Most channels one `GET /events?channel=…` stream may name (`400` beyond). @default {32} */
  maxChannels?: number;
  /**
   * Subscriber authentication, e.g. from `subscriberAuth()` or `basicAuth()`:
   * guards every stream and the dashboard pages (so a browser prompts on the
   * page and reuses the login for its streams). Refusals are counted in
   * `authFailures`.
   */
  auth?: Middleware;
  /** Put `/metrics` and `/status` behind `auth` too. @default {false} */
  metricsAuth?: boolean;
  /**
   * CORS for every route and stream, run before any auth so preflights pass
   * and `401` answers carry the CORS headers. Without it, no CORS headers.
   */
  cors?: CorsOptions;
}

/** A running hub: the server and its channel source. */
export interface Hub extends AsyncDisposable {
  /** The server. */
  readonly server: SluiceServer;
  /**
   * The event source behind `/events/:channel` and `GET
   * /events?channel=a&channel=b` (one source: each event is recorded once).
   */
  readonly events: EventSource;
  /**
   * Publishes to a channel, to its single- and multi-channel streams alike
   * (what `POST /events/<channel>` does).
   *
   * @param channel Channel name.
   * @param data Event data.
   * @param fields Event type, id, retry.
   * @returns `false` when the queue is full.
   * @throws {InvalidEventError} When a field is invalid.
   */
  publish(channel: string, data: string, fields?: EventFields): boolean;
  /** Refused authentications so far (subscribers and publishers). */
  readonly authFailures: number;
  /**
   * Adds a part's counters to `/status` (under `name`) and `/metrics` (each
   * numeric or boolean field as `sluice_<name>_<field>`), e.g. a bridge's.
   *
   * @param name A short lower-case name, e.g. `mqtt`.
   * @param stats Reads the counters.
   */
  addStatus(name: string, stats: () => object): void;
  /**
   * Runs `fn` when the hub shuts down, before the server stops (a bridge stops first).
   *
   * @param fn What to stop.
   */
  onShutdown(fn: () => void | Promise<void>): void;
  /** Stops gracefully (timers, then the server). */
  shutdown(): Promise<void>;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** The numeric and boolean fields of each part's counters, as Prometheus gauges. */
function partsMetrics(parts: ReadonlyMap<string, () => object>): string {
  let out = "";
  const walk = (prefix: string, value: unknown): void => {
    if (typeof value === "number" || typeof value === "boolean") {
      out += `# TYPE ${prefix} gauge\n${prefix} ${Number(value)}\n`;
    } else if (value !== null && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        walk(`${prefix}_${k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())}`, v);
      }
    }
  };
  for (const [name, read] of parts) walk(`sluice_${name}`, read());
  return out;
}

function plain(status: number, text: string, headers: Record<string, string> = {}): HttpResponse {
  return {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
    body: text + "\n",
  };
}

/**
 * Starts the hub.
 *
 * @param options Server options, the heartbeat interval and the demo sensors.
 * @returns The running hub.
 * @throws {RangeError} When an option is out of range.
 * @throws {TypeError} When the CORS options or publish tokens are invalid, or
 * `metricsAuth` is set without `auth`.
 *
 * @example
 * ```ts
 * import { startHub } from "./hub.ts";
 * await using hub = startHub({ port: 0, heartbeat: 1 });
 * // curl -N http://127.0.0.1:<port>/events/heartbeat
 * ```
 */
export function startHub(options: HubOptions = {}): Hub {
  const heartbeat = options.heartbeat ?? DEFAULT_HUB_OPTIONS.heartbeat;
  if (!(Number.isFinite(heartbeat) && heartbeat >= 0)) {
    throw new RangeError(
      `heartbeat must be a non-negative number of seconds: received ${heartbeat}`,
    );
  }
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_HUB_OPTIONS.maxEventBytes;
  if (!(Number.isSafeInteger(maxEventBytes) && maxEventBytes >= 1)) {
    throw new RangeError(`maxEventBytes must be a positive integer: received ${maxEventBytes}`);
  }
  const maxChannels = options.maxChannels ?? DEFAULT_HUB_OPTIONS.maxChannels;
  if (!(Number.isSafeInteger(maxChannels) && maxChannels >= 1)) {
    throw new RangeError(`maxChannels must be a positive integer: received ${maxChannels}`);
  }
  if (options.metricsAuth && options.auth === undefined) {
    throw new TypeError("metricsAuth needs auth: there is no authentication to apply");
  }
  let authFailures = 0;
  const counted = (mw: Middleware) => countAuthFailures(mw, () => authFailures++);
  const auth = options.auth && [counted(options.auth)];
  const corsMiddleware = options.cors && cors(options.cors);
  const publishGuard = counted(
    publisherAuth({ tokens: options.publishTokens, origins: options.cors?.origins }),
  );
  const historyOn = options.historyStore !== undefined ||
    (options.history ?? DEFAULT_SERVER_OPTIONS.history) > 0;
  // Built (and its options checked) before the server starts listening.
  let demoId = 0;
  const demo = options.demo
    ? new DemoSensors((change) => {
      publish("sensors", sensorStateJson(change), {
        event: "event",
        // With history on, the server numbers events (and keeps numbering past
        // a restart on a history file, where 1, 2, 3... would already be taken).
        id: historyOn ? undefined : String(++demoId),
      });
    }, options.demo === true ? DEFAULT_HUB_OPTIONS.demo : options.demo)
    : undefined;
  const server = serve({
    ...options,
    maxBodyBytes: options.maxBodyBytes ??
      Math.max(DEFAULT_SERVER_OPTIONS.maxBodyBytes, maxEventBytes),
  });
  if (corsMiddleware) server.use(corsMiddleware);
  // One source at both paths: a channel's events are encoded, recorded and
  // queued once, and multi-channel streams read the same records, tagged.
  const events = server.eventSource(["/events/:channel*", "/events"], {
    middleware: auth,
    channels: (req) =>
      req.params.channel === undefined
        ? selectionFromQuery(req.query, maxChannels)
        : { channels: [checkChannelName(req.params.channel)] },
  });

  const publish = (channel: string, data: string, fields: EventFields = {}): boolean =>
    events.send(data, { ...fields, channel });

  // The publish API: publisher auth (401/403) runs first, then the body
  // checks of parsePublishRequest (413, 415, 400 as HttpError).
  // 202 means recorded (on disk with --history-file) and queued; the body has the event's id.
  server.route("POST", "/events/:channel*", async (req: HttpRequest) => {
    const channel = checkChannelName(req.params.channel);
    const { data, ...fields } = parsePublishRequest(req, { maxEventBytes });
    let id: string | undefined;
    try {
      id = await events.publish(data, { ...fields, channel, timeoutMs: 0 });
    } catch (err) {
      if (err instanceof DuplicateEventIdError) {
        return plain(409, "Conflict: event id already used in this channel");
      }
      if (err instanceof PublishRejectedError) {
        return plain(503, "Service Unavailable: queue full", { "Retry-After": "1" });
      }
      if (err instanceof HistoryUnavailableError) {
        return plain(503, "Service Unavailable: history store unavailable", {
          "Retry-After": String(err.retryAfterSeconds),
        });
      }
      if (err instanceof EventIdRefusedError) {
        return plain(400, "Bad Request: event ids are assigned by the history store");
      }
      throw err;
    }
    return {
      status: 202,
      headers: JSON_HEADERS,
      body: `${JSON.stringify({ id: id ?? null })}\n`,
    };
  }, { middleware: [publishGuard] });

  // The dashboard: loaded once, on first request.
  let assets: Promise<Map<string, StaticAsset>> | undefined;
  const page = async (req: HttpRequest): Promise<HttpResponse> => {
    const asset = (await (assets ??= loadStaticAssets())).get(req.path);
    if (asset === undefined) return plain(404, "Not Found");
    return {
      status: 200,
      headers: { "Content-Type": asset.contentType, "Cache-Control": "no-cache" },
      body: asset.body,
    };
  };
  for (const path of ["/", "/index.html", "/app.js", "/style.css"]) {
    server.route("GET", path, page, { middleware: auth });
  }

  // Metrics and status, behind the subscriber auth with metricsAuth.
  const metricsGuard = options.metricsAuth ? auth : undefined;
  server.route("GET", "/metrics", () => ({
    status: 200,
    headers: {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
      "Cache-Control": "no-store",
    },
    body: prometheusText(server.stats, { authFailures }) + partsMetrics(parts),
  }), { middleware: metricsGuard });
  server.route("GET", "/status", () => ({
    status: 200,
    headers: { ...JSON_HEADERS, "Cache-Control": "no-store" },
    body: `${
      JSON.stringify({
        ...statusObject(server.stats, { authFailures }),
        ...Object.fromEntries([...parts].map(([name, read]) => [name, read()])),
      })
    }\n`,
  }), { middleware: metricsGuard });

  const started = Date.now();
  const timer = heartbeat > 0
    ? setInterval(() => {
      const uptime = Math.round((Date.now() - started) / 1000);
      publish("heartbeat", JSON.stringify({ time: new Date().toISOString(), uptime }), {
        event: "heartbeat",
      });
    }, heartbeat * 1000)
    : undefined;

  const parts = new Map<string, () => object>();
  const stoppers: (() => void | Promise<void>)[] = [];
  const shutdown = async () => {
    clearInterval(timer);
    demo?.stop();
    await Promise.allSettled(stoppers.map((stop) => stop()));
    await server.shutdown();
  };
  demo?.start();
  return {
    server,
    events,
    publish,
    get authFailures() {
      return authFailures;
    },
    addStatus: (name, stats) => {
      if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new TypeError(`bad status name: ${name}`);
      parts.set(name, stats);
    },
    onShutdown: (fn) => {
      stoppers.push(fn);
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

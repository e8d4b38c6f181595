/**
 * The hub: what `main.ts` runs. Channels at `/events/<channel>`: `GET`
 * subscribes, `POST` publishes the request body as the event data. Without
 * publisher credentials, publishing is accepted only from loopback.
 *
 * @module
 */

import { InvalidEventError } from "../queue/encode_event.ts";
import type { EventSource } from "./event_source.ts";
import { serve, type ServerOptions, type SluiceServer } from "./server.ts";
import { loadStaticAssets, type StaticAsset } from "./static_assets.ts";
import type { HttpRequest, HttpResponse } from "./types.ts";

/** Options of {@linkcode startHub}: the server's, plus the hub's own. */
export interface HubOptions extends ServerOptions {
  /** Seconds between `heartbeat` events on channel `heartbeat`; `0` for none. @default {0} */
  heartbeat?: number;
}

/** A running hub: the server and its channel source. */
export interface Hub extends AsyncDisposable {
  /** The server. */
  readonly server: SluiceServer;
  /** The event source behind `/events/:channel`. */
  readonly events: EventSource;
  /** Stops gracefully (timers, then the server). */
  shutdown(): Promise<void>;
}

/**
 * Whether an address is a loopback address.
 *
 * @param hostname Numeric address.
 * @returns `true` for 127.0.0.0/8, `::1` and IPv4-mapped loopback.
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") ||
    hostname.startsWith("::ffff:127.");
}

const JSON_HEADERS = { "Content-Type": "application/json" };

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
 * @param options Server options and the heartbeat interval.
 * @returns The running hub.
 *
 * @example
 * ```ts
 * import { startHub } from "./hub.ts";
 * await using hub = startHub({ port: 0, heartbeat: 1 });
 * // curl -N http://127.0.0.1:<port>/events/heartbeat
 * ```
 */
export function startHub(options: HubOptions = {}): Hub {
  const heartbeat = options.heartbeat ?? 0;
  if (!(Number.isFinite(heartbeat) && heartbeat >= 0)) {
    throw new RangeError(
      `heartbeat must be a non-negative number of seconds: received ${heartbeat}`,
    );
  }
  const server = serve(options);
  const events = server.eventSource("/events/:channel");
  const decoder = new TextDecoder("utf-8", { fatal: true });

  server.route("POST", "/events/:channel", (req: HttpRequest) => {
    if (!isLoopback(req.remoteAddr.hostname)) {
      return plain(403, "Forbidden: publishing is allowed from loopback only");
    }
    const channel = req.params.channel;
    if (!/^[A-Za-z0-9._~-]{1,128}$/.test(channel)) {
      return plain(400, "Bad Request: channel names are [A-Za-z0-9._~-]{1,128}");
    }
    let data: string;
    try {
      data = decoder.decode(req.body);
    } catch {
      return plain(400, "Bad Request: body is not valid UTF-8");
    }
    const event = req.query.get("event") ?? undefined;
    let ok: boolean;
    try {
      ok = events.send(data, { channel, event });
    } catch (err) {
      if (err instanceof InvalidEventError) return plain(400, `Bad Request: ${err.message}`);
      throw err;
    }
    if (!ok) {
      return plain(503, "Service Unavailable: queue full", {
        "Retry-After": "1",
      });
    }
    return { status: 202, headers: JSON_HEADERS, body: `{"queued":true}\n` };
  });

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
  for (const path of ["/", "/index.html", "/app.js", "/style.css"]) server.route("GET", path, page);

  const started = Date.now();
  const timer = heartbeat > 0
    ? setInterval(() => {
      const uptime = Math.round((Date.now() - started) / 1000);
      events.send(JSON.stringify({ time: new Date().toISOString(), uptime }), {
        channel: "heartbeat",
        event: "heartbeat",
      });
    }, heartbeat * 1000)
    : undefined;

  const shutdown = async () => {
    clearInterval(timer);
    await server.shutdown();
  };
  return { server, events, shutdown, [Symbol.asyncDispose]: shutdown };
}

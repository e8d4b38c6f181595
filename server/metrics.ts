/**
 * Metrics: the server's counters as Prometheus text and as JSON.
 *
 * @module
 */

import type { ServerStats } from "./server_stats.ts";

/** Extra counters kept outside the server (e.g. by auth middleware). */
export interface ExtraCounters {
  /** Failed authentications (401/403 answers of auth middleware). */
  authFailures?: number;
}

interface Metric {
  name: string;
  type: "gauge" | "counter";
  help: string;
  samples: [labels: Record<string, string | number> | undefined, value: number][];
}

/** One metric with one unlabelled sample. */
function m(name: string, type: Metric["type"], help: string, value: number): Metric {
  return { name, type, help, samples: [[undefined, value]] };
}

function metricsOf(stats: ServerStats, extra: ExtraCounters): Metric[] {
  const s = stats.sessions;
  return [
    m("sluice_sessions_open", "gauge", "Event streams open now.", s.open),
    m("sluice_sessions_capacity", "gauge", "Capacity of the session table.", s.capacity),
    m("sluice_sessions_opened_total", "counter", "Event streams opened.", s.opened),
    m(
      "sluice_sessions_rejected_total",
      "counter",
      "Streams refused with 503 (table full).",
      s.rejected,
    ),
    m(
      "sluice_streams_rejected_per_ip_total",
      "counter",
      "Streams refused because their address held maxClientsPerIp streams already.",
      stats.perIpRejected,
    ),
    m(
      "sluice_stream_peers",
      "gauge",
      "Peer addresses with streams counted against maxClientsPerIp now.",
      stats.streamPeers,
    ),
    {
      name: "sluice_sessions_closed_total",
      type: "counter",
      help: "Event streams ended, by close reason.",
      samples: Object.entries(s.closed).map(([reason, n]) => [{ reason }, n]),
    },
    m(
      "sluice_slow_consumer_closes_total",
      "counter",
      "Streams closed for exceeding their pending-bytes budget.",
      s.closed["slow-consumer"],
    ),
    m("sluice_connections_open", "gauge", "Sockets open now.", stats.connections),
    m("sluice_connections_accepted_total", "counter", "Sockets accepted.", stats.accepted),
    m(
      "sluice_streams_watched",
      "gauge",
      "Streams whose socket has a read pending (departure noticed at once).",
      stats.streamsWatched,
    ),
    m(
      "sluice_connections_refused_total",
      "counter",
      "Sockets refused because maxConnections was reached.",
      stats.connectionsRefused,
    ),
    {
      name: "sluice_connections_closed_total",
      type: "counter",
      help: "Sockets ended, by close reason (streams count as reason stream).",
      samples: Object.entries(stats.connectionsClosed).map(([reason, n]) => [{ reason }, n]),
    },
    m(
      "sluice_pending_heads",
      "gauge",
      "Sockets counted against maxPendingHeads (trickling a request) now.",
      stats.pendingHeads,
    ),
    m("sluice_queue_depth", "gauge", "Events waiting in the queue.", stats.queue.depth),
    m("sluice_queue_capacity", "gauge", "Capacity of the queue.", stats.queue.capacity),
    m(
      "sluice_queue_rejected_total",
      "counter",
      "Sends refused because the queue was full.",
      stats.queue.rejected,
    ),
    m(
      "sluice_events_published_total",
      "counter",
      "Events fanned out (one per publish, however many streams and kinds).",
      stats.eventsPublished,
    ),
    m(
      "sluice_events_delivered_total",
      "counter",
      "Event copies accepted by streams (one per recipient).",
      stats.eventsDelivered,
    ),
    m(
      "sluice_events_dropped_total",
      "counter",
      "Event copies refused by streams (closed or over budget).",
      stats.eventsDropped,
    ),
    m(
      "sluice_history_append_failures_total",
      "counter",
      "History appends that failed (each logged; the event was not sent).",
      stats.appendFailures,
    ),
    m(
      "sluice_bytes_written_total",
      "counter",
      "Bytes written to event streams.",
      stats.bytesWritten,
    ),
    m("sluice_requests_total", "counter", "Requests served.", stats.requests),
    {
      name: "sluice_http_errors_total",
      type: "counter",
      help: "Requests answered with an error status, by status.",
      samples: Object.entries(stats.httpErrors).map(([status, n]) => [{ status }, n]),
    },
    m("sluice_auth_failures_total", "counter", "Failed authentications.", extra.authFailures ?? 0),
    ...feedMetrics(stats),
    m("sluice_uptime_seconds", "gauge", "Seconds since the server started.", stats.uptimeMs / 1000),
  ];
}

/** The shared feed's state, when the server has one (e.g. the Redis engine). */
function feedMetrics(stats: ServerStats): Metric[] {
  const f = stats.feed;
  if (f === undefined) return [];
  return [
    m(
      "sluice_feed_connected",
      "gauge",
      "Whether the event feed is connected (1) or not (0).",
      f.connected ? 1 : 0,
    ),
    m(
      "sluice_feed_position",
      "gauge",
      "Id of the last event the feed delivered.",
      Number(f.position ?? 0),
    ),
    m("sluice_feed_lag", "gauge", "Events appended but not yet delivered by the feed.", f.lag),
    m("sluice_feed_delivered_total", "counter", "Events the feed delivered.", f.delivered),
    m("sluice_feed_reconnects_total", "counter", "Feed reconnections after a loss.", f.reconnects),
    m(
      "sluice_feed_gaps_total",
      "counter",
      "Losses the feed announced (each streams a sluice.gap).",
      f.gaps,
    ),
    m(
      "sluice_feed_watchdog_restarts_total",
      "counter",
      "Feed connections restarted by the watchdog.",
      f.watchdogRestarts,
    ),
  ];
}

/**
 * Renders the server's counters in the Prometheus text exposition format.
 *
 * @param stats The server's `stats`.
 * @param extra Counters kept elsewhere.
 * @returns The text body for `GET /metrics`.
 *
 * @example
 * ```ts
 * import { serve } from "../mod.ts";
 * import { prometheusText } from "./metrics.ts";
 * await using server = serve({ port: 0 });
 * server.route("GET", "/metrics", () => ({ status: 200, body: prometheusText(server.stats) }));
 * ```
 */
export function prometheusText(stats: ServerStats, extra: ExtraCounters = {}): string {
  let out = "";
  for (const metric of metricsOf(stats, extra)) {
    out += `# HELP ${metric.name} ${metric.help}\n# TYPE ${metric.name} ${metric.type}\n`;
    for (const [labels, value] of metric.samples) {
      const l = labels
        ? `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`
        : "";
      out += `${metric.name}${l} ${value}\n`;
    }
  }
  return out;
}

/**
 * The same counters as a JSON-friendly object, for `GET /status`.
 *
 * @param stats The server's `stats`.
 * @param extra Counters kept elsewhere.
 * @returns A plain object.
 */
export function statusObject(
  stats: ServerStats,
  extra: ExtraCounters = {},
): Record<string, unknown> {
  return { ...stats, authFailures: extra.authFailures ?? 0, uptimeSeconds: stats.uptimeMs / 1000 };
}

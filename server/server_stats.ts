/**
 * The counters of a server (`server.stats`), gathered from its HTTP and
 * stream layers.
 *
 * @module
 */

import type { FeedStats } from "../queue/event_feed.ts";
import type { MessageQueueStats } from "../queue/message_queue.ts";
import type { SessionTableStats } from "../sessions/session_table.ts";
import type { HttpServer } from "./http/http_server.ts";
import type { ConnectionCloseReason } from "./http/types.ts";
import type { Streams } from "./stream/streams.ts";

/** Counters of a server, read through `server.stats`. */
export interface ServerStats {
  /** Sockets open now (streams and plain requests). */
  readonly connections: number;
  /** Sockets accepted since start. */
  readonly accepted: number;
  /** Open streams whose socket has a read pending (see `watchStreams`). */
  readonly streamsWatched: number;
  /** Sockets refused at once because `maxConnections` was reached. */
  readonly connectionsRefused: number;
  /**
   * Sockets counted against `maxPendingHeads` now: receiving a request head
   * or body that a read left incomplete, or silent past a short grace period.
   */
  readonly pendingHeads: number;
  /**
   * Sockets ended, by reason; once no socket is open, the counts add up to
   * `accepted`. A socket that carried an event stream counts as `"stream"`;
   * its session's own reason is in `sessions.closed`.
   */
  readonly connectionsClosed: Readonly<Record<ConnectionCloseReason, number>>;
  /** The session table's counters (open, capacity, rejected, closed by reason). */
  readonly sessions: SessionTableStats;
  /** The queue's counters and depth. */
  readonly queue: MessageQueueStats & { readonly depth: number; readonly capacity: number };
  /** Events taken from the queue and fanned out. */
  readonly eventsPublished: number;
  /** Event copies accepted by sessions (one per recipient). */
  readonly eventsDelivered: number;
  /** Event copies refused by sessions (closed or over budget). */
  readonly eventsDropped: number;
  /** History appends that failed (each logged; the event was not sent). */
  readonly appendFailures: number;
  /** Streams opened with a `Last-Event-ID` (or `?lastEventId=`). */
  readonly replays: number;
  /** Events written from history to reconnecting streams. */
  readonly eventsReplayed: number;
  /** `sluice.gap` events sent: unknown or expired ids, and holes under the `drop` policy. */
  readonly gapsSent: number;
  /** Sessions closed because a write stayed in flight longer than `writeTimeout`. */
  readonly writeTimeouts: number;
  /** Streams answered with a `retry:` and closed under `busy: "retry"`. */
  readonly softRejected: number;
  /** Streams refused because their peer address already held `maxClientsPerIp` streams. */
  readonly perIpRejected: number;
  /** Peer addresses with streams counted against `maxClientsPerIp` now. */
  readonly streamPeers: number;
  /** Bytes written to event streams, open and closed. */
  readonly bytesWritten: number;
  /** Requests answered with an error status, by status. */
  readonly httpErrors: Readonly<Record<number, number>>;
  /** Requests served (plain routes and stream opens). */
  readonly requests: number;
  /** Milliseconds since the server started. */
  readonly uptimeMs: number;
  /** The shared event feed (e.g. the Redis engine), when the history store is one. */
  readonly feed?: FeedStats;
}

/**
 * Gathers the counters of a server's layers.
 *
 * @param http The HTTP layer.
 * @param streams The stream layer.
 * @param startedAt When the server started (ms since the epoch).
 * @returns The counters.
 * @example
 * ```ts
 * import { serve } from "../mod.ts";
 * await using server = serve({ port: 0 });
 * server.stats.eventsPublished; // 0
 * ```
 */
export function collectStats(http: HttpServer, streams: Streams, startedAt: number): ServerStats {
  const h = http.stats;
  const d = streams.deliveryStats;
  const c = streams.counters;
  return {
    connections: h.connections,
    accepted: h.accepted,
    streamsWatched: streams.streamsWatched,
    connectionsRefused: h.connectionsRefused,
    sessions: streams.sessions.stats,
    queue: d.queue,
    eventsPublished: d.eventsPublished,
    eventsDelivered: d.eventsDelivered,
    eventsDropped: d.eventsDropped,
    appendFailures: d.appendFailures,
    replays: c.replays,
    eventsReplayed: c.eventsReplayed,
    gapsSent: c.gapsSent,
    writeTimeouts: c.writeTimeouts,
    softRejected: c.softRejected,
    perIpRejected: c.perIpRejected,
    streamPeers: streams.peers.peers,
    // Summed over the open sessions when read, not on every snapshot (memory
    // reclaim takes one every 250 ms while connections come and go).
    get bytesWritten() {
      return streams.bytesWritten;
    },
    pendingHeads: h.pendingHeads,
    connectionsClosed: h.connectionsClosed,
    httpErrors: h.httpErrors,
    requests: h.requests,
    uptimeMs: Date.now() - startedAt,
    feed: streams.delivery.feed?.feedStats,
  };
}

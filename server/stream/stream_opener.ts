/**
 * Opening an event stream: the source's middleware, its channels, `HEAD`,
 * a slot in the session table (or the busy policy when it is full), the
 * stream head, the replay of what a reconnecting client missed, then the
 * session joins its source's fan-out.
 *
 * @module
 */

import { encodeComment, encodeRetry } from "../../queue/encode_event.ts";
import { numericId } from "../../queue/event_ids.ts";
import { type HistoryReplay, type HistoryStore, isPromiseLike } from "../../queue/history.ts";
import type { Session } from "../../sessions/session.ts";
import type { SessionTable } from "../../sessions/session_table.ts";
import { concat, concatAll, peerString } from "../http/conn_io.ts";
import { queryValue } from "../http/incoming_request.ts";
import type { RequestResult } from "../http/request_result.ts";
import { encodeResponse, headerPairs } from "../http/response_head.ts";
import { encodeStreamHead } from "./stream_head.ts";
import type { HttpRequest, HttpResponse, Logger } from "../http/types.ts";
import { type Subscription, subscriptionOf } from "./subscription.ts";
import { appendReplayBlock } from "./_replay_block.ts";
import { tagEvent } from "./channel_tag.ts";
import { type Delivery, historyKey, type PendingReplay, type QueuedEvent } from "./delivery.ts";
import type { EventSource } from "./event_source.ts";
import type { PeerStreams } from "./peer_streams.ts";
import type { StreamCounters } from "./stream_counters.ts";

/** The comment written right after the head of a stream that has no `retry:`. */
const OPENED = encodeComment("ok");

/** How long a new stream waits for a shared feed to catch up with its replay. */
const FEED_CATCH_UP_MS = 5_000;

/** A stream's head, and the same head with a comment when nothing else follows it. */
interface StreamHead {
  readonly bytes: Uint8Array;
  readonly alone?: Uint8Array;
}

/** The head of a stream with no extra header and no `retry:`, encoded once for every stream. */
const PLAIN_HEAD: StreamHead = {
  bytes: encodeStreamHead(),
  alone: concat(encodeStreamHead(), OPENED),
};

/** `base` spread uniformly over [base/2, 3·base/2), so clients do not come back at once. */
export function jitter(base: number): number {
  return Math.round(base * (0.5 + Math.random()));
}

/** What {@linkcode StreamOpener} needs from the stream layer. */
export interface StreamOpenerHost {
  /** The session table. */
  readonly sessions: SessionTable;
  /** Open streams per peer address (the `maxClientsPerIp` cap). */
  readonly peers: PeerStreams;
  /** The delivery path (history, queue, held events). */
  readonly delivery: Delivery;
  /** The counters it adds to. */
  readonly counters: StreamCounters;
  /** The source of every open stream, by session id. */
  readonly sourceOf: Map<number, EventSource>;
  /** Where it logs. */
  readonly log: Logger;
  /** Whether new streams are accepted (the server is not stopping). */
  readonly running: () => boolean;
  /** Most streams per peer (`maxClientsPerIp`; `0`: no cap), for the log. */
  readonly maxPerIp: number;
  /** Full table: `"503"`, or `"retry"` (200 with a jittered `retry:`, then close). */
  readonly busy: "503" | "retry";
  /** Seconds in `Retry-After` (and the base of the busy `retry:`). */
  readonly retryAfter: number;
  /** The 503 head with `Retry-After`. */
  readonly busyResponse: (extra: readonly [string, string][]) => Uint8Array;
  /** The server-wide `retry:` sent first on each stream, if any. */
  readonly retry: number | undefined;
  /** Called with every opened session whose socket must now be watched. */
  readonly opened: (session: Session, conn: Deno.Conn, leftover: Uint8Array) => void;
}

/**
 * Opens the streams of a server's event sources.
 *
 * @example
 * ```ts
 * import type { StreamOpener } from "./stream_opener.ts";
 * // Built by the stream layer; each stream route calls:
 * // opener.open(source, req, conn, headers)
 * const _check = (o: StreamOpener) => o;
 * ```
 */
export class StreamOpener {
  readonly #host: StreamOpenerHost;

  /**
   * Creates the opener.
   *
   * @param host What it needs from the stream layer.
   */
  constructor(host: StreamOpenerHost) {
    this.#host = host;
  }

  /**
   * Answers a stream request: refused (middleware, busy), `HEAD`, or a stream
   * that adopts the socket.
   *
   * @param source The source the request was routed to.
   * @param req The request.
   * @param conn Its socket.
   * @param extra Headers middleware added so far (e.g. CORS).
   * @returns What the connection loop does next.
   */
  open(
    source: EventSource,
    req: HttpRequest,
    conn: Deno.Conn,
    extra: [string, string][],
  ): RequestResult | Promise<RequestResult> {
    const guarded = source.guard(req, extra);
    // Synchronous middleware (or none): the stream opens in this turn, no promise.
    if (guarded === undefined) return this.#open(source, req, conn, extra);
    if (isPromiseLike(guarded)) {
      return Promise.resolve(guarded).then((res) =>
        res === undefined
          ? this.#open(source, req, conn, extra)
          : this.#refused(req, conn, res, extra)
      );
    }
    return this.#refused(req, conn, guarded, extra);
  }

  /** The answer to a stream request its source's middleware answered. */
  #refused(
    req: HttpRequest,
    conn: Deno.Conn,
    res: HttpResponse,
    extra: [string, string][],
  ): RequestResult {
    if (res.status >= 400) {
      this.#host.log("info", "stream refused", {
        peer: peerString(conn.remoteAddr as Deno.NetAddr),
        path: req.path,
        status: res.status,
        reason: res.status === 401 || res.status === 403 ? "auth-failed" : "rejected",
      });
    }
    // A refused HEAD gets the head alone: body bytes after it would be read as the next answer.
    const bytes = encodeResponse(res.status, [...extra, ...headerPairs(res.headers)], res.body, {
      close: true,
      headOnly: req.method === "HEAD",
    });
    return { kind: "bytes", bytes, status: res.status };
  }

  /** Opens a stream its source's middleware let through (or answers `HEAD`, or busy). */
  #open(
    source: EventSource,
    req: HttpRequest,
    conn: Deno.Conn,
    extra: [string, string][],
  ): RequestResult {
    const host = this.#host;
    const addr = conn.remoteAddr as Deno.NetAddr;
    const peer = peerString(addr);
    const selection = source.channelsFor(req);
    const sub = subscriptionOf(selection, req);
    const filters = sub.filters;
    if (req.method === "HEAD") {
      return { kind: "bytes", bytes: encodeStreamHead(extra, { close: true }), status: 200 };
    }
    // Checked before the table, so a peer at its cap is not counted as a full table.
    if (host.peers.full(addr.hostname)) {
      host.counters.perIpRejected++;
      return this.#busy(req, peer, extra, "per-ip-limit");
    }
    const release = host.sessions.reserve();
    if (release === undefined || !host.running()) {
      release?.();
      return this.#busy(req, peer, extra, "rejected");
    }
    const header = req.headers.get("last-event-id") || queryValue(req, "lastEventId") ||
      undefined;
    const lastEventId = header === undefined ? undefined : header.slice(0, 256);
    const session = host.sessions.open(conn, {
      remoteAddr: peer,
      channels: filters.length > 0 ? filters.map((f) => f.filter) : selection.channels,
      lastEventId,
    }, release);
    host.peers.opened(session.id, addr.hostname);
    host.sourceOf.set(session.id, source);
    // Some browsers (Firefox) fire `open` only at the first body byte, which
    // on a quiet channel could be a keep-alive away: when no `retry:` follows
    // the head, a comment does (used only when no replay block follows either).
    const retry = source.retry ?? host.retry;
    let head = PLAIN_HEAD;
    if (extra.length > 0 || retry !== undefined) {
      const headBytes = encodeStreamHead(headerPairs(extra));
      head = retry === undefined
        ? { bytes: headBytes, alone: concat(headBytes, OPENED) }
        : { bytes: concat(headBytes, encodeRetry(retry)) };
    }
    host.log("info", "stream opened", {
      session: session.id,
      peer,
      path: req.path,
      channels: selection.channels.join(","),
      lastEventId,
    });
    this.#start(session, source, head, lastEventId, sub);
    return {
      kind: "adopted",
      adopt: (leftover) => {
        if (!session.closed) host.opened(session, conn, leftover);
      },
    };
  }

  /**
   * The answer to a stream that finds the table full (or the server
   * stopping), or whose peer holds `maxClientsPerIp` streams already: the
   * same busy answer, logged with its reason.
   */
  #busy(
    req: HttpRequest,
    peer: string,
    extra: [string, string][],
    reason: "rejected" | "per-ip-limit",
  ): RequestResult {
    const host = this.#host;
    const why = reason === "per-ip-limit"
      ? "too many streams from this address"
      : "session table full";
    const fields = reason === "per-ip-limit"
      ? { peer, path: req.path, limit: host.maxPerIp, reason }
      : { peer, path: req.path, capacity: host.sessions.capacity, reason };
    if (host.busy === "retry") {
      // Soft reject: a 200 stream that only says when to come back, so a
      // browser's EventSource keeps retrying (any non-200 stops it for good).
      host.counters.softRejected++;
      host.log("warn", `stream soft-rejected: ${why}`, fields);
      const retryMs = jitter(host.retryAfter * 1000);
      const head = encodeStreamHead(headerPairs(extra), { close: true });
      return { kind: "bytes", bytes: concat(head, encodeRetry(retryMs)), status: 200 };
    }
    host.log("warn", `stream rejected: ${why}`, fields);
    return { kind: "bytes", bytes: host.busyResponse(extra), status: 503 };
  }

  /**
   * Writes the stream head and, for a client that sent `Last-Event-ID`, the
   * events it missed; then attaches the session to its source.
   *
   * With a synchronous store this is one step with no `await`: queued events
   * are drained first (they are already in history), the replay is read and
   * written together with the head as one block, and the session joins the
   * fan-out before any other code runs, so no live event can fall between
   * the replay and the live stream, nor appear in both. With an asynchronous
   * store, live events of the session's channels are held until the replay
   * is written, and those the replay already has are skipped.
   */
  #start(
    session: Session,
    source: EventSource,
    head: StreamHead,
    lastId: string | undefined,
    sub: Subscription,
  ): void {
    const { delivery, log } = this.#host;
    // What was published before this stream opened is not for it: fan it
    // out to the streams already open first.
    delivery.drain();
    const store = delivery.history;
    if (store === undefined) {
      session.write(head.alone ?? head.bytes);
      this.#attach(session, source, sub);
      return;
    }
    let answer: HistoryReplay | Promise<HistoryReplay>;
    try {
      const keys = this.#replayKeys(store, source, session, sub);
      // `last` only rewinds a stream without an id (0 or with an id: none,
      // as the contract says; a store may refuse 0 rather than ignore it).
      const options = sub.rewind > 0 && lastId === undefined ? { last: sub.rewind } : {};
      answer = isPromiseLike(keys)
        ? keys.then((k) => store.since(k, lastId, options))
        : store.since(keys, lastId, options);
    } catch (err) {
      answer = Promise.reject(err);
    }
    if (!isPromiseLike(answer) && !delivery.appending) {
      this.#writeReplay(session, source, head, lastId, answer, [], sub);
      this.#attach(session, source, sub);
      return;
    }
    const channels = new Set(session.channels);
    const pending: PendingReplay = {
      source,
      wants: sub.filters.length > 0
        ? (channel) => sub.filters.some((f) => f.matches(channel))
        : (channel) => channels.has(channel),
      held: [],
    };
    delivery.replaying.set(session.id, pending);
    const shared = delivery.feed !== undefined;
    Promise.resolve(answer).catch((err): HistoryReplay | undefined => {
      log("error", "history read failed", { session: session.id, error: String(err) });
      // A shared store that cannot answer cannot feed live events either:
      // tell the browser to come back (below) instead of a gap.
      if (shared) return undefined;
      return { events: [], gap: lastId !== undefined, earliest: null, latest: null };
    }).then(async (replay) => {
      // Appends still pending may be in the replay as well: hold their
      // events too (they are skipped by id) before going live.
      if (delivery.appending) {
        await delivery.appended();
        delivery.drain();
      }
      // With a shared feed, the replay may hold events the feed has not
      // brought yet, and the client (back from another instance) may have
      // seen events this instance's feed has not fanned out yet: hold live
      // events until the feed has passed both, so none comes twice.
      const seen = shared && replay?.gap === false && lastId !== undefined
        ? numericId(lastId)
        : undefined;
      const newest = replay?.events.at(-1)?.id;
      const catchUp = seen === undefined
        ? newest
        : newest === undefined || Number(newest) < seen
        ? String(seen)
        : newest;
      if (replay !== undefined && catchUp !== undefined) {
        if (!(await delivery.feedReached(catchUp, FEED_CATCH_UP_MS))) replay = undefined;
      }
      if (delivery.replaying.get(session.id) !== pending) return; // Closed meanwhile.
      if (replay === undefined) {
        delivery.replaying.delete(session.id);
        this.#comeBackLater(session, head);
        return;
      }
      delivery.replaying.delete(session.id);
      // Feed ids only grow: live events up to the client's id are ones it has.
      const held = seen === undefined
        ? pending.held
        : pending.held.filter((e) => e.id === undefined || !(Number(e.id) <= seen));
      this.#writeReplay(session, source, head, lastId, replay, held, sub);
      this.#attach(session, source, sub);
    }).catch((err) => {
      // A store that answered something unusable: end this stream, not the process.
      log("error", "stream replay failed", { session: session.id, error: String(err) });
      session.close("closed");
    });
  }

  /**
   * The shared store cannot serve this stream now: a `200` with a jittered
   * `retry:`, then close, so the browser's `EventSource` comes back (any other
   * status would make it give up for good).
   */
  #comeBackLater(session: Session, head: StreamHead): void {
    const retry = encodeRetry(jitter(this.#host.retryAfter * 1000));
    this.#host.counters.softRejected++;
    this.#host.log("warn", "stream told to come back: history unavailable", {
      session: session.id,
      peer: session.remoteAddr,
    });
    session.write(concat(head.bytes, retry));
    session.idle().then(() => session.close("closed"));
  }

  /**
   * The history keys a stream replays from: its channels', or for a filter
   * stream every channel of its source that history knows and a filter matches.
   */
  #replayKeys(
    store: HistoryStore,
    source: EventSource,
    session: Session,
    sub: Subscription,
  ): string[] | Promise<string[]> {
    if (sub.filters.length === 0) return session.channels.map((c) => historyKey(source, c));
    const prefix = historyKey(source, "");
    const pick = (keys: readonly string[]) =>
      keys.filter((k) =>
        k.startsWith(prefix) && sub.filters.some((f) => f.matches(k.slice(prefix.length)))
      );
    const all = store.channels?.() ?? [];
    return isPromiseLike(all) ? all.then(pick) : pick(all);
  }

  /**
   * Writes head, gap notice, replayed events and held live events (those not
   * in the replay) as one block (see {@linkcode appendReplayBlock}), and counts them.
   */
  #writeReplay(
    session: Session,
    source: EventSource,
    head: StreamHead,
    lastId: string | undefined,
    replay: HistoryReplay,
    held: readonly QueuedEvent[],
    sub: Subscription,
  ): void {
    const counters = this.#host.counters;
    if (lastId !== undefined) {
      counters.replays++;
      if (replay.gap) counters.gapsSent++;
    }
    if (sub.tagged) {
      // Tagged streams see each event's channel in its type.
      const prefix = source.path.length + 1;
      replay = {
        ...replay,
        events: replay.events.map((e) =>
          e.channel === undefined ? e : { ...e, bytes: tagEvent(e.bytes, e.channel.slice(prefix)) }
        ),
      };
      held = held.map((e) => ({ ...e, bytes: tagEvent(e.bytes, e.channel) }));
    }
    const parts: Uint8Array[] = [head.bytes];
    const position = appendReplayBlock(parts, lastId, replay, held);
    counters.eventsReplayed += replay.events.length;
    session.write(parts.length === 1 ? head.alone ?? head.bytes : concatAll(parts), position);
  }

  #attach(session: Session, source: EventSource, sub: Subscription): void {
    try {
      source.attach(session, sub.tagged, sub.filters);
    } catch (err) {
      // An onConnect callback threw. The head is already on the wire, so no
      // error response can follow: log it and keep the stream.
      this.#host.log("error", "onConnect callback failed", {
        session: session.id,
        peer: session.remoteAddr,
        error: String(err),
      });
    }
  }
}

/**
 * Event sources, the AsyncEventSource model: a path that browsers subscribe
 * to, with `send()` broadcasting through the server's bounded queue and
 * connect / disconnect callbacks receiving a {@linkcode Client}.
 *
 * @module
 */

import { encodeEvent, type EventFields } from "../../queue/encode_event.ts";
import { Client } from "./client.ts";
import type { CloseReason, Session } from "../../sessions/session.ts";
import { composeMiddleware } from "../http/compose_middleware.ts";
import { checkChannelName } from "./channel_name.ts";
import type { TopicFilter } from "./topic_filter.ts";
import type { HttpRequest, HttpResponse, Middleware } from "../http/types.ts";
import {
  type PublishOptions,
  PublishRejectedError,
  type SendAsyncOptions,
  type SendOptions,
} from "./publish_options.ts";

export { Client };
export {
  type PublishOptions,
  PublishRejectedError,
  type SendAsyncOptions,
  type SendOptions,
} from "./publish_options.ts";

/** Most channel names whose matching filter streams are remembered at once. */
const FILTER_MATCH_CACHE = 4096;

/** The channel of a source that has no channel parameter. */
export const DEFAULT_CHANNEL = "default";

/**
 * The channels a stream follows, as picked by {@linkcode EventSourceOptions.channels}.
 * A `tagged` stream sees each event's channel in its event type
 * (`<channel>` or `<channel>:<name>`, see `multiChannelEventName`): what a
 * client that follows several channels on one connection needs.
 */
export interface ChannelSelection {
  /** The channel names. */
  readonly channels: string[];
  /** Tag each event with its channel. @default {false} */
  readonly tagged?: boolean;
  /**
   * Topic filters (MQTT wildcards `+` and `#`, see `parseTopicFilter`): the
   * stream also follows every channel that matches one, present and future,
   * and is tagged. `Last-Event-ID` replays (and `?rewind=N` shows) every
   * matching channel that history knows, in id order.
   * @default {[]}
   */
  readonly filters?: readonly TopicFilter[];
}

/** Options of an event source. */
export interface EventSourceOptions {
  /** Reconnection delay sent as `retry:` first on each stream, in ms. */
  retry?: number;
  /**
   * Picks the channels a request subscribes to: a list, or a
   * {@linkcode ChannelSelection} to tag events with their channel. Default:
   * the `:channel` route parameter when the path has one (checked against
   * `checkChannelName`), else {@linkcode DEFAULT_CHANNEL}. Throw an
   * `HttpError` to refuse.
   */
  channels?: (req: HttpRequest) => string[] | ChannelSelection;
  /** Middleware run before a stream is accepted (auth, CORS...). */
  middleware?: Middleware[];
}

/** What an event source needs from the server that owns it. */
export interface SourceHost {
  /** Queues an encoded event; `false` when the queue is full. */
  enqueue(source: EventSource, channel: string, bytes: Uint8Array, fields: EventFields): boolean;
  /** Queues, waiting up to `timeoutMs` for room. */
  enqueueWait(
    source: EventSource,
    channel: string,
    bytes: Uint8Array,
    fields: EventFields,
    timeoutMs: number,
  ): Promise<boolean>;
  /**
   * Records (history) and queues an event, waiting up to `timeoutMs` for room;
   * resolves with its id (`undefined` when history is off and none was given).
   * Rejects with {@linkcode PublishRejectedError} or the store's error
   * (e.g. `DuplicateEventIdError`).
   */
  publish(
    source: EventSource,
    channel: string,
    bytes: Uint8Array,
    fields: EventFields,
    timeoutMs: number,
  ): Promise<string | undefined>;
  /** Unregisters the source (every path it is served at). */
  detach(source: EventSource): void;
}

/**
 * An event source registered on a server path.
 *
 * @example
 * ```ts
 * import { serve } from "../../mod.ts";
 * await using server = serve({ port: 0 });
 * const events = server.eventSource("/events");
 * events.onConnect((client) => client.send("hello!", { id: "1" }));
 * events.send("my event content", { event: "myevent" });
 * ```
 */
export class EventSource {
  /** The route pattern (the first, when the source is served at several). */
  readonly path: string;
  /** The `retry:` sent first on each stream, if any. */
  readonly retry: number | undefined;
  readonly #host: SourceHost;
  readonly #channelsOf: ((req: HttpRequest) => string[] | ChannelSelection) | undefined;
  /** Plain streams by channel. */
  readonly #channels = new Map<string, Map<number, Session>>();
  /** Tagged streams by channel. */
  readonly #tagged = new Map<string, Map<number, Session>>();
  /** Ids of the tagged sessions. */
  readonly #taggedIds = new Set<number>();
  /** Filter streams (`?topic=`) and their filters, by session id. */
  readonly #filterSubs = new Map<number, { session: Session; filters: readonly TopicFilter[] }>();
  /** The filter streams that match a channel, by channel (cleared when one comes or goes). */
  readonly #filterMatches = new Map<string, Map<number, Session> | null>();
  #middleware: Middleware[];
  #guard: Middleware | undefined;
  #onConnect: ((client: Client) => void)[] = [];
  #onDisconnect: ((client: Client, reason: CloseReason) => void)[] = [];
  #count = 0;
  #multiChannel = 0;
  #closed = false;

  /** @internal Use `server.eventSource()`. */
  constructor(host: SourceHost, path: string, options: EventSourceOptions = {}) {
    this.#host = host;
    this.path = path;
    this.retry = options.retry;
    this.#channelsOf = options.channels;
    this.#middleware = [...(options.middleware ?? [])];
    this.#guard = this.#middleware.length ? composeMiddleware(this.#middleware) : undefined;
  }

  /**
   * Adds middleware run before a stream is accepted (in order of addition).
   *
   * @param mw The middleware.
   * @returns This source.
   */
  addMiddleware(mw: Middleware): this {
    this.#middleware.push(mw);
    this.#guard = composeMiddleware(this.#middleware);
    return this;
  }

  /**
   * Registers a callback for each new client, run after the stream head is sent.
   *
   * @param cb Receives the client.
   */
  onConnect(cb: (client: Client) => void): void {
    this.#onConnect.push(cb);
  }

  /**
   * Registers a callback for each client that leaves, whatever the reason.
   *
   * @param cb Receives the client and the close reason.
   */
  onDisconnect(cb: (client: Client, reason: CloseReason) => void): void {
    this.#onDisconnect.push(cb);
  }

  /**
   * Broadcasts an event to every client of a channel, through the bounded queue.
   * Never blocks.
   *
   * With history on, the event is recorded (and given an id if it has none)
   * before this returns; with a file store, it is on disk.
   *
   * @param data Event data (split into `data:` lines on CR, LF, CRLF).
   * @param options Event type, id, retry and channel.
   * @returns `false` when the queue is full (back-pressure) or the source is closed.
   * @throws {InvalidEventError} When a field is invalid; nothing is sent.
   * @throws {DuplicateEventIdError} When `options.id` is already used in the
   * channel (synchronous stores); nothing is sent.
   */
  send(data: string, options: SendOptions = {}): boolean {
    if (this.#closed) return false;
    const { channel = DEFAULT_CHANNEL, ...fields } = options;
    return this.#host.enqueue(this, channel, encodeEvent(data, fields), fields);
  }

  /**
   * Like {@linkcode send}, but waits up to `timeoutMs` for room in the queue.
   *
   * @param data Event data.
   * @param options Event fields, channel and timeout.
   * @returns Whether the event was queued.
   * @throws {InvalidEventError} When a field is invalid; nothing is sent.
   */
  sendAsync(data: string, options: SendAsyncOptions = {}): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const { channel = DEFAULT_CHANNEL, timeoutMs = 1000, ...fields } = options;
    const bytes = encodeEvent(data, fields);
    return this.#host.enqueueWait(this, channel, bytes, fields, timeoutMs);
  }

  /**
   * Publishes an event and resolves once it is recorded in the history (on
   * disk with a file store) and queued, with its id: the publisher's, or the
   * one the server assigned. This is what the hub's `POST` acknowledges.
   *
   * @param data Event data.
   * @param options Event fields, channel and how long to wait for room.
   * @returns The event id; `undefined` only when history is off and no id was given.
   * @throws {InvalidEventError} When a field is invalid; nothing is sent.
   * @throws {PublishRejectedError} When the queue stays full or the source is closed.
   * @throws {DuplicateEventIdError} When `options.id` is already used in the channel.
   *
   * @example
   * ```ts
   * import { serve } from "../../mod.ts";
   * await using server = serve({ port: 0 });
   * const events = server.eventSource("/events");
   * const id = await events.publish("hello"); // e.g. "1754300000000000"
   * ```
   */
  publish(data: string, options: PublishOptions = {}): Promise<string | undefined> {
    if (this.#closed) return Promise.reject(new PublishRejectedError("closed"));
    const { channel = DEFAULT_CHANNEL, timeoutMs = 1000, ...fields } = options;
    let bytes: Uint8Array;
    try {
      bytes = encodeEvent(data, fields);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#host.publish(this, channel, bytes, fields, timeoutMs);
  }

  /**
   * Number of connected clients, over all channels.
   *
   * @returns The count.
   */
  count(): number {
    return this.#count;
  }

  /**
   * Iterates the connected clients, over all channels.
   *
   * @returns The clients.
   */
  *clients(): IterableIterator<Client> {
    const seen = new Set<number>();
    for (const { session } of this.#filterSubs.values()) {
      seen.add(session.id);
      yield Client.of(session);
    }
    for (const map of [this.#channels, this.#tagged]) {
      for (const sessions of map.values()) {
        for (const s of sessions.values()) {
          if (!seen.has(s.id)) {
            seen.add(s.id);
            yield Client.of(s);
          }
        }
      }
    }
  }

  /**
   * Names of the channels that have clients now.
   *
   * @returns The names.
   */
  channelNames(): string[] {
    return [...new Set([...this.#channels.keys(), ...this.#tagged.keys()])];
  }

  /** Closes every stream of this source and removes its route. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.clients()]) c.close("closed");
    this.#host.detach(this);
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * @internal Whether some client follows several channels: then the
   * fan-out must keep the order of events across channels for it.
   */
  get hasMultiChannelClients(): boolean {
    return this.#multiChannel > 0;
  }

  /** @internal Plain sessions of a channel, for the fan-out. */
  sessionsOf(channel: string): ReadonlyMap<number, Session> | undefined {
    return this.#channels.get(channel);
  }

  /** @internal Tagged sessions of a channel, for the fan-out. */
  taggedSessionsOf(channel: string): ReadonlyMap<number, Session> | undefined {
    return this.#tagged.get(channel);
  }

  /** @internal Filter sessions that match a channel, for the fan-out (tagged). */
  filterSessionsOf(channel: string): ReadonlyMap<number, Session> | undefined {
    if (this.#filterSubs.size === 0) return undefined;
    let matched = this.#filterMatches.get(channel);
    if (matched === undefined) {
      let found: Map<number, Session> | null = null;
      for (const { session, filters } of this.#filterSubs.values()) {
        if (filters.some((f) => f.matches(channel))) (found ??= new Map()).set(session.id, session);
      }
      if (this.#filterMatches.size >= FILTER_MATCH_CACHE) this.#filterMatches.clear();
      this.#filterMatches.set(channel, matched = found);
    }
    return matched ?? undefined;
  }

  /** @internal Runs the source's middleware. */
  guard(
    req: HttpRequest,
    headers: [string, string][],
  ): HttpResponse | undefined | Promise<HttpResponse | undefined> {
    return this.#guard?.(req, headers);
  }

  /** @internal The channels a request subscribes to. */
  channelsFor(req: HttpRequest): ChannelSelection {
    if (this.#channelsOf) {
      const picked = this.#channelsOf(req);
      return Array.isArray(picked) ? { channels: picked } : picked;
    }
    const ch = req.params.channel;
    if (ch === undefined) return { channels: [DEFAULT_CHANNEL] };
    return { channels: [checkChannelName(ch)] };
  }

  /**
   * @internal Adds a session that the server has opened (`tagged`, `filters`:
   * see {@linkcode ChannelSelection}; a session with filters follows only them).
   */
  attach(session: Session, tagged = false, filters: readonly TopicFilter[] = []): void {
    if (filters.length > 0) {
      this.#filterSubs.set(session.id, { session, filters });
      this.#filterMatches.clear();
      this.#count++;
      this.#multiChannel++;
      const client = Client.of(session);
      for (const cb of this.#onConnect) cb(client);
      return;
    }
    const map = tagged ? this.#tagged : this.#channels;
    if (tagged) this.#taggedIds.add(session.id);
    for (const ch of session.channels) {
      let m = map.get(ch);
      if (m === undefined) map.set(ch, m = new Map());
      m.set(session.id, session);
    }
    this.#count++;
    if (session.channels.length > 1) this.#multiChannel++;
    // A client object only for callbacks that take one (it lives as long as its session).
    if (this.#onConnect.length === 0) return;
    const client = Client.of(session);
    for (const cb of this.#onConnect) cb(client);
  }

  /** @internal Removes a session that has ended. */
  detachSession(session: Session, reason: CloseReason): void {
    if (this.#filterSubs.delete(session.id)) {
      this.#filterMatches.clear();
      this.#count--;
      this.#multiChannel--;
      const client = Client.of(session);
      for (const cb of this.#onDisconnect) cb(client, reason);
      return;
    }
    let found = false;
    const map = this.#taggedIds.delete(session.id) ? this.#tagged : this.#channels;
    for (const ch of session.channels) {
      const m = map.get(ch);
      if (m?.delete(session.id)) {
        found = true;
        if (m.size === 0) map.delete(ch);
      }
    }
    if (!found) return;
    this.#count--;
    if (session.channels.length > 1) this.#multiChannel--;
    if (this.#onDisconnect.length === 0) return;
    const client = Client.of(session);
    for (const cb of this.#onDisconnect) cb(client, reason);
  }
}

/**
 * Sluice: a Server-Sent Events server at the socket level, for gateway boxes
 * and Deno apps. A raw `Deno.listen` server parses HTTP/1.1 itself, keeps a
 * fixed-capacity session table, and drains a bounded queue into every
 * subscribed socket.
 *
 * @example
 * ```ts
 * import { serve } from "@sluice/sluice";
 *
 * await using server = serve({ port: 0, maxClients: 64 });
 * const events = server.eventSource("/events", { retry: 1000 });
 * events.onConnect((client) => {
 *   if (client.lastId) console.log(`client reconnected, last id ${client.lastId}`);
 *   client.send("hello!", { id: "1" });
 * });
 * events.send("my event content", { event: "myevent" });
 * ```
 *
 * @module
 */

export { serve, SluiceServer } from "./server/server.ts";
export {
  type BusyPolicy,
  DEFAULT_SERVER_OPTIONS,
  type ServerOptions,
} from "./server/server_options.ts";
export type { ServerStats } from "./server/server_stats.ts";
export {
  type ChannelSelection,
  Client,
  DEFAULT_CHANNEL,
  EventSource,
  type EventSourceOptions,
  type PublishOptions,
  PublishRejectedError,
  type SendAsyncOptions,
  type SendOptions,
} from "./server/stream/event_source.ts";
export { CHANNEL_NAME_RE, checkChannelName } from "./server/stream/channel_name.ts";
export {
  isChannelName,
  MAX_CHANNEL_LEVEL_LENGTH,
  MAX_CHANNEL_LEVELS,
  MAX_CHANNEL_NAME_LENGTH,
  parseTopicFilter,
  type TopicFilter,
  TopicFilterError,
  topicMatches,
  topicToChannel,
} from "./server/stream/topic_filter.ts";
export { MAX_REWIND } from "./server/stream/subscription.ts";
export { multiChannelEventName } from "./server/stream/channel_tag.ts";
export type {
  ConnectionCloseReason,
  HttpRequest,
  HttpResponse,
  Logger,
  LogLevel,
  Middleware,
  PeerAddr,
  RouteHandler,
} from "./server/http/types.ts";
export { HttpError, type HttpErrorOptions } from "./server/http/http_error.ts";
export { RoutePatternError } from "./server/http/router.ts";
export { InvalidHeaderError } from "./server/http/response_head.ts";
export { composeMiddleware } from "./server/http/compose_middleware.ts";
export {
  type CloseReason,
  type FreeContext,
  type GapNotice,
  Session,
  type SessionLimits,
  type SessionSocket,
  type SlowConsumerPolicy,
} from "./sessions/session.ts";
export {
  DEFAULT_SESSION_TABLE,
  type SessionInfo,
  SessionTable,
  SessionTableFullError,
  type SessionTableOptions,
  type SessionTableStats,
} from "./sessions/session_table.ts";
export { MessageQueue, type MessageQueueStats } from "./queue/message_queue.ts";
export type {
  EventFeed,
  FeedEvent,
  FeedGap,
  FeedGapReason,
  FeedSink,
  FeedStats,
} from "./queue/event_feed.ts";
export {
  DEFAULT_HISTORY_OPTIONS,
  DuplicateEventIdError,
  encodeGapEvent,
  EventIdRefusedError,
  GAP_EVENT,
  type HistoryInput,
  type HistoryOptions,
  type HistoryReplay,
  type HistoryStore,
  HistoryUnavailableError,
  type MaybePromise,
  MemoryHistory,
  type SinceOptions,
  type StoredEvent,
} from "./queue/history.ts";
export {
  DEFAULT_SQLITE_HISTORY_OPTIONS,
  SqliteHistory,
  type SqliteHistoryOptions,
  type SqliteSync,
} from "./queue/sqlite_history.ts";
export {
  encodeComment,
  encodeEvent,
  type EventFields,
  InvalidEventError,
} from "./queue/encode_event.ts";
export { cors, type CorsOptions, DEFAULT_CORS_OPTIONS } from "./server/middleware/cors.ts";
export {
  basicAuth,
  type BasicAuthOptions,
  DEFAULT_BASIC_AUTH_OPTIONS,
} from "./server/middleware/auth_basic.ts";
export {
  bearerAuth,
  type BearerAuthOptions,
  DEFAULT_BEARER_AUTH_OPTIONS,
  type NamedBearerToken,
} from "./server/middleware/auth_bearer.ts";
export {
  DEFAULT_DIGEST_AUTH_OPTIONS,
  digestAuth,
  type DigestAuthOptions,
} from "./server/middleware/auth_digest.ts";
export {
  type DigestAlgorithm,
  hashPassword,
  loadHtdigest,
  UserFormatError,
  UserStore,
} from "./server/middleware/users.ts";
export { type ExtraCounters, prometheusText, statusObject } from "./server/metrics.ts";

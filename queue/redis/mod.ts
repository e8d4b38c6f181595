/**
 * The Redis engine: history and event feed on Redis Streams, shared by
 * several Sluice instances. A separate entry point: the client library is
 * loaded only when {@linkcode RedisEngine.connect} is first called.
 *
 * @example
 * ```ts ignore
 * import { RedisEngine } from "./mod.ts";
 * await using engine = await RedisEngine.connect("redis://127.0.0.1:6379");
 * const { id } = await engine.append("news", { bytes: new TextEncoder().encode("data: hi\n\n") });
 * ```
 *
 * @module
 */

export { RedisEngine } from "./redis_engine.ts";
export type { RedisEngineStats, RedisSinceOptions } from "./redis_engine.ts";
export { DEFAULT_REDIS_ENGINE_OPTIONS } from "./options.ts";
export type {
  RedisEngineLogger,
  RedisEngineLogLevel,
  RedisEngineOptions,
  RedisTrimming,
} from "./options.ts";
export { EngineUnavailableError, PublisherIdRefusedError } from "./errors.ts";
export type { EngineUnavailableReason } from "./errors.ts";
export type {
  EventFeed,
  FeedEvent,
  FeedGap,
  FeedGapReason,
  FeedSink,
  FeedStats,
} from "../event_feed.ts";
export type {
  HistoryInput,
  HistoryReplay,
  HistoryStore,
  MaybePromise,
  SinceOptions,
  StoredEvent,
} from "../history.ts";
export { EventIdRefusedError, HistoryUnavailableError } from "../history.ts";

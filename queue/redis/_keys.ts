/**
 * Internal: the Redis key layout of the engine.
 *
 * - `<prefix>counter`: the last id handed out (`INCR`), shared by every instance.
 * - `<prefix>born`: the first id of the dataset; it changes when Redis lost
 *   its data, which is how followers and replays tell an epoch apart.
 * - `<prefix>log`: one stream of every event (`k` key, `e` born, `b` bytes),
 *   entry id `<event id>-0`, read by followers.
 * - `<prefix>k:<history key>`: one stream per history key (`p` previous id of
 *   the key or empty for the first, `b` bytes), entry id `<event id>-0`.
 *
 * @module
 */

/** The keys of one engine. */
export interface RedisKeys {
  readonly counter: string;
  readonly born: string;
  readonly log: string;
  /** The stream key of a history key. */
  stream(key: string): string;
}

/**
 * The key layout under a prefix.
 *
 * @param prefix The prefix (with its `{...}` hash tag).
 * @returns The keys.
 */
export function redisKeys(prefix: string): RedisKeys {
  return {
    counter: `${prefix}counter`,
    born: `${prefix}born`,
    log: `${prefix}log`,
    stream: (key) => `${prefix}k:${key}`,
  };
}

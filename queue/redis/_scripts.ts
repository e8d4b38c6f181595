/**
 * Internal: the engine's Lua scripts and how they are run (`EVALSHA`, then
 * `EVAL` when Redis answers `NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`).
 *
 * Ids are formatted with `%.0f`: Lua numbers are doubles and `tostring`
 * would print ids above 1e14 in exponent notation.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { RedisClient } from "./_client.ts";

/** A Lua script and its SHA-1. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * Appends one event, atomically.
 *
 * KEYS: counter, born, the key's stream, log.
 * ARGV: clock floor, maxEvents, logMax, trim operator (`~` or `=`), history key, block.
 * Returns `{id, born}`.
 *
 * A dataset without `born` is new (or lost): the counter is moved past the
 * clock floor and past the log's last entry before the first id, so ids
 * never go backwards, and `born` records the first id of the dataset.
 */
export const PUBLISH = lua(`
local born = redis.call('GET', KEYS[2])
if not born then
  local start = tonumber(redis.call('GET', KEYS[1]) or '0')
  local tail = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)[1]
  if tail then
    local seen = tonumber(string.match(tail[1], '^%d+'))
    if seen > start then start = seen end
  end
  local floor = tonumber(ARGV[1])
  if floor - 1 > start then start = floor - 1 end
  redis.call('SET', KEYS[1], string.format('%.0f', start))
  born = string.format('%.0f', start + 1)
  redis.call('SET', KEYS[2], born)
end
local id = string.format('%.0f', redis.call('INCR', KEYS[1]))
local prev = ''
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
if last then prev = string.match(last[1], '^%d+') end
local bytes = 'id: ' .. id .. '\\n' .. ARGV[6]
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], ARGV[2], id .. '-0', 'p', prev, 'b', bytes)
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], ARGV[3], id .. '-0', 'k', ARGV[5], 'e', born, 'b', bytes)
return {id, born}
`);

/**
 * Reads, in one atomic step, what a replay needs.
 *
 * KEYS: born, counter, then the streams of the history keys.
 * ARGV: mode (`none`, `after`, `all`), the id to read after, most entries per key (0: all).
 * Returns `{born or false, counter or false, per key: {first, last, entries}}`
 * where `first` is the oldest entry `{id, fields}` (or false), `last` the newest
 * entry id (or false), and `entries` the entries asked for, oldest first.
 * With a limit N the newest N+1 are read, so the caller can tell a cut.
 */
export const SINCE = lua(`
local out = {redis.call('GET', KEYS[1]) or false, redis.call('GET', KEYS[2]) or false}
local mode = ARGV[1]
local limit = tonumber(ARGV[3])
for i = 3, #KEYS do
  local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)[1] or false
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)[1]
  local entries = {}
  if mode ~= 'none' then
    local from = '-'
    if mode == 'after' then from = '(' .. ARGV[2] .. '-0' end
    if limit > 0 then
      local newest = redis.call('XREVRANGE', KEYS[i], '+', from, 'COUNT', limit + 1)
      for j = #newest, 1, -1 do entries[#entries + 1] = newest[j] end
    else
      entries = redis.call('XRANGE', KEYS[i], from, '+')
    end
  end
  out[#out + 1] = {first, last and last[1] or false, entries}
end
return out
`);

/**
 * Loads scripts into Redis's cache, so that a burst of `EVALSHA` right after
 * a (re)connection does not all come back `NOSCRIPT`.
 *
 * @param client The connection.
 * @param scripts The scripts.
 */
export async function loadScripts(
  client: RedisClient,
  scripts: readonly LuaScript[],
): Promise<void> {
  await Promise.all(scripts.map((s) => client.script("LOAD", s.source)));
}

/** A script argument: a string, or bytes passed as they are. */
export type ScriptArg = string | number | Uint8Array;

function toArg(a: ScriptArg): string | Buffer {
  if (a instanceof Uint8Array) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return String(a);
}

/**
 * Runs a script, loading it when Redis does not know it. Replies come back
 * as `Buffer`s (binary-safe).
 *
 * @param client The connection.
 * @param script The script.
 * @param keys Its keys.
 * @param args Its arguments.
 * @returns The raw reply.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  const params = [...keys, ...args.map(toArg)];
  try {
    return await client.callBuffer("EVALSHA", script.sha, keys.length, ...params);
  } catch (err) {
    // Redis names its errors only by the first word of the message.
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return await client.callBuffer("EVAL", script.source, keys.length, ...params);
  }
}

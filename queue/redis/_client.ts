/**
 * Internal: loads the Redis client library (only when a connection is first
 * opened, so importing the engine costs nothing) and opens connections.
 *
 * The client is ioredis, pinned here and nowhere else.
 *
 * @module
 */

import { isIP } from "node:net";

function importClient() {
  // The version is pinned here, not in deno.json: only this adapter may load the client.
  // deno-lint-ignore no-import-prefix
  return import("npm:ioredis@6.1.0");
}

type IoRedis = Awaited<ReturnType<typeof importClient>>;

/** A connection. */
export type RedisClient = InstanceType<IoRedis["Redis"]>;

let loading: Promise<IoRedis> | undefined;

function load(): Promise<IoRedis> {
  return loading ??= importClient();
}

/** Where Redis is, parsed from `redis://[[user]:password@]host:port[/db]` or `rediss://`. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

/**
 * Parses a Redis URL.
 *
 * @param url The URL.
 * @returns The address.
 * @throws {RangeError} When the URL is not a `redis:` or `rediss:` URL with a valid db number.
 */
export function parseRedisUrl(url: string): RedisAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(
      `url must be a redis:// or rediss:// URL: received ${JSON.stringify(url)}`,
    );
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new RangeError(
      `url must be a redis:// or rediss:// URL: received ${JSON.stringify(url)}`,
    );
  }
  const path = u.pathname.replace(/^\//, "");
  const db = path === "" ? 0 : Number(path);
  if (!/^[0-9]*$/.test(path) || !Number.isSafeInteger(db)) {
    throw new RangeError(`url database must be a number: received ${JSON.stringify(path)}`);
  }
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port === "" ? 6379 : Number(u.port),
    db,
    username: u.username === "" ? undefined : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    tls: u.protocol === "rediss:",
  };
}

/** How a connection behaves. */
export interface ConnectionSettings {
  /** Shown by `CLIENT LIST`. */
  readonly name: string;
  /** Longest wait for a reply; `undefined` for none (the feed's blocking reads). */
  readonly commandTimeoutMs: number | undefined;
  readonly connectTimeoutMs: number;
  /**
   * Delay before reconnect attempt `n` (ioredis reconnects by itself), or
   * `undefined` to never reconnect (the caller opens a new connection).
   */
  readonly retryDelay: ((attempt: number) => number) | undefined;
  /** Certificates to trust for TLS (PEM), or `undefined` for the system's. */
  readonly tlsCa: string | undefined;
  /** Receives connection errors (ioredis logs them itself when nobody listens). */
  readonly onError: (err: Error) => void;
}

/**
 * Opens a connection and waits until it is ready. Commands sent while it is
 * down fail at once (no offline queue), so nothing waits unbounded.
 *
 * @param address Where Redis is.
 * @param settings How the connection behaves.
 * @returns The ready connection.
 * @throws {Error} When it cannot connect within `connectTimeoutMs`.
 */
export async function openConnection(
  address: RedisAddress,
  settings: ConnectionSettings,
): Promise<RedisClient> {
  const { Redis } = await load();
  const client = new Redis({
    host: address.host,
    port: address.port,
    db: address.db,
    username: address.username,
    password: address.password,
    // SNI takes host names only; an IP address is checked against the certificate's IP entries.
    tls: address.tls
      ? { servername: isIP(address.host) === 0 ? address.host : undefined, ca: settings.tlsCa }
      : undefined,
    connectionName: settings.name,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    retryStrategy: (n: number) => settings.retryDelay?.(n - 1) ?? null,
  });
  client.on("error", settings.onError);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no connection within ${settings.connectTimeoutMs} ms`)),
          settings.connectTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    client.disconnect();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return client;
}

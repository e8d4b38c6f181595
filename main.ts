/**
 * The Sluice command line: runs the hub.
 *
 * ```sh
 * deno run --allow-net --allow-env main.ts --port 8080 --heartbeat 1
 * ```
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { cors, type CorsOptions } from "./server/middleware/cors.ts";
import { DEFAULT_HUB_OPTIONS, type HubOptions, startHub } from "./server/hub/hub.ts";
import { DEFAULT_SQLITE_HISTORY_OPTIONS } from "./queue/sqlite_history_options.ts";
import { DEFAULT_SERVER_OPTIONS } from "./server/server_options.ts";
import {
  DEFAULT_SUBSCRIBER_AUTH_OPTIONS,
  publisherAuth,
  SUBSCRIBER_AUTH_SCHEMES,
  type SubscriberAuthScheme,
} from "./server/hub/hub_auth.ts";
import type { Middleware } from "./server/http/types.ts";
import { createLineLogger, type LineLogger } from "./server/hub/line_logger.ts";
import { DEFAULT_MEMORY_RECLAIM_OPTIONS, startMemoryReclaim } from "./server/hub/memory_reclaim.ts";
import { FlagError, scanArgs } from "./server/hub/scan_args.ts";
import { startMqttBridge } from "./server/hub/mqtt_wiring.ts";
import { type HistoryStore, HistoryUnavailableError } from "./queue/history.ts";
import type { Logger } from "./server/http/types.ts";
// The defaults only: this module imports nothing, the engine itself loads with --redis.
import { DEFAULT_REDIS_ENGINE_OPTIONS } from "./queue/redis/options.ts";

/**
 * The Redis engine's module, loaded by `--redis` only. Not a literal: Deno
 * would resolve its npm client at start, and a gateway box may be offline
 * (`deno compile` needs `--include queue/redis/mod.ts`).
 */
const REDIS_MODULE = new URL("./queue/redis/mod.ts", import.meta.url).href;

/**
 * What the CLI uses of that module. Written here rather than taken with
 * `typeof import(…)`: Deno loads a type-only import's module graph at start
 * too (about 1 MB of an idle hub). `tests/e2e/cli_modules_test.ts` checks that
 * the real module fits.
 */
export interface RedisEngineModule {
  /** The engine's class. */
  readonly RedisEngine: {
    connect(
      url: string,
      options: { maxEvents: number; logMax: number; logger: Logger },
    ): Promise<HistoryStore>;
  };
}

/** A CLI flag: its type, environment variable, default and help text. */
interface Flag {
  type: "string" | "boolean";
  env?: string;
  default?: string;
  help: string;
  short?: string;
  /** Repeatable flag; its environment variable holds a comma-separated list. */
  multiple?: boolean;
}

const FLAGS: Record<string, Flag> = {
  port: {
    type: "string",
    env: "SLUICE_PORT",
    default: String(DEFAULT_SERVER_OPTIONS.port),
    help: "TCP port (0: any free port)",
  },
  hostname: {
    type: "string",
    env: "SLUICE_HOSTNAME",
    default: DEFAULT_SERVER_OPTIONS.hostname,
    help: "address to listen on",
  },
  "max-clients": {
    type: "string",
    env: "SLUICE_MAX_CLIENTS",
    default: String(DEFAULT_SERVER_OPTIONS.maxClients),
    help: "most event streams at once; more get 503",
  },
  "max-clients-per-ip": {
    type: "string",
    env: "SLUICE_MAX_CLIENTS_PER_IP",
    help: "most event streams from one address; more get the busy answer (default: " +
      "min(64, max-clients/4), loopback exempt; a value given applies to loopback too; 0: no cap)",
  },
  "queue-size": {
    type: "string",
    env: "SLUICE_QUEUE_SIZE",
    default: String(DEFAULT_SERVER_OPTIONS.queueSize),
    help: "capacity of the message queue; publishes beyond it get 503",
  },
  keepalive: {
    type: "string",
    env: "SLUICE_KEEPALIVE",
    default: String(DEFAULT_SERVER_OPTIONS.keepAlive),
    help: "seconds between keep-alive comments (0: off)",
  },
  retry: {
    type: "string",
    env: "SLUICE_RETRY",
    help: "reconnection delay in ms sent as retry: on every stream",
  },
  heartbeat: {
    type: "string",
    env: "SLUICE_HEARTBEAT",
    default: String(DEFAULT_HUB_OPTIONS.heartbeat),
    help: "seconds between events on channel 'heartbeat' (0: off)",
  },
  history: {
    type: "string",
    env: "SLUICE_HISTORY",
    default: String(DEFAULT_SERVER_OPTIONS.history),
    help: "events kept per channel for Last-Event-ID replay (0: off, no ids assigned)",
  },
  "history-bytes": {
    type: "string",
    env: "SLUICE_HISTORY_BYTES",
    default: String(DEFAULT_SERVER_OPTIONS.historyBytes),
    help: "bytes of events kept per channel for replay",
  },
  "history-file": {
    type: "string",
    env: "SLUICE_HISTORY_FILE",
    help: "keep history in this SQLite file: survives restarts and kill -9 (needs --allow-read " +
      "--allow-write)",
  },
  "history-sync": {
    type: "string",
    env: "SLUICE_HISTORY_SYNC",
    default: DEFAULT_SQLITE_HISTORY_OPTIONS.synchronous,
    help: "with --history-file: normal (survives kill -9) or full (fsync per event, survives " +
      "power loss)",
  },
  "max-pending-bytes": {
    type: "string",
    env: "SLUICE_MAX_PENDING_BYTES",
    default: String(DEFAULT_SERVER_OPTIONS.maxPendingBytes),
    help: "bytes queued for one stream before the slow-consumer policy applies",
  },
  "slow-consumer": {
    type: "string",
    env: "SLUICE_SLOW_CONSUMER",
    default: DEFAULT_SERVER_OPTIONS.slowConsumer,
    help: "over budget: disconnect (client replays on reconnect) or drop (skip, then sluice.gap)",
  },
  "max-pending-heads": {
    type: "string",
    env: "SLUICE_MAX_PENDING_HEADS",
    default: String(DEFAULT_SERVER_OPTIONS.maxPendingHeads),
    help: "connections at once still sending their request (slowloris cap); past it the " +
      "longest-trickling one gets 503",
  },
  "reclaim-after": {
    type: "string",
    env: "SLUICE_RECLAIM_AFTER",
    default: String(DEFAULT_MEMORY_RECLAIM_OPTIONS.afterConnections),
    help: "after this many connections opened or streams closed, once 1 s passes with none " +
      "and while V8's young generation is still grown, run one memory-reducing garbage " +
      "collection (needs --v8-flags=--expose-gc, as in deno task start; pauses 60-100 ms at " +
      "10 000 streams); 0: never",
  },
  "watch-streams": {
    type: "string",
    env: "SLUICE_WATCH_STREAMS",
    default: String(DEFAULT_SERVER_OPTIONS.watchStreams),
    help: "most stream sockets that keep a read pending, to notice a departed client at once " +
      "(about 2.5 KiB each while idle); past it, or with 0, departed clients are found by " +
      "failed writes, at the latest at the second keep-alive",
  },
  "write-timeout": {
    type: "string",
    env: "SLUICE_WRITE_TIMEOUT",
    default: String(DEFAULT_SERVER_OPTIONS.writeTimeout),
    help: "ms a stream write may stay stuck before the client is disconnected (0: no deadline)",
  },
  busy: {
    type: "string",
    env: "SLUICE_BUSY",
    default: DEFAULT_SERVER_OPTIONS.busy,
    help: "session table full: 503, or retry (200 with a jittered retry:, browsers keep trying)",
  },
  demo: {
    type: "boolean",
    env: "SLUICE_DEMO",
    help: "publish two simulated sensors on channel 'sensors' (the dashboard's data)",
  },
  "demo-min-interval": {
    type: "string",
    env: "SLUICE_DEMO_MIN_INTERVAL",
    default: String(DEFAULT_HUB_OPTIONS.demo.minIntervalMs / 1000),
    help: "with --demo (implies it): shortest seconds between updates of a sensor",
  },
  "demo-max-interval": {
    type: "string",
    env: "SLUICE_DEMO_MAX_INTERVAL",
    default: String(DEFAULT_HUB_OPTIONS.demo.maxIntervalMs / 1000),
    help: "with --demo (implies it): longest seconds between updates of a sensor",
  },
  "publish-token": {
    type: "string",
    multiple: true,
    env: "SLUICE_PUBLISH_TOKEN",
    help: "bearer token publishers must send (repeatable); none: publish from loopback only",
  },
  "max-event-bytes": {
    type: "string",
    env: "SLUICE_MAX_EVENT_BYTES",
    default: String(DEFAULT_HUB_OPTIONS.maxEventBytes),
    help: "largest publish request body in bytes; larger get 413",
  },
  "max-channels": {
    type: "string",
    env: "SLUICE_MAX_CHANNELS",
    default: String(DEFAULT_HUB_OPTIONS.maxChannels),
    help: "most channels of one GET /events?channel=a&channel=b stream",
  },
  auth: {
    type: "string",
    env: "SLUICE_AUTH",
    default: "none",
    help: "subscriber auth: none, basic, digest or bearer",
  },
  realm: {
    type: "string",
    env: "SLUICE_REALM",
    default: DEFAULT_SUBSCRIBER_AUTH_OPTIONS.realm,
    help: "auth realm",
  },
  user: {
    type: "string",
    multiple: true,
    env: "SLUICE_USER",
    help: "name:password of a basic/digest user (repeatable)",
  },
  "users-file": {
    type: "string",
    env: "SLUICE_USERS_FILE",
    help: "htdigest file (user:realm:HA1 lines) of basic/digest users",
  },
  "subscribe-token": {
    type: "string",
    multiple: true,
    env: "SLUICE_SUBSCRIBE_TOKEN",
    help: "bearer token of subscribers (repeatable; header, ?access_token= or cookie " +
      "sluice_token); implies --auth bearer",
  },
  "metrics-auth": {
    type: "boolean",
    env: "SLUICE_METRICS_AUTH",
    help: "put /metrics and /status behind the subscriber auth",
  },
  "cors-origin": {
    type: "string",
    multiple: true,
    env: "SLUICE_CORS_ORIGIN",
    help: "origin allowed to read streams cross-origin (repeatable, or *)",
  },
  "cors-credentials": {
    type: "boolean",
    env: "SLUICE_CORS_CREDENTIALS",
    help: "allow credentials (cookies, HTTP auth) cross-origin; not with *",
  },
  redis: {
    type: "string",
    env: "SLUICE_REDIS",
    help: "share channels, ids and history with every instance started with the same Redis: " +
      "redis://[:password@]host:port[/db] or rediss://; not with --history-file",
  },
  "redis-log-max": {
    type: "string",
    env: "SLUICE_REDIS_LOG_MAX",
    default: String(DEFAULT_REDIS_ENGINE_OPTIONS.logMax),
    help: "with --redis: events kept in the log every instance follows; an instance further " +
      "behind (stopped, stalled) sends its streams one sluice.gap",
  },
  "reuse-port": {
    type: "boolean",
    env: "SLUICE_REUSE_PORT",
    help: "several instances share one port (Linux SO_REUSEPORT; needs --redis, and " +
      "deno run --unstable-net)",
  },
  workers: {
    type: "string",
    env: "SLUICE_WORKERS",
    help: "run N copies of the hub on one port (--reuse-port) and restart one that dies; needs " +
      "--redis, and --allow-run for this process",
  },
  mqtt: {
    type: "string",
    env: "SLUICE_MQTT",
    help: "bridge an MQTT broker: mqtt://[user:pass@]host:port or mqtts://; each message " +
      "becomes an event on the channel named by its topic",
  },
  "mqtt-topic": {
    type: "string",
    env: "SLUICE_MQTT_TOPIC",
    multiple: true,
    help: "with --mqtt: topic filter to subscribe to (repeatable; + and # wildcards; default #)",
  },
  "mqtt-client-id": {
    type: "string",
    env: "SLUICE_MQTT_CLIENT_ID",
    help: "with --mqtt: the bridge's persistent client id (default sluice-<hostname>)",
  },
  cert: {
    type: "string",
    env: "SLUICE_CERT",
    help: "TLS certificate chain (PEM file); with --key",
  },
  key: { type: "string", env: "SLUICE_KEY", help: "TLS private key (PEM file); with --cert" },
  quiet: { type: "boolean", env: "SLUICE_QUIET", help: "log warnings and errors only" },
  help: { type: "boolean", short: "h", help: "show this help" },
  version: { type: "boolean", short: "V", help: "show the version" },
};

/** Thrown for a bad command line; the message is printed with the usage hint. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function usage(): string {
  let text = `Sluice ${denoJson.version}: a Server-Sent Events hub.

Usage: deno run --allow-net --allow-env main.ts [flags]

Endpoints:
  GET  /events/<channel>   subscribe (text/event-stream); channel: 1-8 levels of
                           [A-Za-z0-9._~-]{1,128} joined by /, e.g. sensors/kitchen/temp
  GET  /events?channel=a&channel=b&topic=sensors/+/temp   several channels and MQTT-style
                           filters on one stream (event type: <channel>[:<name>])
       ?rewind=N           on any stream: the newest N events of each channel first
  POST /events/<channel>   publish: text/plain body (?event=, ?id=) or JSON {"data", "event", "id",
                           "retry"}; 202 {"id"}; a token with --publish-token, else loopback only
  GET  /metrics, /status   Prometheus text, JSON

Flags (each also from its environment variable):
`;
  for (const [name, f] of Object.entries(FLAGS)) {
    const left = `  ${f.short ? `-${f.short}, ` : ""}--${name}${f.type === "string" ? " <v>" : ""}`;
    const extra = [f.env, f.default !== undefined ? `default ${f.default}` : undefined]
      .filter(Boolean).join(", ");
    text += `${left.padEnd(26)} ${f.help}${extra ? ` (${extra})` : ""}\n`;
  }
  return text;
}

function choiceFlag<T extends string>(
  values: Record<string, unknown>,
  name: string,
  choices: readonly T[],
): T {
  const raw = String(values[name]);
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(
      `--${name} must be ${choices.join(" or ")}: received ${JSON.stringify(raw)}`,
    );
  }
  return raw as T;
}

/** History, slow-consumer and busy options; opens the history file when one is given. */
async function deliveryOptions(values: Record<string, unknown>): Promise<HubOptions> {
  const history = intFlag(values, "history", 0);
  const historyBytes = intFlag(values, "history-bytes", 1);
  const synchronous = choiceFlag(values, "history-sync", ["normal", "full"] as const);
  const options: HubOptions = {
    history,
    historyBytes,
    maxPendingBytes: intFlag(values, "max-pending-bytes", 1),
    maxPendingHeads: intFlag(values, "max-pending-heads", 1),
    watchStreams: intFlag(values, "watch-streams", 0),
    slowConsumer: choiceFlag(values, "slow-consumer", ["disconnect", "drop"] as const),
    writeTimeout: intFlag(values, "write-timeout", 0),
    busy: choiceFlag(values, "busy", ["503", "retry"] as const),
  };
  if (values["history-file"] !== undefined) {
    if (history === 0) throw new UsageError("--history-file needs --history >= 1");
    const path = String(values["history-file"]);
    // Loaded only with --history-file: node:sqlite is not for an in-memory hub.
    const { SqliteHistory } = await import("./queue/sqlite_history.ts");
    try {
      options.historyStore = new SqliteHistory(path, {
        maxEvents: history,
        maxBytes: historyBytes,
        synchronous,
      });
    } catch (err) {
      throw new UsageError(`cannot open --history-file ${JSON.stringify(path)}: ${err}`);
    }
  }
  return options;
}

function intFlag(values: Record<string, unknown>, name: string, min: number): number {
  const raw = String(values[name]);
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}: received ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function numberFlag(values: Record<string, unknown>, name: string): number {
  const raw = String(values[name]);
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${name} must be a number >= 0: received ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The flag values, with defaults; `given` names the flags set on the command line or by env. */
function parse(args: string[]) {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries(FLAGS)) {
    options[name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
    if (f.multiple) Object.assign(options[name], { multiple: true });
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = { ...scanArgs(args, options).values } as typeof values;
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    throw new UsageError(err.message);
  }
  const given = new Set<string>();
  for (const [name, f] of Object.entries(FLAGS)) {
    if (values[name] !== undefined) {
      given.add(name);
      continue;
    }
    const fromEnv = f.env ? Deno.env.get(f.env) : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      given.add(name);
      values[name] = f.type === "boolean"
        ? !/^(0|false|no)$/i.test(fromEnv)
        : f.multiple
        ? fromEnv.split(",").map((v) => v.trim()).filter((v) => v !== "")
        : fromEnv;
    } else if (f.default !== undefined) {
      values[name] = f.default;
    }
  }
  return { values, given };
}

/**
 * Takes what flags imply when nothing else can be meant (`--subscribe-token` alone means
 * `--auth bearer`), setting it in `values`; refuses real conflicts, naming both flags.
 *
 * @returns One line per implied flag, for the log.
 */
function implyFlags(values: Record<string, unknown>, given: ReadonlySet<string>): string[] {
  const implied: string[] = [];
  const imply = (flag: string, value: unknown, by: string) => {
    values[flag] = value;
    implied.push(`implied --${flag}${value === true ? "" : ` ${value}`} by --${by}`);
  };
  const users = ["user", "users-file"].filter((f) => given.has(f));
  if (given.has("subscribe-token")) {
    if (users.length > 0 && !given.has("auth")) {
      throw new UsageError(
        `--subscribe-token conflicts with --${users[0]}: tokens are for --auth bearer, users for ` +
          "--auth basic or digest",
      );
    }
    if (!given.has("auth")) imply("auth", "bearer", "subscribe-token");
    else if (values.auth !== "bearer") {
      throw new UsageError(
        `--subscribe-token conflicts with --auth ${values.auth}: tokens are for --auth bearer`,
      );
    }
  }
  if (
    users.length > 0 && given.has("auth") && values.auth !== "basic" && values.auth !== "digest"
  ) {
    throw new UsageError(
      `--${users[0]} conflicts with --auth ${values.auth}: users are for --auth basic or digest`,
    );
  }
  if (values["reuse-port"] === true && values.redis === undefined) {
    throw new UsageError(
      "--reuse-port needs --redis: instances that share a port must share their events",
    );
  }
  // Without the flag Deno ends the process at the listen call, past any
  // catch: tell the user first. `listenDatagram` exists only with it.
  if (
    values["reuse-port"] === true &&
    typeof (Deno as unknown as Record<string, unknown>).listenDatagram !== "function"
  ) {
    throw new UsageError(
      "--reuse-port needs Deno's --unstable-net: deno run --unstable-net main.ts (or deno " +
        "compile --unstable-net)",
    );
  }
  if (given.has("workers") && values.redis === undefined) {
    throw new UsageError("--workers needs --redis: the copies must share their events");
  }
  if (given.has("workers") && given.has("mqtt")) {
    throw new UsageError(
      "--workers conflicts with --mqtt: exactly one instance may run the bridge (run it apart)",
    );
  }
  if (given.has("redis-log-max") && values.redis === undefined) {
    throw new UsageError("--redis-log-max needs --redis (the log is in Redis)");
  }
  for (const flag of ["mqtt-topic", "mqtt-client-id"]) {
    if (given.has(flag) && values.mqtt === undefined) {
      throw new UsageError(`--${flag} needs --mqtt (the broker to bridge)`);
    }
  }
  for (const interval of ["demo-min-interval", "demo-max-interval"]) {
    if (!given.has(interval)) continue;
    if (!given.has("demo")) imply("demo", true, interval);
    else if (values.demo !== true) {
      throw new UsageError(
        `--${interval} conflicts with SLUICE_DEMO=${Deno.env.get("SLUICE_DEMO")}`,
      );
    }
  }
  return implied;
}

function listFlag(values: Record<string, unknown>, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v.map(String) : typeof v === "string" ? [v] : [];
}

function readFlagFile(values: Record<string, unknown>, name: string): string | undefined {
  const path = values[name];
  if (path === undefined) return undefined;
  try {
    return Deno.readTextFileSync(String(path));
  } catch (err) {
    throw new UsageError(
      `cannot read --${name} file ${JSON.stringify(path)}: ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
}

/** Runs `build`, turning the TypeError of a bad option into a UsageError for `--flag`. */
function checked<T>(flag: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof TypeError) {
      throw new UsageError(`${flag}: ${err.message}`);
    }
    throw err;
  }
}

/**
 * The subscriber auth of the flags. Its modules (password hashing with
 * node:crypto) are loaded only when a scheme or users are given.
 */
async function subscriberOptions(
  values: Record<string, unknown>,
  scheme: SubscriberAuthScheme,
): Promise<Middleware | undefined> {
  const userFlags = listFlag(values, "user");
  const usersFile = readFlagFile(values, "users-file");
  const tokens = listFlag(values, "subscribe-token");
  if (scheme === "none" && userFlags.length === 0 && usersFile === undefined) return undefined;
  const { loadHtdigest, parseUserFlag, UserFormatError, UserStore } = await import(
    "./server/middleware/users.ts"
  );
  const { subscriberAuth } = await import("./server/hub/subscriber_auth.ts");
  const checkedFlag = <T>(flag: string, build: () => T): T => {
    try {
      return checked(flag, build);
    } catch (err) {
      if (err instanceof UserFormatError) throw new UsageError(`${flag}: ${err.message}`);
      throw err;
    }
  };
  let users: InstanceType<typeof UserStore> | undefined;
  if (userFlags.length > 0 || usersFile !== undefined) {
    if (scheme !== "basic" && scheme !== "digest") {
      throw new UsageError("--user and --users-file need --auth basic or --auth digest");
    }
    const store = users = new UserStore();
    for (const flag of userFlags) {
      const { user, password } = checkedFlag("--user", () => parseUserFlag(flag));
      store.addPassword(user, password);
    }
    if (usersFile !== undefined) checkedFlag("--users-file", () => loadHtdigest(usersFile, store));
  }
  const realm = String(values.realm);
  return checkedFlag(
    `--auth ${scheme}`,
    () =>
      subscriberAuth({ scheme, realm, users, tokens: scheme === "bearer" ? tokens : undefined }),
  );
}

/** The publish, auth, CORS and TLS options of the flags; reads the files they name. */
async function securityOptions(values: Record<string, unknown>): Promise<HubOptions> {
  const scheme = String(values.auth) as SubscriberAuthScheme;
  if (!SUBSCRIBER_AUTH_SCHEMES.includes(scheme)) {
    throw new UsageError(
      `--auth must be one of ${SUBSCRIBER_AUTH_SCHEMES.join(", ")}: received ${
        JSON.stringify(scheme)
      }`,
    );
  }
  const auth = await subscriberOptions(values, scheme);
  if (values["metrics-auth"] === true && auth === undefined) {
    throw new UsageError("--metrics-auth needs --auth basic, digest or bearer");
  }
  const origins = listFlag(values, "cors-origin");
  const credentials = values["cors-credentials"] === true;
  if (credentials && origins.length === 0) {
    throw new UsageError("--cors-credentials needs --cors-origin");
  }
  const corsOptions: CorsOptions | undefined = origins.length > 0
    ? { origins, credentials }
    : undefined;
  if (corsOptions) checked("--cors-origin", () => cors(corsOptions));
  const publishTokens = listFlag(values, "publish-token");
  checked("--publish-token", () => publisherAuth({ tokens: publishTokens }));
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert and --key must be given together");
  }
  return {
    publishTokens,
    maxEventBytes: intFlag(values, "max-event-bytes", 1),
    maxChannels: intFlag(values, "max-channels", 1),
    auth,
    metricsAuth: values["metrics-auth"] === true,
    cors: corsOptions,
    cert: readFlagFile(values, "cert"),
    key: readFlagFile(values, "key"),
  };
}

/**
 * Connects the Redis engine of `--redis` (loaded only then: a hub without it
 * needs no npm package and starts offline).
 */
async function redisEngine(values: Record<string, unknown>, log: Logger): Promise<HistoryStore> {
  if (values["history-file"] !== undefined) {
    throw new UsageError("--redis and --history-file cannot be combined: history lives in Redis");
  }
  const { RedisEngine } = await import(REDIS_MODULE) as RedisEngineModule;
  return await RedisEngine.connect(String(values.redis), {
    maxEvents: Math.max(1, intFlag(values, "history", 0)),
    logMax: intFlag(values, "redis-log-max", 1),
    logger: log,
  });
}

/** `--workers N`: this process only supervises the copies (see `server/hub/workers.ts`). */
async function runWorkers(count: number, args: string[], log: LineLogger): Promise<number> {
  const { superviseWorkers, workerCommand } = await import("./server/hub/workers.ts");
  let workers;
  try {
    workers = superviseWorkers({ count, command: workerCommand(args), log });
  } catch (err) {
    console.error(`sluice: --workers: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof Deno.errors.NotCapable ? 2 : 1;
  }
  const stopped = Promise.withResolvers<void>();
  const stop = (signal: string) => {
    log("info", "stopping workers", { signal });
    workers.stop().then(() => stopped.resolve());
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await stopped.promise;
  log("info", "stopped");
  log.flush();
  return 0;
}

/**
 * Runs the CLI.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let values;
  let implied: string[] = [];
  try {
    let given;
    ({ values, given } = parse(args));
    if (!values.help && !values.version) implied = implyFlags(values, given);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // One line, as every program's flag errors (server/hub/cli_flags.ts).
    console.error(`sluice: ${err.message.replace(/\.$/, "")}. Try --help.`);
    return 2;
  }
  if (values.help) {
    console.log(usage());
    return 0;
  }
  if (values.version) {
    console.log(`sluice ${denoJson.version}`);
    return 0;
  }
  const log = createLineLogger({ quiet: values.quiet === true });
  // Batched lines go out before the process ends, however it ends.
  globalThis.addEventListener("unload", () => log.flush());
  for (const line of implied) log("info", line);
  if (values.workers !== undefined) {
    let count: number;
    try {
      count = intFlag(values, "workers", 1);
    } catch (err) {
      console.error(`sluice: ${(err as Error).message}. Try --help.`);
      return 2;
    }
    return await runWorkers(count, args, log);
  }
  let hub;
  let delivery: HubOptions | undefined;
  let reclaimAfter = 0;
  try {
    reclaimAfter = intFlag(values, "reclaim-after", 0);
    delivery = await deliveryOptions(values);
    if (values.redis !== undefined) delivery.historyStore = await redisEngine(values, log);
    hub = startHub({
      ...delivery,
      reusePort: values["reuse-port"] === true,
      port: intFlag(values, "port", 0),
      hostname: String(values.hostname),
      maxClients: intFlag(values, "max-clients", 1),
      maxClientsPerIp: values["max-clients-per-ip"] === undefined
        ? undefined
        : intFlag(values, "max-clients-per-ip", 0),
      queueSize: intFlag(values, "queue-size", 1),
      keepAlive: intFlag(values, "keepalive", 0),
      retry: values.retry === undefined ? undefined : intFlag(values, "retry", 0),
      heartbeat: numberFlag(values, "heartbeat"),
      ...(await securityOptions(values)),
      demo: values.demo === true && {
        minIntervalMs: numberFlag(values, "demo-min-interval") * 1000,
        maxIntervalMs: numberFlag(values, "demo-max-interval") * 1000,
      },
      logger: log,
      onListen: (addr) =>
        log("info", "listening", {
          url: `${values.cert === undefined ? "http" : "https"}://${addr.hostname}:${addr.port}/`,
          version: denoJson.version,
        }),
    });
  } catch (err) {
    await delivery?.historyStore?.close();
    if (err instanceof UsageError || err instanceof RangeError) {
      console.error(`sluice: ${err.message.replace(/\.$/, "")}. Try --help.`);
      return 2;
    }
    if (err instanceof Deno.errors.InvalidData && values.cert !== undefined) {
      console.error(`sluice: cannot use --cert / --key: ${err.message}`);
      return 2;
    }
    if (err instanceof Deno.errors.AddrInUse) {
      console.error(`sluice: address in use: ${values.hostname}:${values.port}`);
      return 1;
    }
    if (err instanceof HistoryUnavailableError) {
      console.error(`sluice: cannot reach --redis: ${err.message}`);
      return 1;
    }
    throw err;
  }
  if (values.mqtt !== undefined) {
    // No --mqtt-topic: the bridge's default filter, not an empty list it refuses.
    const topics = listFlag(values, "mqtt-topic");
    try {
      await startMqttBridge(hub, {
        url: String(values.mqtt),
        topics: topics.length > 0 ? topics : undefined,
        clientId: values["mqtt-client-id"] === undefined
          ? undefined
          : String(values["mqtt-client-id"]),
        maxPayloadBytes: intFlag(values, "max-event-bytes", 1),
        logger: log,
      });
    } catch (err) {
      console.error(`sluice: --mqtt: ${err instanceof Error ? err.message : String(err)}`);
      await hub.shutdown();
      return 2;
    }
  }
  const reclaim = startMemoryReclaim(hub.server, {
    afterConnections: reclaimAfter,
    logger: log,
  });
  const stop = (signal: string) => {
    log("info", "shutting down", { signal });
    reclaim?.stop();
    hub.shutdown();
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await hub.server.finished;
  log("info", "stopped");
  log.flush();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * The Sluice command line: runs the hub.
 *
 * ```sh
 * deno run --allow-net --allow-env main.ts --port 8080 --heartbeat 1
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { startHub } from "./server/hub.ts";
import type { Logger } from "./server/server.ts";

/** A CLI flag: its type, environment variable, default and help text. */
interface Flag {
  type: "string" | "boolean";
  env?: string;
  default?: string;
  help: string;
  short?: string;
}

const FLAGS: Record<string, Flag> = {
  port: {
    type: "string",
    env: "SLUICE_PORT",
    default: "8080",
    help: "TCP port (0: any free port)",
  },
  hostname: {
    type: "string",
    env: "SLUICE_HOSTNAME",
    default: "0.0.0.0",
    help: "address to listen on",
  },
  "max-clients": {
    type: "string",
    env: "SLUICE_MAX_CLIENTS",
    default: "1024",
    help: "most event streams at once; more get 503",
  },
  "queue-size": {
    type: "string",
    env: "SLUICE_QUEUE_SIZE",
    default: "1024",
    help: "capacity of the message queue; publishes beyond it get 503",
  },
  keepalive: {
    type: "string",
    env: "SLUICE_KEEPALIVE",
    default: "15",
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
    default: "0",
    help: "seconds between events on channel 'heartbeat' (0: off)",
  },
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
  GET  /events/<channel>   subscribe (text/event-stream); channel: [A-Za-z0-9._~-]{1,128}
  POST /events/<channel>   publish the body as the event data (?event=<name>); loopback only

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

function parse(args: string[]) {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries(FLAGS)) {
    options[name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  for (const [name, f] of Object.entries(FLAGS)) {
    if (values[name] !== undefined) continue;
    const fromEnv = f.env ? Deno.env.get(f.env) : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      values[name] = f.type === "boolean" ? !/^(0|false|no)$/i.test(fromEnv) : fromEnv;
    } else if (f.default !== undefined) {
      values[name] = f.default;
    }
  }
  return values;
}

function makeLogger(quiet: boolean): Logger {
  return (level, message, fields) => {
    if (quiet && (level === "info" || level === "debug")) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v !== undefined) line += ` ${k}=${typeof v === "string" ? JSON.stringify(v) : v}`;
    }
    (level === "error" || level === "warn" ? console.error : console.log)(line);
  };
}

/**
 * Runs the CLI.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`sluice: ${err.message}\nTry --help.`);
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
  const log = makeLogger(values.quiet === true);
  let hub;
  try {
    hub = startHub({
      port: intFlag(values, "port", 0),
      hostname: String(values.hostname),
      maxClients: intFlag(values, "max-clients", 1),
      queueSize: intFlag(values, "queue-size", 1),
      keepAlive: intFlag(values, "keepalive", 0),
      retry: values.retry === undefined ? undefined : intFlag(values, "retry", 0),
      heartbeat: numberFlag(values, "heartbeat"),
      logger: log,
      onListen: (addr) =>
        log("info", "listening", {
          url: `http://${addr.hostname}:${addr.port}/`,
          version: denoJson.version,
        }),
    });
  } catch (err) {
    if (err instanceof UsageError || err instanceof RangeError) {
      console.error(`sluice: ${err.message}\nTry --help.`);
      return 2;
    }
    if (err instanceof Deno.errors.AddrInUse) {
      console.error(`sluice: address in use: ${values.hostname}:${values.port}`);
      return 1;
    }
    throw err;
  }
  const stop = (signal: string) => {
    log("info", "shutting down", { signal });
    hub.shutdown();
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await hub.server.finished;
  log("info", "stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * A real `redis-server` for tests: its own free port on 127.0.0.1, its own
 * temporary directory, its configuration on the command line (never the
 * system service, never port 6379). It can be stopped and started again on
 * the same port and directory, and frozen with SIGSTOP.
 *
 * @module
 */

import { freePort } from "./free_port.ts";

/** Where Debian installs the server. */
const REDIS_SERVER = "/usr/bin/redis-server";

/** Options of {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** Append-only file with `appendfsync always`: every acknowledged write survives a restart. @default {false} */
  appendOnly?: boolean;
  /**
   * Also listen with TLS on a second port, with a self-signed certificate for
   * 127.0.0.1 made by `openssl` (see `tlsUrl` and `caPem`).
   * @default {false}
   */
  tls?: boolean;
}

/** A running (or stopped) test server. */
export interface RedisServer extends AsyncDisposable {
  /** Its port. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its data directory. */
  readonly dir: string;
  /** `rediss://127.0.0.1:<tls port>` when started with `tls`. */
  readonly tlsUrl?: string;
  /** The certificate to trust (PEM) when started with `tls`. */
  readonly caPem?: string;
  /**
   * Stops it and waits for the exit. Idempotent.
   *
   * @param signal `SIGTERM` (clean shutdown) or `SIGKILL` (a crash).
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same port and directory and waits until it answers PING. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered. */
  freeze(): void;
  /** Resumes a frozen process (SIGCONT). */
  thaw(): void;
  /**
   * Sends one command through `redis-cli` and returns its output.
   *
   * @param args The command and its arguments.
   */
  cli(...args: string[]): Promise<string>;
}

async function cli(port: number, args: string[]): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command("/usr/bin/redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return { ok: out.success && !text.startsWith("Could not connect"), out: text };
}

/**
 * Starts a server and waits until it answers PING.
 *
 * @param options Persistence.
 * @returns The server; `await using` stops it and removes its directory.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "sluice-redis-" });
  let child: Deno.ChildProcess | undefined;
  let frozen = false;
  const tlsPort = options.tls ? freePort() : undefined;
  if (tlsPort !== undefined) {
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!made.success) throw new Error("openssl could not make a test certificate");
  }
  const tlsArgs = tlsPort === undefined ? [] : [
    "--tls-port",
    String(tlsPort),
    "--tls-cert-file",
    `${dir}/cert.pem`,
    "--tls-key-file",
    `${dir}/key.pem`,
    "--tls-auth-clients",
    "no",
  ];

  const spawn = async () => {
    child = new Deno.Command(REDIS_SERVER, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        options.appendOnly ? "yes" : "no",
        "--appendfsync",
        "always",
        "--daemonize",
        "no",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        `${dir}/redis.log`,
        ...tlsArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 400; i++) {
      if ((await cli(port, ["PING"])).out === "PONG") return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`redis-server on port ${port} did not answer PING`);
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
    const c = child;
    if (c === undefined) return;
    child = undefined;
    if (frozen) {
      c.kill("SIGCONT");
      frozen = false;
    }
    try {
      c.kill(signal);
    } catch {
      // Already exited.
    }
    await c.status;
  };

  await spawn();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    tlsUrl: tlsPort === undefined ? undefined : `rediss://127.0.0.1:${tlsPort}`,
    caPem: tlsPort === undefined ? undefined : await Deno.readTextFile(`${dir}/cert.pem`),
    stop,
    start: spawn,
    freeze() {
      child?.kill("SIGSTOP");
      frozen = true;
    },
    thaw() {
      child?.kill("SIGCONT");
      frozen = false;
    },
    async cli(...args: string[]) {
      const r = await cli(port, args);
      if (!r.ok) throw new Error(`redis-cli ${args.join(" ")} failed: ${r.out}`);
      return r.out;
    },
    async [Symbol.asyncDispose]() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Whether Debian's redis-server is installed (tests that need it are skipped otherwise). */
export function redisServerAvailable(): boolean {
  try {
    return Deno.statSync(REDIS_SERVER).isFile;
  } catch {
    return false;
  }
}

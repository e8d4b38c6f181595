/**
 * A private Mosquitto broker for tests: Debian's `/usr/sbin/mosquitto` on a
 * free `127.0.0.1` port, with its own config, password file and persistence
 * directory in a temporary directory. It never touches the system service or
 * port 1883. {@linkcode Mosquitto.restart} stops the broker and starts it
 * again on the same port and directory, so persistent sessions and queued
 * messages survive, as on a gateway box after a broker restart.
 *
 * Also wraps `mosquitto_pub` for publishing as a device would.
 *
 * @module
 */

import { freePort } from "./free_port.ts";

/** Path of the broker binary. */
export const MOSQUITTO_PATH = "/usr/sbin/mosquitto";
/** Path of the publishing tool. */
export const MOSQUITTO_PUB_PATH = "/usr/bin/mosquitto_pub";
/** Path of the password file tool. */
export const MOSQUITTO_PASSWD_PATH = "/usr/bin/mosquitto_passwd";

/** Options of {@linkcode Mosquitto.start}. */
export interface MosquittoOptions {
  /**
   * Users and passwords; when given, anonymous clients are refused.
   * @default {undefined} (anonymous clients allowed)
   */
  users?: Readonly<Record<string, string>>;
  /**
   * Serve MQTT over TLS with this certificate and key (PEM files); the URL
   * becomes `mqtts://` and {@linkcode Mosquitto.pub} trusts the certificate.
   * @default {undefined} (plain TCP)
   */
  tls?: { readonly certFile: string; readonly keyFile: string };
  /** Extra config lines (e.g. `max_inflight_messages 4`). @default {[]} */
  config?: readonly string[];
  /** Milliseconds to wait for the broker to accept connections. @default {15000} */
  readyTimeoutMs?: number;
}

/** Options of {@linkcode Mosquitto.pub}. */
export interface PubOptions {
  /** QoS 0, 1 or 2. @default {0} */
  qos?: 0 | 1 | 2;
  /** Publish as retained. @default {false} */
  retain?: boolean;
  /** User name and password. @default {undefined} */
  user?: string;
  /** Password of `user`. @default {undefined} */
  password?: string;
}

/**
 * Whether the Mosquitto binaries are installed.
 *
 * @returns `true` when the broker and `mosquitto_pub` exist.
 * @example
 * ```ts
 * Deno.test({ name: "bridge", ignore: !mosquittoAvailable() }, async () => {});
 * ```
 */
export function mosquittoAvailable(): boolean {
  try {
    return Deno.statSync(MOSQUITTO_PATH).isFile && Deno.statSync(MOSQUITTO_PUB_PATH).isFile;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<void> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd} ${args.join(" ")} exited with ${out.code}: ${err}`);
  }
}

/**
 * A running private broker. `await using` stops it and removes its directory.
 *
 * @example
 * ```ts
 * await using broker = await Mosquitto.start();
 * await broker.pub("sensors/d1/state", '{"TYPE":"STATE"}', { qos: 1 });
 * ```
 */
export class Mosquitto implements AsyncDisposable {
  /** The port it listens on (on `127.0.0.1`). */
  readonly port: number;
  /** Its temporary directory: config, password file, persistence, log. */
  readonly dir: string;
  readonly #readyTimeoutMs: number;
  readonly #caFile: string | undefined;
  #child: Deno.ChildProcess | undefined;
  #disposed = false;

  private constructor(port: number, dir: string, readyTimeoutMs: number, caFile?: string) {
    this.port = port;
    this.dir = dir;
    this.#readyTimeoutMs = readyTimeoutMs;
    this.#caFile = caFile;
  }

  /**
   * Writes the config and starts the broker; resolves once it accepts connections.
   *
   * @param options Users, extra config lines.
   * @returns The running broker.
   * @throws {Error} When the broker does not start.
   */
  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = await Deno.makeTempDir({ prefix: "sluice_mosquitto_" });
    const port = freePort();
    const lines = [
      `listener ${port} 127.0.0.1`,
      ...(options.tls
        ? [`certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`]
        : []),
      // Tests run as root: without this the broker drops to user "mosquitto",
      // which cannot write to the temporary directory.
      "user root",
      "persistence true",
      `persistence_location ${dir}/`,
      "autosave_interval 1",
      `log_dest file ${dir}/mosquitto.log`,
      "log_type all",
    ];
    if (options.users) {
      const pw = `${dir}/passwd`;
      let first = true;
      for (const [user, password] of Object.entries(options.users)) {
        await run(MOSQUITTO_PASSWD_PATH, [...(first ? ["-c"] : []), "-b", pw, user, password]);
        first = false;
      }
      lines.push("allow_anonymous false", `password_file ${pw}`);
    } else {
      lines.push("allow_anonymous true");
    }
    lines.push(...(options.config ?? []));
    await Deno.writeTextFile(`${dir}/mosquitto.conf`, lines.join("\n") + "\n");
    const broker = new Mosquitto(
      port,
      dir,
      options.readyTimeoutMs ?? 15_000,
      options.tls?.certFile,
    );
    try {
      await broker.#spawn();
    } catch (err) {
      await broker[Symbol.asyncDispose]();
      throw err;
    }
    return broker;
  }

  /** The broker's URL, e.g. `mqtt://127.0.0.1:41234` (`mqtts://` with TLS). */
  get url(): string {
    return `${this.#caFile ? "mqtts" : "mqtt"}://127.0.0.1:${this.port}`;
  }

  /** Whether the broker process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  async #spawn(): Promise<void> {
    this.#child = new Deno.Command(MOSQUITTO_PATH, {
      args: ["-c", `${this.dir}/mosquitto.conf`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exited = this.#child.status.then((s) => s);
    const deadline = Date.now() + this.#readyTimeoutMs;
    while (true) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        conn.close();
        return;
      } catch {
        const done = await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
        if (done !== undefined) {
          this.#child = undefined;
          throw new Error(`mosquitto exited at start: see ${this.dir}/mosquitto.log`);
        }
        if (Date.now() > deadline) throw new Error("mosquitto did not accept connections");
      }
    }
  }

  /**
   * Stops the broker by its PID (SIGTERM, so it saves its persistence file)
   * and waits for it to exit. Idempotent.
   */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
  }

  /** Stops the broker and starts it again on the same port and directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /**
   * Publishes one message with `mosquitto_pub`, as a device would.
   *
   * @param topic The topic.
   * @param payload Text, or raw bytes (sent from a file with `-f`).
   * @param options QoS, retain, credentials.
   */
  async pub(topic: string, payload: string | Uint8Array, options: PubOptions = {}): Promise<void> {
    const args = ["-h", "127.0.0.1", "-p", String(this.port), "-t", topic];
    args.push("-q", String(options.qos ?? 0));
    if (options.retain) args.push("-r");
    if (this.#caFile) args.push("--cafile", this.#caFile);
    if (options.user !== undefined) args.push("-u", options.user);
    if (options.password !== undefined) args.push("-P", options.password);
    if (typeof payload === "string") {
      args.push("-m", payload);
      await run(MOSQUITTO_PUB_PATH, args);
    } else {
      const file = await Deno.makeTempFile({ dir: this.dir, prefix: "payload_" });
      await Deno.writeFile(file, payload);
      args.push("-f", file);
      await run(MOSQUITTO_PUB_PATH, args);
    }
  }

  /** The broker's log so far (for failure messages). */
  async log(): Promise<string> {
    try {
      return await Deno.readTextFile(`${this.dir}/mosquitto.log`);
    } catch {
      return "";
    }
  }

  /** Stops the broker and removes its directory. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    if (this.#disposed) return;
    this.#disposed = true;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

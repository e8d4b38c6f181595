/**
 * Helpers for the hub's end-to-end tests: a hub on 127.0.0.1 port 0, one-shot
 * HTTP requests over raw sockets, streams, curl, and a hang guard.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Hub, type HubOptions, startHub } from "../../server/hub/hub.ts";
import { RawClient, type ResponseHead } from "../_util/raw_client.ts";
import { within } from "../_util/within.ts";

export { within } from "../_util/within.ts";

/** A hub on 127.0.0.1, port 0, no keep-alive comments. */
export function testHub(options: HubOptions = {}): Hub {
  return startHub({ hostname: "127.0.0.1", port: 0, keepAlive: 0, ...options });
}

/** One request on a fresh connection (`Connection: close`); the whole response. */
export async function request(
  port: number,
  method: string,
  target: string,
  init: { headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<ResponseHead & { body: string }> {
  await using c = await RawClient.connect(port);
  const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
  let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(init.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (body !== undefined) head += `Content-Length: ${body.length}\r\n`;
  await c.send(head + "\r\n");
  if (body !== undefined) await c.send(body);
  return await within(c.readResponse(), `${method} ${target}`);
}

/** POSTs `body` to `/events/<channel>` with a content type. */
export function publish(
  port: number,
  target: string,
  body: string | Uint8Array,
  contentType: string | undefined = "text/plain",
  headers: Record<string, string> = {},
): Promise<ResponseHead & { body: string }> {
  const h = contentType === undefined ? headers : { "Content-Type": contentType, ...headers };
  return request(port, "POST", target, { headers: h, body });
}

export { subscribe } from "./_replay_util.ts";

/** Waits (polling, bounded) until `cond()` holds. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
    })(),
    what,
  );
}

/** The value of an unlabelled sample in Prometheus text. */
export function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m, `metric ${name} missing`);
  return Number(m[1]);
}

/** Whether a program runs (`<cmd> --version` succeeds). */
export function hasCommand(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Runs curl with `args`; resolves with its exit code, stdout and stderr. */
export async function curl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await within(
    new Deno.Command("curl", { args: ["-sS", "--max-time", "10", ...args] }).output(),
    `curl ${args.join(" ")}`,
  );
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/**
 * Runs curl on an event stream until its output contains `needle`, then
 * stops it. `whenSubscribed` runs once the hub has the stream (e.g. publish).
 */
export async function curlStreamUntil(
  args: string[],
  needle: string,
  whenSubscribed: () => Promise<unknown>,
  isSubscribed: () => boolean,
): Promise<string> {
  const child = new Deno.Command("curl", {
    args: ["-sSN", "--max-time", "20", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    await until(isSubscribed, "curl subscribed");
    await whenSubscribed();
    await within(
      (async () => {
        while (!text.includes(needle)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`curl ended before ${JSON.stringify(needle)}: ${text}`);
          text += decoder.decode(value, { stream: true });
        }
      })(),
      `curl stream output ${needle}`,
    );
  } finally {
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.status;
  }
  return text;
}

/** A text POST to `/events/news` over a connection to `hostname` (not necessarily loopback). */
export async function publishVia(
  hostname: string,
  port: number,
  body: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname, port });
  try {
    const req = `POST /events/news HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    await conn.write(new TextEncoder().encode(req));
    let text = "";
    const buf = new Uint8Array(4096);
    await within(
      (async () => {
        for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      })(),
      "response",
    );
    const [head, rest] = text.split("\r\n\r\n");
    return { status: Number(head.split(" ")[1]), body: rest ?? "" };
  } finally {
    conn.close();
  }
}

/** A hub run by the CLI (`deno run main.ts`) in a child process. */
export interface CliHub extends AsyncDisposable {
  /** The port it listens on, from its "listening" log line. */
  readonly port: number;
  /** The URL of its "listening" log line. */
  readonly url: string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number>;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Options of {@linkcode startCli}. */
export interface StartCliOptions {
  /** Port to listen on (a restart on the port of an earlier run); default: any free one. */
  port?: number;
}

/**
 * Starts `main.ts` with `args` (127.0.0.1 and the port added) and waits for
 * it to listen. `args` must not hold `--quiet`: the "listening" line is awaited.
 */
export async function startCli(
  args: string[],
  env: Record<string, string> = {},
  options: StartCliOptions = {},
): Promise<CliHub> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "--port",
      String(options.port ?? 0),
      "--hostname",
      "127.0.0.1",
      "--keepalive",
      "0",
      ...args,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let out = "";
  const reader = child.stdout.getReader();
  const listening = within(
    (async () => {
      for (;;) {
        const m = /listening url="(https?:\/\/127\.0\.0\.1:(\d+)\/)"/.exec(out);
        if (m) return { url: m[1], port: Number(m[2]) };
        const { value, done } = await reader.read();
        if (done) throw new Error(`CLI exited before listening: ${out}`);
        out += decoder.decode(value, { stream: true });
      }
    })(),
    "CLI listening",
    30_000,
  );
  // Keep draining both pipes so the child never blocks on a full one.
  const drained = (async () => {
    await listening.catch(() => {});
    for (;;) {
      const { done } = await reader.read();
      if (done) return;
    }
  })();
  const stderr = child.stderr.text();
  let stopped: Promise<number> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const { code } = await within(child.status, "CLI exit");
      await drained;
      await stderr;
      return code;
    })();
  let addr: { url: string; port: number };
  try {
    addr = await listening;
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ...addr,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

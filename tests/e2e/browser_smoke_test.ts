import assert from "node:assert/strict";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";

const encoder = new TextEncoder();

const PAGE = "<!doctype html><title>smoke</title><p id=ok>ready</p>";

/** Reads bytes until the end of the request head and returns the request path. */
async function readRequestPath(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(8192);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) return null;
    head += new TextDecoder().decode(buf.subarray(0, n));
    if (head.length > 65536) return null;
  }
  return head.split(" ")[1] ?? null;
}

/** Writes all of `bytes` to `conn`, looping on partial writes. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Answers one connection: `/` with a page, `/events` with three SSE events. */
async function handle(conn: Deno.Conn): Promise<void> {
  try {
    const path = await readRequestPath(conn);
    if (path === "/events") {
      const head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
      await writeAll(conn, encoder.encode(head + "data: 1\n\ndata: 2\n\ndata: 3\n\n"));
      // Hold the stream open until the browser or the test closes it.
      while (await conn.read(new Uint8Array(1024)) !== null) { /* discard */ }
    } else if (path !== null) {
      const body = encoder.encode(PAGE);
      await writeAll(
        conn,
        encoder.encode(
          `HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        ),
      );
      await writeAll(conn, body);
    }
  } catch {
    // The peer went away or the test closed the socket: nothing left to do.
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** A raw TCP server on 127.0.0.1, port 0; disposing closes every socket and waits. */
function startServer(): { url: string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const done = handle(conn).finally(() => {
        conns.delete(conn);
        handlers.delete(done);
      });
      handlers.add(done);
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}/`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await Promise.all(handlers);
    },
  };
}

Deno.test({
  name: "Chromium EventSource receives three events from a raw socket SSE server",
  ignore: !browserAvailable(),
}, async () => {
  await using server = startServer();
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(server.url);
  assert.equal(await page.textContent("#ok"), "ready");

  const received = await page.evaluate((url: string) =>
    new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      const source = new EventSource(url);
      const guard = setTimeout(() => {
        source.close();
        reject(new Error(`timed out; received ${JSON.stringify(got)}`));
      }, 20_000);
      source.onmessage = (e) => {
        got.push(e.data);
        if (got.length === 3) {
          clearTimeout(guard);
          source.close();
          resolve(got);
        }
      };
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) {
          clearTimeout(guard);
          reject(new Error("EventSource failed"));
        }
      };
    }), server.url + "events");

  assert.deepEqual(received, ["1", "2", "3"]);
});

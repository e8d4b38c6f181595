/**
 * Checks the Basic and Digest middleware against the real curl client, through
 * a tiny keep-alive HTTP/1.1 server built on `Deno.listen` in this file.
 */

import assert from "node:assert/strict";
import { basicAuth } from "../../../server/middleware/auth_basic.ts";
import { digestAuth } from "../../../server/middleware/auth_digest.ts";
import type { HttpRequest, Middleware } from "../../../server/http/types.ts";
import { hashPassword, UserStore } from "../../../server/middleware/users.ts";

const hasCurl = (() => {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseHead(head: string, remoteAddr: Deno.NetAddr): HttpRequest {
  const [requestLine, ...lines] = head.split("\r\n");
  const [method, target] = requestLine.split(" ");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const url = new URL(target, "http://127.0.0.1");
  return {
    method,
    target,
    path: url.pathname,
    query: url.searchParams,
    version: "1.1",
    headers,
    body: new Uint8Array(),
    params: {},
    remoteAddr: { hostname: remoteAddr.hostname, port: remoteAddr.port },
    secure: false,
  };
}

/** Serves every request of a connection: middleware, then 200 or its answer. */
async function handle(conn: Deno.Conn, mw: Middleware, seen: HttpRequest[]): Promise<void> {
  let pending = "";
  const buf = new Uint8Array(16 * 1024);
  try {
    while (true) {
      let end = pending.indexOf("\r\n\r\n");
      while (end < 0) {
        const n = await conn.read(buf);
        if (n === null) return;
        pending += decoder.decode(buf.subarray(0, n));
        end = pending.indexOf("\r\n\r\n");
      }
      const req = parseHead(pending.slice(0, end), conn.remoteAddr as Deno.NetAddr);
      pending = pending.slice(end + 4);
      seen.push(req);
      const extra: [string, string][] = [];
      const res = (await mw(req, extra)) ?? { status: 200, body: `hello ${req.user}\n` };
      const body = typeof res.body === "string"
        ? encoder.encode(res.body)
        : res.body ?? new Uint8Array();
      const headers = [
        ...(Array.isArray(res.headers) ? res.headers : Object.entries(res.headers ?? {})),
        ...extra,
      ];
      let head = `HTTP/1.1 ${res.status} X\r\n`;
      for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
      head += `Content-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`;
      const out = new Uint8Array([...encoder.encode(head), ...body]);
      for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset)) {
      throw err;
    }
  } finally {
    try {
      conn.close();
    } catch { /* already closed by the test teardown */ }
  }
}

function startServer(mw: Middleware) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const seen: HttpRequest[] = [];
  let accepted = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        conns.add(conn);
        tasks.push(handle(conn, mw, seen).finally(() => conns.delete(conn)));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    seen,
    get accepted() {
      return accepted;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed meanwhile */ }
      }
      await Promise.all(tasks);
    },
  };
}

/** Runs curl and returns the final HTTP status it saw. */
async function curl(args: string[], url: string): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--noproxy",
      "*",
      "--max-time",
      "30",
      ...args,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `curl failed: ${decoder.decode(out.stderr)}`);
  return Number(decoder.decode(out.stdout));
}

const users = () =>
  new UserStore()
    .addPassword("admin", "admin");

function authOf(req: HttpRequest): string | undefined {
  return req.headers.get("authorization");
}

Deno.test({
  name: "curl --digest logs in with SHA-256, the first challenge, on one keep-alive connection",
  ignore: !hasCurl,
  async fn() {
    await using server = startServer(digestAuth({ realm: "sluice", users: users() }));
    const status = await curl(["--digest", "-u", "admin:admin"], `${server.url}/events/a?x=1`);
    assert.equal(status, 200);
    assert.equal(server.seen.length, 2, "one challenge, one authorized retry");
    assert.equal(authOf(server.seen[0]), undefined);
    assert.match(authOf(server.seen[1]) ?? "", /^Digest .*algorithm="?SHA-256"?/);
    assert.match(authOf(server.seen[1]) ?? "", /uri="\/events\/a\?x=1"/);
    assert.equal(server.seen[1].user, "admin");
    assert.equal(server.accepted, 1, "curl retried on the same connection");
  },
});

Deno.test({
  name: "curl --digest logs in with MD5 when only MD5 is offered",
  ignore: !hasCurl,
  async fn() {
    await using server = startServer(
      digestAuth({ realm: "sluice", users: users(), algorithms: ["MD5"] }),
    );
    const status = await curl(["--digest", "-u", "admin:admin"], `${server.url}/events/a`);
    assert.equal(status, 200);
    assert.match(authOf(server.seen.at(-1)!) ?? "", /algorithm="?MD5"?/);
  },
});

Deno.test({
  name: "curl --digest logs in as a user stored only as an htdigest MD5 hash",
  ignore: !hasCurl,
  async fn() {
    const store = new UserStore().addHash(
      "viewer",
      "sluice",
      hashPassword("viewer", "sluice", "pw"),
    );
    await using server = startServer(digestAuth({ realm: "sluice", users: store }));
    assert.equal(await curl(["--digest", "-u", "viewer:pw"], `${server.url}/x`), 200);
    assert.equal(await curl(["--digest", "-u", "viewer:nope"], `${server.url}/x`), 401);
  },
});

Deno.test({
  name: "curl --digest with a wrong password ends with 401",
  ignore: !hasCurl,
  async fn() {
    await using server = startServer(digestAuth({ realm: "sluice", users: users() }));
    const status = await curl(["--digest", "-u", "admin:wrong"], `${server.url}/events/a`);
    assert.equal(status, 401);
    assert.equal(server.seen.at(-1)?.user, undefined);
    assert.match(authOf(server.seen.at(-1)!) ?? "", /^Digest /, "curl did try its answer");
  },
});

Deno.test({
  name: "curl --basic logs in with the right password and gets 401 with a wrong one",
  ignore: !hasCurl,
  async fn() {
    const store = users().addHash("viewer", "sluice", hashPassword("viewer", "sluice", "pw"));
    await using server = startServer(basicAuth({ realm: "sluice", users: store }));
    assert.equal(await curl(["--basic", "-u", "admin:admin"], `${server.url}/events/a`), 200);
    assert.equal(server.seen.at(-1)?.user, "admin");
    assert.equal(await curl(["--basic", "-u", "viewer:pw"], `${server.url}/events/a`), 200);
    assert.equal(await curl(["--basic", "-u", "admin:wrong"], `${server.url}/events/a`), 401);
    assert.equal(await curl([], `${server.url}/events/a`), 401);
  },
});

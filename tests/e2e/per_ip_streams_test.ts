/**
 * The per-peer stream cap (`maxClientsPerIp`) over real sockets: streams from
 * 127.0.0.1 go through `Deno.connect`, those from 127.0.0.2 through
 * `curl --interface 127.0.0.2` (a Deno socket cannot pick its source address).
 *
 * @module
 */

import assert from "node:assert/strict";
import { prometheusText } from "../../server/metrics.ts";
import { serve, type SluiceServer } from "../../server/server.ts";
import type { ServerOptions } from "../../server/server_options.ts";
import { RawClient } from "../_util/raw_client.ts";
import { within } from "../_util/within.ts";
import { hasCommand, metric, request, startCli, until } from "./_hub.ts";

const HAS_CURL = hasCommand("curl");

/** A stream opened by curl from 127.0.0.2: its status, and how to end it. */
interface CurlStream extends AsyncDisposable {
  readonly status: number;
  readonly head: string;
}

/** Opens `path` with curl bound to 127.0.0.2 and reads the response head. */
async function curlStream(port: number, path: string): Promise<CurlStream> {
  const child = new Deno.Command("curl", {
    args: [
      "-sSN",
      "--max-time",
      "30",
      "--interface",
      "127.0.0.2",
      "-D",
      "-",
      "-o",
      "/dev/null",
      `http://127.0.0.1:${port}${path}`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await reader.cancel().catch(() => {});
    await child.status;
  };
  try {
    await within(
      (async () => {
        while (!text.includes("\r\n\r\n")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`curl ended before a head: ${JSON.stringify(text)}`);
          text += decoder.decode(value, { stream: true });
        }
      })(),
      `curl head of ${path}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const head = text.slice(0, text.indexOf("\r\n\r\n"));
  return { status: Number(head.split(" ")[1]), head, [Symbol.asyncDispose]: stop };
}

function start(options: ServerOptions): { server: SluiceServer; port: number } {
  const server = serve({ port: 0, hostname: "127.0.0.1", keepAlive: 0, ...options });
  server.eventSource("/events/:channel");
  return { server, port: server.addr.port };
}

async function closedDown(server: SluiceServer): Promise<void> {
  await until(() => server.sessions.size === 0 && server.stats.connections === 0, "all closed");
  assert.equal(server.stats.streamPeers, 0, "the per-peer map holds only peers with streams");
}

Deno.test({
  name: "maxClientsPerIp 2: a third stream from 127.0.0.1 gets 503, 127.0.0.2 still gets 200",
  ignore: !HAS_CURL,
  async fn() {
    const logged: string[] = [];
    const { server, port } = start({
      maxClients: 16,
      maxClientsPerIp: 2,
      retryAfter: 7,
      logger: (_level, message, fields) => logged.push(`${message} (${fields?.reason})`),
    });
    await using _server = server;
    const a = await RawClient.stream(port, "/events/x");
    const b = await RawClient.stream(port, "/events/x");
    try {
      assert.equal(a.head.status, 200);
      assert.equal(b.head.status, 200);
      assert.equal(server.stats.streamPeers, 1);

      // The explicit value applies to loopback too: the third stream is refused.
      const c = await RawClient.stream(port, "/events/x");
      await using _c = c.client;
      assert.equal(c.head.status, 503);
      assert.equal(c.head.headers.get("retry-after"), "7");
      assert.equal(c.head.headers.get("connection"), "close");
      assert.equal(await c.client.readToEnd(), "", "503 has no body and the socket closes");
      assert.ok(
        logged.includes("stream rejected: too many streams from this address (per-ip-limit)"),
        logged.join("\n"),
      );

      // Another address is not held back by the first one's streams.
      {
        await using other = await curlStream(port, "/events/x");
        assert.equal(other.status, 200, other.head);
        await until(() => server.sessions.size === 3, "the other peer's stream open");
        assert.equal(server.stats.streamPeers, 2);
      }

      // Closing one of the first two frees a slot for 127.0.0.1.
      a.client.close();
      await until(() => server.sessions.size === 1, "the closed streams gone");
      const d = await RawClient.stream(port, "/events/x");
      await using _d = d.client;
      assert.equal(d.head.status, 200);
      d.client.close();
    } finally {
      a.client.close();
      b.client.close();
    }
    await closedDown(server);
    const s = server.stats;
    assert.equal(s.perIpRejected, 1);
    assert.equal(s.sessions.rejected, 0, "a peer at its cap is not a full table");
    assert.equal(s.httpErrors[503], 1);
    assert.ok(prometheusText(s).includes("\nsluice_streams_rejected_per_ip_total 1\n"));
  },
});

Deno.test({
  name: "the default per-peer cap exempts loopback peers (127.0.0.1 and 127.0.0.2)",
  ignore: !HAS_CURL,
  async fn() {
    // maxClients 8: the default cap is a quarter of it, 2, for peers that are not loopback.
    const { server, port } = start({ maxClients: 8 });
    await using _server = server;
    const local = await Promise.all(
      Array.from({ length: 4 }, () => RawClient.stream(port, "/events/x")),
    );
    try {
      assert.deepEqual(local.map((s) => s.head.status), [200, 200, 200, 200]);
      await using o1 = await curlStream(port, "/events/x");
      await using o2 = await curlStream(port, "/events/x");
      await using o3 = await curlStream(port, "/events/x");
      assert.deepEqual([o1.status, o2.status, o3.status], [200, 200, 200]);
      assert.equal(server.stats.streamPeers, 0, "loopback peers are not counted");
      assert.equal(server.stats.perIpRejected, 0);
    } finally {
      for (const s of local) s.client.close();
    }
    await closedDown(server);
  },
});

Deno.test("busy retry: a stream past the per-peer cap gets 200 with a retry: and is closed", async () => {
  const { server, port } = start({ maxClientsPerIp: 1, busy: "retry", retryAfter: 2 });
  await using _server = server;
  const first = await RawClient.stream(port, "/events/x");
  try {
    assert.equal(first.head.status, 200);
    const second = await RawClient.stream(port, "/events/x");
    await using _second = second.client;
    assert.equal(second.head.status, 200);
    assert.equal(second.head.headers.get("content-type"), "text/event-stream");
    assert.equal(second.head.headers.get("connection"), "close");
    const body = await within(second.client.readToEnd(), "soft reject closes");
    const m = /^retry: (\d+)\n\n$/.exec(body);
    assert.ok(m, JSON.stringify(body));
    assert.ok(Number(m[1]) >= 1000 && Number(m[1]) <= 3000, m[1]);
  } finally {
    first.client.close();
  }
  await closedDown(server);
  const s = server.stats;
  assert.equal(s.perIpRejected, 1);
  assert.equal(s.softRejected, 1);
  assert.equal(s.sessions.opened, 1);
});

Deno.test("maxClientsPerIp 0 is no cap; a negative or fractional value is refused", async () => {
  const { server, port } = start({ maxClients: 4, maxClientsPerIp: 0 });
  await using _server = server;
  const streams = await Promise.all(
    Array.from({ length: 4 }, () => RawClient.stream(port, "/events/x")),
  );
  assert.deepEqual(streams.map((s) => s.head.status), [200, 200, 200, 200]);
  for (const s of streams) s.client.close();
  await closedDown(server);
  for (const bad of [-1, 1.5]) {
    assert.throws(() => serve({ port: 0, hostname: "127.0.0.1", maxClientsPerIp: bad }), {
      name: "RangeError",
      message: `maxClientsPerIp must be a non-negative integer: received ${bad}`,
    });
  }
});

Deno.test("hub CLI: --max-clients-per-ip (and its variable) caps loopback; /status and /metrics count it", async () => {
  for (
    const [args, env] of [
      [["--max-clients-per-ip", "1"], {}],
      [[], { SLUICE_MAX_CLIENTS_PER_IP: "1" }],
    ] as [string[], Record<string, string>][]
  ) {
    await using hub = await startCli(args, env);
    const first = await RawClient.stream(hub.port, "/events/x");
    try {
      assert.equal(first.head.status, 200);
      const second = await RawClient.stream(hub.port, "/events/x");
      await using _second = second.client;
      assert.equal(second.head.status, 503);
      const status = JSON.parse((await request(hub.port, "GET", "/status")).body);
      assert.equal(status.perIpRejected, 1);
      const metrics = (await request(hub.port, "GET", "/metrics")).body;
      assert.equal(metric(metrics, "sluice_streams_rejected_per_ip_total"), 1);
    } finally {
      first.client.close();
    }
  }
});

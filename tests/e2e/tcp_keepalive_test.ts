/**
 * TCP keep-alive probes go where nothing else would find a vanished peer: a
 * stream whose keep-alive comments are off. Accepted sockets do not get them
 * (request sockets end by their header and idle timeouts, streams with
 * comments by a failing write), which keeps a reconnect storm one system call
 * per socket lighter. Read from the kernel: `/proc/net/tcp` shows a keep-alive
 * timer (`tr` 2) on a socket with `SO_KEEPALIVE` and nothing in flight.
 *
 * @module
 */

import assert from "node:assert/strict";
import { serve } from "../../server/server.ts";
import { RawClient } from "../_util/raw_client.ts";

const PROC_TCP = "/proc/net/tcp";
const hasProcTcp = (() => {
  try {
    Deno.statSync(PROC_TCP);
    return true;
  } catch {
    return false;
  }
})();

/** The `tr` timer of the server's end of the connection to `peerPort`, or `undefined`. */
function serverTimer(serverPort: number, peerPort: number): number | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  for (const line of Deno.readTextFileSync(PROC_TCP).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    if (f[1].endsWith(":" + hex(serverPort)) && f[2].endsWith(":" + hex(peerPort))) {
      return Number.parseInt(f[5].split(":")[0], 16);
    }
  }
  return undefined;
}

async function timerOfStream(keepAlive: number): Promise<number | undefined> {
  await using server = serve({ port: 0, hostname: "127.0.0.1", keepAlive });
  server.eventSource("/events/:channel", {});
  await using client = await RawClient.connect(server.addr.port);
  await client.send("GET /events/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await client.readUntil((b) => b.includes("\r\n\r\n"));
  return serverTimer(server.addr.port, (client.conn.localAddr as Deno.NetAddr).port);
}

Deno.test({
  name: "a stream with keep-alive comments off gets TCP keep-alive probes; one with them does not",
  ignore: !hasProcTcp,
  async fn() {
    assert.equal(await timerOfStream(0), 2, "keep-alive timer armed (SO_KEEPALIVE)");
    assert.equal(await timerOfStream(15), 0, "no timer: the comments find a vanished peer");
  },
});

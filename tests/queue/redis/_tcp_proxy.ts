/**
 * A TCP relay in front of a test server that can wedge chosen connections:
 * they stay open but nothing passes any more, like a half-open socket after
 * a network partition.
 *
 * @module
 */

/** A relay; `await using` closes it and every connection. */
export interface TcpProxy extends AsyncDisposable {
  /** Port the relay listens on. */
  readonly port: number;
  /**
   * Wedges every open connection whose client sent `marker` (e.g. `XREAD`, any case).
   *
   * @param marker Text the client sent on the connection.
   * @returns How many connections were wedged.
   */
  wedge(marker: string): number;
}

interface Relay {
  readonly client: Deno.TcpConn;
  readonly server: Deno.TcpConn;
  sent: string;
  wedged: boolean;
  readonly done: Promise<unknown>;
}

/**
 * Starts a relay to `127.0.0.1:<targetPort>`.
 *
 * @param targetPort The server's port.
 * @returns The relay.
 */
export function startTcpProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const relays = new Set<Relay>();
  const dec = new TextDecoder("latin1");

  const pump = async (relay: Relay, from: Deno.TcpConn, to: Deno.TcpConn, record: boolean) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null || relay.wedged) break;
        if (record && relay.sent.length < 4096) relay.sent += dec.decode(buf.subarray(0, n));
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // The other side closed.
    }
    // A wedged relay keeps both sockets open (the peer sees silence); closing happens on dispose.
    if (!relay.wedged) close(relay);
  };

  const close = (relay: Relay) => {
    if (!relays.delete(relay)) return;
    for (const c of [relay.client, relay.server]) {
      try {
        c.close();
      } catch {
        // Already closed.
      }
    }
  };

  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.TcpConn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      const relay = { client, server, sent: "", wedged: false } as Relay;
      relays.add(relay);
      (relay as { done: Promise<unknown> }).done = Promise.all([
        pump(relay, client, server, true),
        pump(relay, server, client, false),
      ]);
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    wedge(marker: string): number {
      let n = 0;
      for (const r of relays) {
        if (!r.wedged && r.sent.toLowerCase().includes(marker.toLowerCase())) {
          r.wedged = true;
          n++;
        }
      }
      return n;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      const all = [...relays];
      for (const r of all) {
        r.wedged = false;
        close(r);
      }
      await Promise.all(all.map((r) => r.done));
    },
  };
}

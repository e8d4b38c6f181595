/**
 * History costs: append per event (memory, SQLite `normal` and `full`), and
 * replay throughput (reconnecting streams that each get 1000 events from
 * history, over real sockets).
 *
 * ```sh
 * deno run -A bench/history_bench.ts
 * ```
 *
 * @module
 */

import { encodeEvent, type HistoryStore, MemoryHistory, serve, SqliteHistory } from "../mod.ts";
import { cliFlags } from "../server/hub/mod.ts";

// No flags: parsing still answers --help and refuses what it does not know.
cliFlags({
  name: "history_bench",
  usage: "deno run -A bench/history_bench.ts",
  description: "History costs: append per event (memory, SQLite normal and full), and replay " +
    "throughput (reconnecting streams that each get 1000 events from history, over real " +
    "sockets).",
  flags: {},
});

const bytes = encodeEvent(JSON.stringify({ sensor: "a", value: 21.5, unit: "C" }));

function appendCost(name: string, store: HistoryStore, n: number): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) store.append(i % 4 === 0 ? "b" : "a", { bytes });
  const ms = performance.now() - t0;
  console.log(
    `${name.padEnd(34)} ${(ms * 1000 / n).toFixed(2).padStart(8)} µs/event  ` +
      `${Math.round(n / ms * 1000).toString().padStart(8)} events/s  (${n} events)`,
  );
}

const dir = await Deno.makeTempDir();
try {
  appendCost("memory (1000/channel)", new MemoryHistory(), 200_000);
  for (const synchronous of ["normal", "full"] as const) {
    const path = `${dir}/${synchronous}.db`;
    const fresh = new SqliteHistory(path, { synchronous, maxEvents: 1_000_000 });
    appendCost(
      `sqlite ${synchronous}, no eviction`,
      fresh,
      synchronous === "full" ? 2_000 : 20_000,
    );
    fresh.close();
    const steady = new SqliteHistory(`${dir}/${synchronous}-steady.db`, {
      synchronous,
      maxEvents: 1000,
    });
    appendCost(
      `sqlite ${synchronous}, evicting (1000)`,
      steady,
      synchronous === "full" ? 2_000 : 20_000,
    );
    steady.close();
  }

  // Replay throughput: N streams reconnect with an id 1000 events back.
  for (
    const [name, store] of [
      ["memory", new MemoryHistory()],
      ["sqlite", new SqliteHistory(`${dir}/replay.db`)],
    ] as const
  ) {
    await using server = serve({
      port: 0,
      hostname: "127.0.0.1",
      keepAlive: 0,
      historyStore: store,
      maxClients: 512,
    });
    const events = server.eventSource("/events");
    const first = await events.publish("x".repeat(100));
    for (let i = 1; i < 1001; i++) events.send("x".repeat(100));
    const clients = 200;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await conn.write(
        new TextEncoder().encode(
          `GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${first}\r\n\r\n`,
        ),
      );
      const buf = new Uint8Array(256 * 1024);
      let text = "";
      const dec = new TextDecoder();
      while ((text.match(/\n\n/g)?.length ?? 0) < 1000) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("closed");
        text += dec.decode(buf.subarray(0, n), { stream: true });
      }
      conn.close();
    }));
    const ms = performance.now() - t0;
    console.log(
      `replay ${name.padEnd(7)} ${clients} streams x 1000 events: ${ms.toFixed(0)} ms, ` +
        `${Math.round(clients * 1000 / ms * 1000)} events/s (client parsing included)`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

/**
 * Test helper, run as its own process (its own file-descriptor budget):
 * opens N connections to 127.0.0.1:PORT at once, makes each do one of four
 * things, then drops them all at once. Prints one JSON line:
 * `{ "connected": n, "failed": n, "streams": n }`.
 *
 * - i % 4 == 0: send nothing;
 * - i % 4 == 1: send half a request head;
 * - i % 4 == 2: send a whole stream request, drop without reading;
 * - i % 4 == 3: send a stream request, wait for the 200 head, drop with
 *   unread data pending (Linux answers with a reset).
 *
 * ```sh
 * deno run -A tests/e2e/_drop_clients.ts 8080 10000
 * ```
 *
 * @module
 */

const [portArg, countArg] = Deno.args;
const port = Number(portArg);
const count = Number(countArg);
if (!Number.isSafeInteger(port) || !Number.isSafeInteger(count) || count < 1) {
  console.error("usage: _drop_clients.ts PORT COUNT");
  Deno.exit(2);
}

const encoder = new TextEncoder();
const HALF = encoder.encode("GET /events/drop HTTP/1.1\r\nHost: x\r\nAcc");
const STREAM = encoder.encode(
  "GET /events/drop HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
);

const conns = await Promise.all(
  Array.from(
    { length: count },
    () => Deno.connect({ hostname: "127.0.0.1", port }).catch(() => undefined),
  ),
);
let streams = 0;
await Promise.all(conns.map(async (conn, i) => {
  if (conn === undefined) return;
  try {
    if (i % 4 === 1) await conn.write(HALF);
    if (i % 4 >= 2) await conn.write(STREAM);
    if (i % 4 === 3) {
      const buf = new Uint8Array(16);
      const n = await conn.read(buf); // only the first bytes of the head: the rest stays unread
      if (n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 200")) {
        streams++;
      }
    }
  } catch {
    // Refused or reset by the server: still dropped below.
  }
}));
for (const conn of conns) {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}
const connected = conns.filter((c) => c !== undefined).length;
console.log(JSON.stringify({ connected, failed: count - connected, streams }));

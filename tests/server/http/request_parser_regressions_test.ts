import assert from "node:assert/strict";
import { HttpError } from "../../../server/http/http_error.ts";
import { parseRequestHead } from "../../../server/http/request_parser.ts";
import { serve } from "../../../server/server.ts";
import { latin1Bytes } from "../../_util/request_fuzzer.ts";
import { REQUEST_REGRESSIONS } from "./_request_regressions.ts";

function outcome(bytes: Uint8Array): number | "head" | "more" {
  try {
    return parseRequestHead(bytes) === undefined ? "more" : "head";
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

Deno.test("parseRequestHead gives each regression input its pinned answer", () => {
  for (const r of REQUEST_REGRESSIONS) {
    assert.equal(outcome(latin1Bytes(r.input)), r.expect, r.name);
  }
});

Deno.test("parseRequestHead never answers differently when a regression input arrives byte by byte", () => {
  for (const r of REQUEST_REGRESSIONS) {
    const bytes = latin1Bytes(r.input);
    // Every prefix needs more bytes or gets the same error: never a different status, never a throw.
    for (let cut = 0; cut < bytes.length; cut += Math.max(1, bytes.length >> 6)) {
      const got = outcome(bytes.subarray(0, cut));
      assert.ok(got === "more" || got === r.expect, `${r.name}: prefix ${cut} gave ${got}`);
    }
  }
});

Deno.test("the server answers each malformed regression input with its status and closes", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  server.route("GET", "/", () => ({ status: 200, body: "ok\n" }));
  for (const r of REQUEST_REGRESSIONS) {
    if (typeof r.expect !== "number") continue;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      const bytes = latin1Bytes(r.input);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      await conn.closeWrite();
      let text = "";
      const buf = new Uint8Array(4096);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${r.expect} `), r.name);
      assert.match(text, /\r\nConnection: close\r\n/, r.name);
    } finally {
      conn.close();
    }
  }
  assert.equal(server.stats.connectionsClosed["bad-request"], server.stats.accepted);
});

import assert from "node:assert/strict";
import { channelsFromQuery } from "../../../server/hub/channels.ts";
import { HttpError } from "../../../server/http/http_error.ts";

function status(query: string, max = 32): number {
  try {
    channelsFromQuery(new URLSearchParams(query), max);
  } catch (err) {
    assert.ok(err instanceof HttpError);
    return err.status;
  }
  return 200;
}

Deno.test("channelsFromQuery reads repeated and comma-separated channels without duplicates", () => {
  assert.deepEqual(
    channelsFromQuery(new URLSearchParams("channel=a&channel=b,c&channel=a"), 32),
    ["a", "b", "c"],
  );
});

Deno.test("channelsFromQuery answers 400 for no channel, a bad name, or too many", () => {
  assert.equal(status(""), 400);
  assert.equal(status("channel="), 400);
  assert.equal(status("channel=a%20b"), 400);
  assert.equal(status("channel=a:b"), 400);
  assert.equal(status("channel=" + "x".repeat(129)), 400);
  assert.equal(status("channel=a&channel=b&channel=c", 2), 400);
  assert.equal(status("channel=a&channel=b&channel=a", 2), 200);
});

import assert from "node:assert/strict";
import { createLineLogger, isoTime } from "../../../server/hub/line_logger.ts";

Deno.test("isoTime formats like Date.toISOString, across leap years and days' ends", () => {
  const samples = [0, 951_782_400_000, 951_868_799_999, 1_709_164_800_000, 4_102_444_799_999];
  for (let ms = 0; ms < 4_200_000_000_000; ms += 7_654_321_987) samples.push(ms);
  for (const ms of samples) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});

/** A logger whose outputs are collected as text. */
function collecting(options: { maxBatchBytes?: number; quiet?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const decoder = new TextDecoder();
  const sink = (to: string[]) => ({
    writeSync(p: Uint8Array): number {
      to.push(decoder.decode(p));
      return p.length;
    },
  });
  const log = createLineLogger({ ...options, stdout: sink(out), stderr: sink(err) });
  return { log, out, err };
}

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

Deno.test("line logger writes one line per record: time, level, message, fields as k=v", () => {
  const { log, out } = collecting();
  log("info", "stream opened", {
    session: 7,
    peer: "127.0.0.1:40000",
    skipped: undefined,
    tagged: false,
    note: 'say "hi"\n',
    city: "Zürich ✓",
  });
  log.flush();
  const lines = out.join("").split("\n");
  assert.equal(lines.length, 2);
  assert.equal(lines[1], "");
  assert.match(lines[0], STAMP);
  assert.equal(
    lines[0].replace(STAMP, ""),
    'INFO  stream opened session=7 peer="127.0.0.1:40000" tagged=false ' +
      'note="say \\"hi\\"\\n" city="Zürich ✓"',
  );
});

Deno.test("line logger batches info lines, sends a warning at once after them, to stderr", () => {
  const { log, out, err } = collecting();
  log("info", "first"); // After a quiet spell: at once.
  assert.equal(out.length, 1);
  log("info", "second"); // Batched.
  log("debug", "third");
  assert.equal(out.length, 1);
  log("warn", "careful", { limit: 3 });
  assert.match(out.join(""), /INFO {2}first\n.*INFO {2}second\n.*DEBUG third\n$/);
  assert.equal(err.length, 1);
  assert.match(err[0], /WARN {2}careful limit=3\n$/);
  log.flush();
});

Deno.test("line logger writes a batch when it is full, and a line longer than the batch whole", () => {
  const { log, out } = collecting({ maxBatchBytes: 1024 });
  log("info", "warm-up");
  for (let i = 0; i < 100; i++) log("info", "line", { i, pad: "x".repeat(40) });
  const long = "é".repeat(5000);
  log("info", "long", { value: long });
  log.flush();
  const text = out.join("");
  const lines = text.split("\n").slice(0, -1);
  assert.equal(lines.length, 102);
  for (let i = 0; i < 100; i++) {
    assert.ok(lines[i + 1].endsWith(` line i=${i} pad="${"x".repeat(40)}"`));
  }
  assert.ok(lines[101].endsWith(` long value="${long}"`));
  assert.ok(out.length > 3, "several writes, none over the batch size but the long line's");
});

Deno.test("line logger drops info and debug when quiet", () => {
  const { log, out, err } = collecting({ quiet: true });
  log("info", "dropped");
  log("debug", "dropped");
  log("error", "kept", { error: "boom" });
  log.flush();
  assert.equal(out.join(""), "");
  assert.match(err.join(""), /ERROR kept error="boom"\n$/);
});

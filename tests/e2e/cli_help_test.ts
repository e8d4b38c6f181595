/**
 * Every program a user runs (main.ts, the examples, the benchmark tools)
 * answers `--help` with its usage and exit code 0, and an unknown flag with
 * one line on stderr that names the flag, exit code 2 and no stack trace.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** main.ts, every example, and every benchmark tool (files starting with `_` are modules). */
function runnableFiles(): string[] {
  const files = ["main.ts"];
  for (const dir of ["examples", "bench"]) {
    for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
      if (e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_")) {
        files.push(`${dir}/${e.name}`);
      }
    }
  }
  return files.sort();
}

async function run(file: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("the runnable files are main.ts, the examples and the bench tools", () => {
  const files = runnableFiles();
  assert.ok(files.includes("main.ts"));
  assert.ok(files.includes("examples/esp_idf_sse.ts"));
  assert.ok(files.includes("bench/run.ts"));
  assert.ok(files.length >= 11, files.join(" "));
});

for (const file of runnableFiles()) {
  Deno.test(`${file} --help exits 0 and prints its usage and flags`, async () => {
    const { code, stdout, stderr } = await run(file, ["--help"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Usage: /m);
    assert.match(stdout, /^ +-h, --help /m);
    assert.equal(stderr, "");
  });

  Deno.test(`${file} --no-such-flag exits 2 with one line naming it`, async () => {
    const { code, stdout, stderr } = await run(file, ["--no-such-flag"]);
    assert.equal(code, 2, stderr);
    assert.equal(stdout, "");
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], /^\w+: unknown flag --no-such-flag\b/);
    assert.match(lines[0], /--help/);
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  });
}

/**
 * The `--help` text of `main.ts`, as a user gets it (a real process).
 *
 * @module
 */

import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Runs `deno run -A main.ts --help` and returns what it printed (it must exit 0). */
export async function mainHelp(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  return new TextDecoder().decode(out.stdout);
}

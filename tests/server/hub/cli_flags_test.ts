import assert from "node:assert/strict";
import { type CliSpec, FlagError, parseFlags, usageText } from "../../../server/hub/cli_flags.ts";

const SPEC = {
  name: "prog",
  usage: "prog [flags] URL",
  description: "Does a thing.",
  positionals: [{ name: "URL", help: "where" }],
  flags: {
    port: { type: "integer", default: 8080, max: 65535, help: "TCP port" },
    rate: { type: "number", min: 0.5, help: "events/s" },
    mode: { type: "string", choices: ["fast", "slow"], default: "fast", help: "how" },
    peer: { type: "string", multiple: true, help: "a peer" },
    verbose: { type: "boolean", short: "v", help: "say more" },
  },
} as const satisfies CliSpec;

function refused(args: string[], re: RegExp): void {
  assert.throws(() => parseFlags(SPEC, args), (err: unknown) => {
    assert.ok(err instanceof FlagError);
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("parseFlags returns typed values and defaults", () => {
  const { help, values, positionals } = parseFlags(SPEC, [
    "--port=0",
    "--rate",
    "2.5",
    "--peer",
    "a",
    "--peer",
    "b",
    "-v",
    "http://x/",
  ]);
  assert.equal(help, false);
  assert.deepEqual(
    { ...values },
    { port: 0, rate: 2.5, mode: "fast", peer: ["a", "b"], verbose: true },
  );
  assert.deepEqual(positionals, ["http://x/"]);
  const defaults = parseFlags(SPEC, ["u"]).values;
  assert.deepEqual(
    { ...defaults },
    { port: 8080, rate: undefined, mode: "fast", peer: [], verbose: false },
  );
});

Deno.test("parseFlags reports --help without checking the other flags", () => {
  assert.equal(parseFlags(SPEC, ["--port", "x", "-h"]).help, true);
});

Deno.test("parseFlags refuses bad flags with one line naming the flag", () => {
  refused(["--no-such-flag", "u"], /^unknown flag --no-such-flag$/);
  refused(["-x", "u"], /^unknown flag -x$/);
  refused(["u", "--port"], /^--port needs a value$/);
  refused(["--port", "--rate", "1", "u"], /^--port needs a value/);
  refused(["--verbose=yes", "u"], /^--verbose takes no value$/);
  refused(["--port", "abc", "u"], /^--port must be an integer from 0 to 65535: received "abc"$/);
  refused(["--port", "1.5", "u"], /^--port must be an integer/);
  refused(["--port", "65536", "u"], /^--port must be an integer from 0 to 65535/);
  refused(["--rate", "0.1", "u"], /^--rate must be a number >= 0.5: received "0.1"$/);
  refused(["--rate", "", "u"], /^--rate must be a number/);
  refused(["--mode", "odd", "u"], /^--mode must be fast or slow: received "odd"$/);
  refused([], /^missing argument URL$/);
  refused(["u", "v"], /^unexpected argument "v"$/);
});

Deno.test("usageText lists every flag, its default and the help flag", () => {
  const text = usageText(SPEC);
  assert.match(text, /^prog: Does a thing\.\n\nUsage: prog \[flags\] URL\n/);
  for (const flag of ["--port", "--rate", "--mode", "--peer", "-v, --verbose", "-h, --help"]) {
    assert.ok(text.includes(`  ${flag}`), flag);
  }
  assert.match(text, /--port <v> +TCP port \(default 8080\)/);
  assert.match(text, /--mode <v> +how \(fast \| slow, default fast\)/);
});

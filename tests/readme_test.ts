import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

Deno.test("README's flag table lists every flag of main.ts --help", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("main.ts", ROOT).pathname, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const help = new TextDecoder().decode(out.stdout);
  const flags = [...help.matchAll(/^\s+(?:-\w, )?--([a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length > 20, `found ${flags.length} flags in --help`);
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const missing = flags.filter((f) => !readme.includes(`\`--${f}\``));
  assert.deepEqual(missing, [], "flags missing from README.md");
});

Deno.test("README's quick start is the two npx commands and .ci/run runs the README's test task", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  assert.match(readme, /npx -y deno@2\.9\.6 task start/);
  assert.match(readme, /npx -y deno@2\.9\.6 task test/);
  const ci = await Deno.readTextFile(new URL(".ci/run", ROOT));
  assert.match(ci, /deno task test/);
  assert.match(ci, /npm install -g deno@2\.9\.6/);
});

import assert from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url);

Deno.test("importing the Redis entry point loads no npm package (the client loads on connect)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-npm",
      "--no-lock",
      `const m = await import(${JSON.stringify(new URL("queue/redis/mod.ts", ROOT).href)});` +
      "console.log(typeof m.RedisEngine.connect);",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "function");
});

Deno.test("the event feed interface imports nothing, and only the engine's client file names the npm client", async () => {
  const feed = await Deno.readTextFile(new URL("queue/event_feed.ts", ROOT));
  assert.doesNotMatch(feed, /^\s*import\s/m);
  const naming: string[] = [];
  for await (const entry of Deno.readDir(new URL("queue/redis/", ROOT))) {
    if (!entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`queue/redis/${entry.name}`, ROOT));
    if (/["']npm:/.test(text)) naming.push(entry.name);
  }
  assert.deepEqual(naming, ["_client.ts"]);
});

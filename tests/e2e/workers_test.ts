/**
 * `--workers N`: the hub runs N copies of itself on one port and restarts a
 * copy that dies; every copy serves the shared channels (Redis).
 */

import { freePort } from "../_util/free_port.ts";
import assert from "node:assert/strict";
import { redisServerAvailable, startRedisServer } from "../_util/redis_server.ts";
import { within } from "../_util/within.ts";
import { publish, request } from "./_hub.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const noRedis = !redisServerAvailable();

Deno.test({
  name:
    "--workers 2 runs two copies on one port, restarts one killed with SIGKILL, and stops them all",
  ignore: noRedis,
  async fn() {
    await using redis = await startRedisServer();
    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--redis",
        redis.url,
        "--workers",
        "2",
        "--port",
        String(port),
        "--hostname",
        "127.0.0.1",
        "--keepalive",
        "0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const decoder = new TextDecoder();
    // Info lines go to stdout, warnings (a worker's exit) to stderr: read both.
    const read = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) out += decoder.decode(chunk);
    };
    const reading = Promise.all([read(child.stdout), read(child.stderr)]);
    const until = async (cond: () => boolean, what: string) => {
      await within(
        (async () => {
          while (!cond()) await new Promise((r) => setTimeout(r, 50));
        })(),
        what,
        30_000,
      );
    };
    try {
      await until(() => (out.match(/listening url=/g) ?? []).length >= 2, "two copies listening");
      const pids = [...out.matchAll(/worker started worker=\d+ pid=(\d+)/g)].map((m) =>
        Number(m[1])
      );
      assert.equal(pids.length, 2);
      // Both copies answer on the one port, and share the channels.
      assert.equal((await request(port, "GET", "/status")).status, 200);
      assert.equal((await publish(port, "/events/a", "x")).status, 202);

      Deno.kill(pids[0], "SIGKILL");
      await until(() => /worker exited; restarting worker=1/.test(out), "exit noticed");
      await until(
        () => (out.match(/worker started worker=1 /g) ?? []).length === 2,
        "copy 1 restarted",
      );
      await until(() => (out.match(/listening url=/g) ?? []).length >= 3, "restarted copy listens");
      assert.equal((await request(port, "GET", "/status")).status, 200);
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      await reading;
      assert.equal(status.code, 0, out);
      assert.match(out, /stopping workers/);
    }
  },
});

Deno.test("--workers without --redis, or with --mqtt, is refused naming both flags", async () => {
  for (
    const args of [["--workers", "2"], [
      "--workers",
      "2",
      "--redis",
      "redis://127.0.0.1:9",
      "--mqtt",
      "mqtt://127.0.0.1:9",
    ]]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    const err = new TextDecoder().decode(out.stderr);
    assert.match(err, /--workers (needs --redis|conflicts with --mqtt)/, err);
  }
});

/**
 * A new user's first run works offline: with an empty Deno cache (a fresh
 * `DENO_DIR`) and an npm registry that cannot be reached, `deno task start`,
 * `deno run main.ts` and every example server start and answer HTTP. Nothing
 * on their import graphs may come from npm (`node:` modules need no download),
 * and `deno task` must find no npm package to install in deno.json.
 *
 * Deadlines are generous and only guard against hangs; nothing is timed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { within } from "../_util/within.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** A fresh cache compiles everything once: allow for a slow, busy machine. */
const DEADLINE_MS = 120_000;
/** Nothing listens on the discard port of loopback: every npm request is refused. */
const UNREACHABLE_REGISTRY = "http://127.0.0.1:9/";

const LISTENING = /listening.*?http:\/\/[^\s"\/]+:(\d+)\//;

/** PIDs of the processes below `pid` (the `deno run` that `deno task` starts), deepest first. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  let tasks: string[];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => e.name);
  } catch {
    return found; // Exited, or not Linux.
  }
  for (const tid of tasks) {
    let children = "";
    try {
      children = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/children`);
    } catch {
      continue;
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      found.push(...descendants(child), child);
    }
  }
  return found;
}

/** Runs `args` with an empty cache and no registry; yields the port it listens on, then stops it. */
async function startOffline(args: string[]): Promise<{
  port: number;
  output: () => string;
  stop: () => Promise<void>;
}> {
  const denoDir = await Deno.makeTempDir({ prefix: "sluice-offline-deno-dir-" });
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { DENO_DIR: denoDir, NPM_CONFIG_REGISTRY: UNREACHABLE_REGISTRY, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const found = Promise.withResolvers<number>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const m = text.match(LISTENING);
      if (m) found.resolve(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then((s) => {
    found.reject(new Error(`exited with ${s.code} before listening; output:\n${text}`));
    return s;
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Only the processes this test started: the child and what it spawned.
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await within(status, `${args.join(" ")} to exit`, DEADLINE_MS);
    await within(pumps, "its output to end", DEADLINE_MS);
    await Deno.remove(denoDir, { recursive: true }).catch(() => {});
  };
  try {
    const port = await within(found.promise, `${args.join(" ")} to listen`, DEADLINE_MS);
    return { port, output: () => text, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** GETs `path` until the server answers; returns the status and body. */
async function getWhenUp(port: number, path: string): Promise<{ status: number; body: string }> {
  for (;;) {
    let client: RawClient;
    try {
      client = await RawClient.connect(port);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    await using c = client;
    await c.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const res = await c.readResponse();
    return { status: res.status, body: res.body };
  }
}

/** The programs a new user runs: each command, the page to ask, and what it must answer. */
const PROGRAMS: { name: string; args: string[]; path: string; status: number }[] = [
  {
    name: "deno task start",
    args: ["task", "start", "--port", "0", "--hostname", "127.0.0.1"],
    path: "/status",
    status: 200,
  },
  {
    name: "deno run -A main.ts",
    args: ["run", "-A", "main.ts", "--port", "0", "--hostname", "127.0.0.1"],
    path: "/status",
    status: 200,
  },
  // Every example is a server; each answers its own page.
  {
    name: "examples/async_event_source.ts",
    args: [
      "run",
      "--allow-net",
      "examples/async_event_source.ts",
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
    ],
    path: "/events",
    status: 401,
  },
  {
    name: "examples/esp_idf_sse.ts",
    args: [
      "run",
      "--allow-net",
      "examples/esp_idf_sse.ts",
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
    ],
    path: "/no-such-page",
    status: 404,
  },
  {
    name: "examples/rest_subscribe.ts",
    args: [
      "run",
      "--allow-net",
      "examples/rest_subscribe.ts",
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
    ],
    path: "/rest/events/subscribe",
    status: 200,
  },
];

/** Examples that are not servers: the device simulator is an MQTT client and needs its package. */
const NOT_SERVERS = new Set(["mqtt_device_sim.ts"]);

Deno.test("every example server is in the offline start test", () => {
  const examples = [...Deno.readDirSync(`${ROOT}examples`)]
    .filter((e) => e.isFile && e.name.endsWith(".ts") && !NOT_SERVERS.has(e.name))
    .map((e) => `examples/${e.name}`)
    .sort();
  assert.deepEqual(examples, PROGRAMS.map((p) => p.name).filter((n) => n.startsWith("examples/")));
});

for (const program of PROGRAMS) {
  Deno.test(`${program.name} starts with an empty Deno cache and no npm registry`, async () => {
    const proc = await startOffline(program.args);
    try {
      const res = await within(getWhenUp(proc.port, program.path), "an answer", DEADLINE_MS);
      assert.equal(res.status, program.status, `GET ${program.path}:\n${proc.output()}`);
      if (program.path === "/status") assert.equal(typeof JSON.parse(res.body), "object");
      assert.doesNotMatch(proc.output(), /npm|Download/i, "nothing was fetched");
    } finally {
      await proc.stop();
    }
  });
}

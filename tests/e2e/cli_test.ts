import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { RawClient } from "../_util/raw_client.ts";
import { SseParser } from "../_util/sse_parser.ts";
import { within } from "../_util/within.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A child process whose output lines (stdout and stderr) are collected as they come. */
class Proc implements AsyncDisposable {
  readonly lines: string[] = [];
  stdout = "";
  stderr = "";
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #readers: Promise<void>;
  #waiters = new Set<() => void>();
  #exited = false;

  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(cmd, {
      args,
      env,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#readers = Promise.all([
      this.#read(this.#child.stdout, "stdout"),
      this.#read(this.#child.stderr, "stderr"),
    ]).then(() => {});
  }

  /** Runs `deno run -A main.ts ...args`. */
  static cli(args: string[], env: Record<string, string> = {}): Proc {
    return new Proc(Deno.execPath(), ["run", "-A", MAIN, ...args], env);
  }

  async #read(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr"): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this[which] += text;
      partial += text;
      const parts = partial.split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters) w();
    }
    if (partial) this.lines.push(partial);
    for (const w of this.#waiters) w();
  }

  /** Waits until `pred` holds for the output collected so far. */
  async until<T>(pred: () => T | undefined | false, what: string): Promise<T> {
    for (;;) {
      const v = pred();
      if (v) return v;
      if (this.#exited && (await this.#settled())) {
        const again = pred();
        if (again) return again;
        throw new Error(`process exited before ${what}; output:\n${this.lines.join("\n")}`);
      }
      await within(
        new Promise<void>((resolve) => {
          const w = () => {
            this.#waiters.delete(w);
            resolve();
          };
          this.#waiters.add(w);
          this.status.then(w);
        }),
        what,
      );
    }
  }

  /** Waits for a line matching `re` (counting from line `from`). */
  line(re: RegExp, from = 0): Promise<RegExpMatchArray> {
    return this.until(() => {
      for (const l of this.lines.slice(from)) {
        const m = l.match(re);
        if (m) return m;
      }
      return undefined;
    }, `a line matching ${re}`);
  }

  async #settled(): Promise<true> {
    await this.#readers;
    return true;
  }

  /** Sends a signal (if still running), then waits for the exit and the output. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // Exited meanwhile.
      }
    }
    const status = await within(this.status, "process exit");
    await within(this.#readers, "process output");
    return status;
  }

  /** Waits for the process to exit by itself. */
  async done(): Promise<Deno.CommandStatus> {
    const status = await within(this.status, "process exit");
    await within(this.#readers, "process output");
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL").catch(() => {});
  }
}

/** Starts the hub on a free port of 127.0.0.1 and waits for its `listening` line. */
async function startCli(args: string[] = [], env: Record<string, string> = {}) {
  const proc = Proc.cli(["--hostname", "127.0.0.1", "--port", "0", ...args], env);
  const m = await proc.line(/ listening url="http:\/\/127\.0\.0\.1:(\d+)\/"/);
  return { proc, port: Number(m[1]) };
}

const hasCurl = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output()
  .then((o) => o.success, () => false);

Deno.test("--help exits 0 and lists the flags with their environment variables", async () => {
  const proc = Proc.cli(["--help"]);
  const status = await proc.done();
  assert.equal(status.code, 0);
  for (const s of ["--port", "SLUICE_PORT", "--max-clients", "SLUICE_MAX_CLIENTS", "--heartbeat"]) {
    assert.ok(proc.stdout.includes(s), `help mentions ${s}`);
  }
});

Deno.test("--version exits 0 and prints the version of deno.json", async () => {
  const proc = Proc.cli(["--version"]);
  const status = await proc.done();
  assert.equal(status.code, 0);
  assert.equal(proc.stdout.trim(), `sluice ${denoJson.version}`);
});

Deno.test("a bad flag value exits 2 with a readable message", async () => {
  const cases: [string[], RegExp][] = [
    [["--port", "abc"], /--port must be an integer >= 0: received "abc"/],
    [["--max-clients", "0"], /--max-clients must be an integer >= 1: received "0"/],
    [["--heartbeat=-1"], /--heartbeat must be a number >= 0: received "-1"/],
    [["--reclaim-after", "many"], /--reclaim-after must be an integer >= 0: received "many"/],
    [["--watch-streams=-3"], /--watch-streams must be an integer >= 0: received "-3"/],
    [["--no-such-flag"], /no-such-flag/],
  ];
  await Promise.all(cases.map(async ([args, re]) => {
    const proc = Proc.cli(args);
    const status = await proc.done();
    assert.equal(status.code, 2, args.join(" "));
    assert.match(proc.stderr, re);
    assert.match(proc.stderr, /Try --help/);
    assert.ok(!proc.stderr.includes("    at "), "no stack trace");
  }));
});

Deno.test({
  name: "curl -N subscribes and curl -X POST publishes an event that arrives",
  ignore: !hasCurl,
  fn: async () => {
    const { proc, port } = await startCli();
    await using _hub = proc;
    const url = `http://127.0.0.1:${port}/events/news`;
    const from = proc.lines.length;
    await using sub = new Proc("curl", ["-sS", "-N", "--max-time", "20", url]);
    await proc.line(/ stream opened .*path="\/events\/news"/, from);
    const post = new Proc("curl", [
      "-sS",
      "-X",
      "POST",
      "--data-binary",
      "hello\nworld",
      "-H",
      "Content-Type: text/plain",
      "-w",
      "\n%{http_code}",
      `${url}?event=greeting`,
    ]);
    assert.equal((await post.done()).code, 0, post.stderr);
    assert.match(post.stdout, /\n202$/);
    const parser = new SseParser();
    await sub.until(() => {
      const p = new SseParser();
      p.feed(sub.stdout);
      return p.events.length > 0;
    }, "the event on curl's output");
    parser.feed(sub.stdout);
    assert.equal(parser.events[0].type, "greeting");
    assert.equal(parser.events[0].data, "hello\nworld");
    await sub.stop();
    // The hub notices the client left.
    await proc.line(/ stream closed .*reason="client-closed"/, from);
    assert.equal((await proc.stop()).code, 0);
  },
});

Deno.test("--heartbeat 1 feeds the heartbeat channel", async () => {
  const { proc, port } = await startCli(["--heartbeat", "1"]);
  await using _hub = proc;
  const { client, head, parser } = await within(
    RawClient.stream(port, "/events/heartbeat"),
    "subscribe",
  );
  await using _c = client;
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), "text/event-stream");
  await within(client.readEvents(parser, 1), "a heartbeat");
  assert.equal(parser.events[0].type, "heartbeat");
  const body = JSON.parse(parser.events[0].data);
  assert.equal(typeof body.uptime, "number");
  assert.equal(typeof body.time, "string");
});

Deno.test("SLUICE_MAX_CLIENTS=1 is honoured and each connect, disconnect, reject logs one line", async () => {
  const { proc, port } = await startCli([], { SLUICE_MAX_CLIENTS: "1" });
  await using _hub = proc;
  const first = await within(RawClient.stream(port, "/events/a"), "first stream");
  assert.equal(first.head.status, 200);
  const peerA = `127.0.0.1:${(first.client.conn.localAddr as Deno.NetAddr).port}`;
  const opened = await proc.line(/ stream opened session=(\d+) peer="([^"]+)"/);
  assert.equal(opened[2], peerA);
  const session = opened[1];

  await using second = await RawClient.connect(port);
  const peerB = `127.0.0.1:${(second.conn.localAddr as Deno.NetAddr).port}`;
  await second.send("GET /events/a HTTP/1.1\r\nHost: x\r\n\r\n");
  const res = await within(second.readResponse(), "503");
  assert.equal(res.statusLine, "HTTP/1.1 503 Service Unavailable");
  const rejected = await proc.line(/ stream rejected.* peer="([^"]+)".* reason="rejected"/);
  assert.equal(rejected[1], peerB);

  first.client.close();
  const closed = await proc.line(/ stream closed session=(\d+) peer="([^"]+)" reason="([^"]+)"/);
  assert.deepEqual([closed[1], closed[2], closed[3]], [session, peerA, "client-closed"]);

  assert.equal((await proc.stop()).code, 0);
  const count = (re: RegExp) => proc.lines.filter((l) => re.test(l)).length;
  assert.equal(count(/ stream opened /), 1);
  assert.equal(count(/ stream rejected/), 1);
  assert.equal(count(/ stream closed /), 1);
});

Deno.test("SIGTERM ends the streams and exits 0", async () => {
  const { proc, port } = await startCli();
  await using _hub = proc;
  const { client, head } = await within(RawClient.stream(port, "/events/a"), "stream");
  await using _c = client;
  assert.equal(head.status, 200);
  await proc.line(/ stream opened /);
  const status = await proc.stop("SIGTERM");
  assert.equal(status.code, 0);
  await within(client.readToEnd(), "end of stream");
  assert.equal(client.eof, true);
  assert.ok(proc.lines.some((l) => / shutting down signal="SIGTERM"/.test(l)));
  assert.ok(proc.lines.some((l) => / stream closed .*reason="shutdown"/.test(l)));
});

Deno.test("--subscribe-token alone implies --auth bearer, logs it, and the token is required", async () => {
  const { proc, port } = await startCli(["--subscribe-token", "t0k"]);
  await using _hub = proc;
  await proc.line(/ INFO +implied --auth bearer by --subscribe-token$/);
  const refused = await within(RawClient.stream(port, "/events/a"), "stream without token");
  await using _r = refused.client;
  assert.equal(refused.head.status, 401);
  const admitted = await within(
    RawClient.stream(port, "/events/a", { Authorization: "Bearer t0k" }),
    "stream with token",
  );
  await using _a = admitted.client;
  assert.equal(admitted.head.status, 200);
  assert.equal(admitted.head.headers.get("content-type"), "text/event-stream");
});

Deno.test("--demo-min-interval implies --demo, logs it, and the sensors publish", async () => {
  const { proc, port } = await startCli([
    "--demo-min-interval",
    "0.05",
    "--demo-max-interval",
    "0.1",
  ]);
  await using _hub = proc;
  await proc.line(/ INFO +implied --demo by --demo-min-interval$/);
  const { client, head, parser } = await within(
    RawClient.stream(port, "/events/sensors"),
    "stream",
  );
  await using _c = client;
  assert.equal(head.status, 200);
  await within(client.readEvents(parser, 1), "a sensor event");
  assert.match(parser.events[0].data, /"sensor/);
});

Deno.test("flags that cannot go together exit 2 with one line naming both", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--auth", "basic", "--user", "a:b", "--subscribe-token", "t0k"],
      /--subscribe-token conflicts with --auth basic/,
    ],
    [["--subscribe-token", "t0k", "--user", "a:b"], /--subscribe-token conflicts with --user/],
    [["--auth", "bearer", "--users-file", "/x"], /--users-file conflicts with --auth bearer/],
  ];
  await Promise.all(cases.map(async ([args, re]) => {
    const proc = Proc.cli(args);
    const status = await proc.done();
    assert.equal(status.code, 2, args.join(" "));
    assert.match(proc.stderr, re);
    assert.equal(proc.stderr.trim().split("\n").length, 1, proc.stderr);
  }));
  const proc = Proc.cli(["--demo-min-interval", "2"], { SLUICE_DEMO: "0" });
  assert.equal((await proc.done()).code, 2);
  assert.match(proc.stderr, /--demo-min-interval conflicts with SLUICE_DEMO=0/);
});

/**
 * End-to-end tests of the examples: each runs as a subprocess on a free port
 * and is driven by real clients, `curl` (tests that need it are ignored when
 * it is missing) and the raw socket client. Deadlines only guard against hangs.
 *
 * A second client address: on Linux every 127.0.0.0/8 address is local, but a
 * connection *to* 127.0.0.2 still leaves *from* 127.0.0.1, so the server would
 * see 127.0.0.1. `curl --interface 127.0.0.2` binds the source address, which
 * is what the server sees as the peer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { type ParsedEvent, SseParser } from "../_util/sse_parser.ts";

const ROOT = new URL("../../", import.meta.url);
/** Longest wait for any one thing to happen; only guards against hangs. */
const DEADLINE_MS = 20_000;

const HAS_CURL = await (async () => {
  try {
    const out = await new Deno.Command("curl", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
})();

/** Resolves `p`, or rejects when `ms` pass first; the timer never outlives the call. */
async function within<T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An example program running as a subprocess, its output collected line by line. */
class Example implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  port = 0;
  #changed = Promise.withResolvers<void>();
  #openPipes = 2;
  readonly #pumps: Promise<void>[];
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;

  private constructor(child: Deno.ChildProcess, stdin: boolean) {
    this.child = child;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
    if (stdin) this.#stdin = child.stdin.getWriter();
  }

  /** Starts `examples/<name>.ts --port 0 ...args` and waits for its listening line. */
  static async start(
    name: string,
    args: string[],
    options: { stdin?: boolean } = {},
  ): Promise<Example> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", `examples/${name}.ts`, "--port", "0", ...args],
      cwd: ROOT,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const ex = new Example(child, options.stdin === true);
    try {
      const m = await ex.waitForLine(/listening on http:\/\/\S+:(\d+)\//);
      ex.port = Number(m[1]);
    } catch (err) {
      await ex[Symbol.asyncDispose]();
      throw err;
    }
    return ex;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
      this.#changed.resolve();
      this.#changed = Promise.withResolvers<void>();
    }
    if (rest) this.lines.push(rest);
    this.#openPipes--;
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /** Waits for an output line matching `re`; returns the match. */
  async waitForLine(re: RegExp): Promise<RegExpMatchArray> {
    const search = async () => {
      let i = 0;
      for (;;) {
        for (; i < this.lines.length; i++) {
          const m = this.lines[i].match(re);
          if (m) return m;
        }
        if (this.#openPipes === 0) throw new Error(`output ended before a line matching ${re}`);
        await this.#changed.promise;
      }
    };
    return await within(search(), `${re}\n--- output:\n${this.lines.join("\n")}`);
  }

  /** All output lines matching `re`, so far. */
  matches(re: RegExp): RegExpMatchArray[] {
    return this.lines.map((l) => l.match(re)).filter((m) => m !== null);
  }

  /** Writes text to the example's stdin. */
  async write(text: string): Promise<void> {
    await this.#stdin!.write(new TextEncoder().encode(text));
  }

  /** Stops the example by its PID (SIGTERM, then SIGKILL), and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#stdin) await this.#stdin.close().catch(() => {});
    try {
      this.child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    try {
      await within(this.child.status, "example exit after SIGTERM", 5_000);
    } catch {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
      await this.child.status;
    }
    await Promise.all(this.#pumps);
  }
}

/** Runs curl to completion (always with `--max-time`). */
async function curl(args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "15", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

/** Runs `curl -N` on a stream until `done(text)` holds, then stops it by PID. */
async function curlStream(args: string[], done: (text: string) => boolean): Promise<string> {
  const child = new Deno.Command("curl", {
    args: ["-sS", "-N", "--max-time", "15", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let text = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await within(
      (async () => {
        while (!done(text)) {
          const { value, done: eof } = await reader.read();
          if (eof) break;
          text += value;
        }
      })(),
      "curl stream",
    );
  } finally {
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
  }
  return text;
}

function parse(text: string): SseParser {
  const parser = new SseParser();
  parser.feed(text);
  return parser;
}

async function get(port: number, target: string) {
  await using c = await RawClient.connect(port);
  await c.send(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  return await c.readResponse();
}

/** Reads events from a stream until `pred(events)` holds. */
async function readEventsUntil(
  client: RawClient,
  parser: SseParser,
  pred: (events: ParsedEvent[]) => boolean,
): Promise<void> {
  await within(
    (async () => {
      for (let n = parser.events.length + 1; !pred(parser.events); n = parser.events.length + 1) {
        await client.readEvents(parser, n);
      }
    })(),
    "stream events",
  );
}

// ------------------------------------------------------ async_event_source.ts

Deno.test({
  name: "async_event_source: Digest-protected /events sends hello!, retry 1000 and myevent",
  ignore: !HAS_CURL,
  async fn(t) {
    await using ex = await Example.start("async_event_source", ["--interval", "0.2"]);
    const url = `http://127.0.0.1:${ex.port}/events`;

    await t.step("admin/admin gets hello! with an id and retry 1000, then myevent", async () => {
      const text = await curlStream(
        ["--digest", "-u", "admin:admin", url],
        (s) => s.includes("data: my event content\n\n"),
      );
      const parser = parse(text);
      assert.equal(parser.retry, 1000);
      const [hello] = parser.events;
      assert.equal(hello.type, "message");
      assert.equal(hello.data, "hello!");
      assert.match(hello.lastEventId, /^[0-9]+$/);
      const mine = parser.events.find((e) => e.type === "myevent");
      assert.ok(mine, `no myevent in ${JSON.stringify(text)}`);
      assert.equal(mine.data, "my event content");
      assert.match(mine.lastEventId, /^[0-9]+$/);
    });

    await t.step("a wrong password gets 401", async () => {
      const code = await curl([
        "--digest",
        "-u",
        "admin:wrong",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
      ]);
      assert.equal(code, "401");
    });

    await t.step(
      "no credentials get 401 with a Digest challenge for realm My app name",
      async () => {
        const res = await get(ex.port, "/events");
        assert.equal(res.status, 401);
        assert.match(res.headers.get("www-authenticate") ?? "", /^Digest realm="My app name"/);
        assert.notEqual(res.headers.get("content-type"), "text/event-stream");
      },
    );

    await t.step("a reconnect with Last-Event-ID is logged with that id", async () => {
      const text = await curlStream(
        ["--digest", "-u", "admin:admin", "-H", "Last-Event-ID: 4242", url],
        (s) => s.includes("data: hello!"),
      );
      assert.match(text, /data: hello!/);
      await ex.waitForLine(/Client reconnected! Last message ID that it got is: 4242$/);
    });
  },
});

// --------------------------------------------------------- rest_subscribe.ts

interface State {
  sensor: string;
  state: number;
  prevState: number;
}

function stateOf(e: ParsedEvent): State | undefined {
  const msg = JSON.parse(e.data);
  if (msg.TYPE !== "STATE") return undefined;
  const keys = Object.keys(msg).filter((k) => k !== "TYPE");
  assert.equal(keys.length, 1, `one sensor per STATE event: ${e.data}`);
  assert.ok(keys[0] === "sensorA" || keys[0] === "sensorB", e.data);
  assert.deepEqual(Object.keys(msg[keys[0]]), ["state", "prevState"]);
  return { sensor: keys[0], ...msg[keys[0]] };
}

Deno.test("rest_subscribe: subscription URL, IP-bound streams, STATE and KEEP-ALIVE events", async (t) => {
  await using ex = await Example.start("rest_subscribe", [
    "--keepalive",
    "1",
    "--sensor-min",
    "0.05",
    "--sensor-max",
    "0.2",
  ]);
  const port = ex.port;

  await t.step("subscribe answers text/plain with http://<host>:<port>/rest/events/0", async () => {
    const res = await get(port, "/rest/events/subscribe");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(res.body, `http://127.0.0.1:${port}/rest/events/0`);
  });

  // Channel 0 stays listened to (so stays registered) for the rest of the test.
  const { client, head, parser } = await RawClient.stream(port, "/rest/events/0");
  await using _ = client;

  await t.step("the registering IP streams STATE changes and KEEP-ALIVE events", async () => {
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), "text/event-stream");
    await readEventsUntil(
      client,
      parser,
      (evs) =>
        evs.some((e) => e.data === `{"TYPE":"KEEP-ALIVE"}`) &&
        evs.filter((e) => e.data.includes(`"STATE"`)).length >= 4,
    );
    const last = new Map<string, number>();
    for (const e of parser.events) {
      assert.equal(e.type, "event");
      const s = stateOf(e);
      if (s === undefined) continue;
      assert.ok(Number.isInteger(s.state) && s.state >= 0 && s.state <= 65535, e.data);
      assert.notEqual(s.state, s.prevState, `only changes are broadcast: ${e.data}`);
      if (last.has(s.sensor)) assert.equal(s.prevState, last.get(s.sensor), "prevState chains");
      last.set(s.sensor, s.state);
    }
  });

  await t.step("unknown channels and paths get the Handle Not Found page", async () => {
    for (const target of ["/rest/events/8", "/rest/events/x", "/nothing?a=1"]) {
      const res = await get(port, target);
      assert.equal(res.status, 404, target);
      assert.match(res.body, /^Handle Not Found\n\nURI: /, target);
    }
  });

  await t.step({
    name: "another IP address gets 404 listing URI, method and arguments",
    ignore: !HAS_CURL,
    async fn() {
      const text = await curl([
        "--interface",
        "127.0.0.2",
        "-w",
        "\n%{http_code}",
        `http://127.0.0.1:${port}/rest/events/0?x=1`,
      ]);
      assert.equal(
        text,
        "Handle Not Found\n\nURI: /rest/events/0\nMethod: GET\nArguments: 1\n x: 1\n\n404",
      );
      await ex.waitForLine(/unregistered client with IP 127\.0\.0\.2 tries to listen on channel 0/);
    },
  });

  await t.step({
    name: "a channel registered from 127.0.0.2 streams to 127.0.0.2 and not to 127.0.0.1",
    ignore: !HAS_CURL,
    async fn() {
      const url = await curl([
        "--interface",
        "127.0.0.2",
        `http://127.0.0.1:${port}/rest/events/subscribe`,
      ]);
      assert.equal(url, `http://127.0.0.1:${port}/rest/events/1`);
      const res = await get(port, "/rest/events/1");
      assert.equal(res.status, 404);
      assert.match(res.body, /^Handle Not Found/);
      const text = await curlStream(
        ["--interface", "127.0.0.2", url],
        (s) => parse(s).events.length > 0,
      );
      const [first] = parse(text).events;
      assert.equal(first.type, "event");
      assert.match(first.data, /^\{"TYPE":"(STATE|KEEP-ALIVE)"/);
    },
  });
});

Deno.test("rest_subscribe: 8 channels; gone clients are removed at the next keep-alive", async () => {
  await using ex = await Example.start("rest_subscribe", [
    "--keepalive",
    "1",
    "--sensor-min",
    "5",
    "--sensor-max",
    "10",
  ]);
  const port = ex.port;
  const subscribe = () => get(port, "/rest/events/subscribe");
  const channelOf = (body: string) => Number(body.slice(body.lastIndexOf("/") + 1));

  for (let n = 0; n < 8; n++) {
    const res = await subscribe();
    assert.equal(res.status, 200, `subscription ${n + 1} of 8`);
    assert.equal(channelOf(res.body), n);
  }
  const ninth = await subscribe();
  assert.equal(ninth.status, 404, "the ninth subscription is refused");
  assert.match(ninth.body, /^Handle Not Found/);

  const gone = await RawClient.stream(port, "/rest/events/3");
  assert.equal(gone.head.status, 200);
  const stays = await RawClient.stream(port, "/rest/events/5");
  await using _ = stays.client;
  assert.equal(stays.head.status, 200);
  gone.client.close();

  // Every channel but 5 is freed: 3 left, the others never listened.
  for (const n of [0, 1, 2, 3, 4, 6, 7]) {
    await ex.waitForLine(new RegExp(`not listening on channel ${n}, remove subscription`));
  }
  assert.equal(ex.matches(/not listening on channel 5, remove/).length, 0);
  await readEventsUntil(
    stays.client,
    stays.parser,
    (evs) => evs.some((e) => e.data === `{"TYPE":"KEEP-ALIVE"}`),
  );

  const again: number[] = [];
  for (let n = 0; n < 7; n++) {
    const res = await subscribe();
    assert.equal(res.status, 200);
    again.push(channelOf(res.body));
  }
  assert.deepEqual(again, [0, 1, 2, 3, 4, 6, 7]);
  assert.equal((await subscribe()).status, 404, "channel 5 is still taken");
});

// ------------------------------------------------------------ esp_idf_sse.ts

Deno.test("esp_idf_sse: log lines as data events, 503 Server Busy, 400 Session Already Active", async (t) => {
  await using ex = await Example.start("esp_idf_sse", [
    "--max-clients",
    "2",
    "--tick",
    "0.2",
    "--stdin",
  ], { stdin: true });
  const port = ex.port;

  const first = await RawClient.stream(port, "/sse");
  await using _first = first.client;
  const second = await RawClient.stream(port, "/sse");

  await t.step("a stream receives the program's and stdin's log lines as data events", async () => {
    assert.equal(first.head.status, 200);
    assert.equal(first.head.headers.get("content-type"), "text/event-stream");
    await ex.write("hello from stdin\r\n");
    await readEventsUntil(
      first.client,
      first.parser,
      (evs) =>
        evs.some((e) => e.data === "hello from stdin") &&
        evs.some((e) => /^I \(\d+\) esp_idf_sse: tick \d+: 2\/2 clients/.test(e.data)),
    );
    for (const e of first.parser.events) {
      assert.equal(e.type, "message");
      assert.equal(e.lastEventId, "");
      assert.ok(e.data.length <= 120, "lines are cut to LOG_BUF_MAX_LINE_SIZE");
    }
  });

  await t.step("a third stream gets 503 Server Busy with Content-Length: 0", async () => {
    assert.equal(second.head.status, 200);
    await using third = await RawClient.connect(port);
    await third.send("GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const res = await third.readResponse();
    assert.equal(res.statusLine, "HTTP/1.1 503 Server Busy");
    assert.equal(res.headers.get("content-length"), "0");
    assert.equal(res.body, "");
  });

  await t.step("a second request on a stream socket gets 400 Session Already Active", async () => {
    await first.client.send("GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await within(
      first.client.readUntil((b) => b.includes("HTTP/1.1 400 Session Already Active\r\n")),
      "400 on the stream socket",
    );
  });

  await t.step("closing a stream frees its slot through the free callback", async () => {
    second.client.close();
    // The watcher's EOF (client-closed) or, when a log line was being written
    // as the client left, the failed write (write-error) ends it: either way once.
    await ex.waitForLine(/free_sse_ctx sse_socket: \d+ slot 1 \((client-closed|write-error)\)/);
    const { client, head } = await RawClient.stream(port, "/sse");
    await using _ = client;
    assert.equal(head.status, 200);
  });
});

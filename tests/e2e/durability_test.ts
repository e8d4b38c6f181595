import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { readEvents, subscribe, within } from "./_replay_util.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const N = 300;

/** The hub CLI as a child process, on a free port, with its log read in the background. */
async function startCli(historyFile: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      MAIN,
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
      "--keepalive",
      "0",
      "--history",
      "1000",
      "--history-file",
      historyFile,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  let onLine: (() => void) | undefined;
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      log += text;
      onLine?.();
    }
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  const port = await within(
    new Promise<number>((resolve, reject) => {
      onLine = () => {
        const m = /listening url="http:\/\/127\.0\.0\.1:([0-9]+)\//.exec(log);
        if (m) resolve(Number(m[1]));
      };
      child.status.then((s) => reject(new Error(`CLI exited (${s.code}): ${log}`)));
    }),
    "CLI listening",
  );
  return { child, port, reading, log: () => log };
}

/** Publishes through the HTTP API on one keep-alive connection; returns the acknowledged ids. */
async function publishAll(port: number, datas: string[]): Promise<string[]> {
  await using c = await RawClient.connect(port);
  const ids: string[] = [];
  for (const data of datas) {
    await c.send(
      `POST /events/orders HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${new TextEncoder().encode(data).length}\r\n\r\n${data}`,
    );
    const res = await within(c.readResponse(), "publish response");
    assert.equal(res.status, 202, res.body);
    ids.push(JSON.parse(res.body).id);
  }
  return ids;
}

Deno.test("durability: events acknowledged with 202 survive kill -9 and replay after restart; ids continue", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/history.db`;
  try {
    // First run: publish N events, then SIGKILL (no shutdown, no checkpoint).
    const first = await startCli(file);
    const datas = Array.from({ length: N }, (_, i) => `order ${i}`);
    const ids = await publishAll(first.port, datas);
    assert.equal(new Set(ids).size, N);
    for (let i = 1; i < N; i++) assert.ok(BigInt(ids[i]) > BigInt(ids[i - 1]), "monotonic");
    first.child.kill("SIGKILL");
    const killed = await first.child.status;
    assert.equal(killed.signal, "SIGKILL");
    await first.reading;

    // Second run on the same file: resume from an old id.
    const second = await startCli(file);
    try {
      const from = 100;
      const s = await subscribe(second.port, "/events/orders", { "Last-Event-ID": ids[from] });
      await using _c = s.client;
      const got = await readEvents(s, N - from - 1);
      assert.deepEqual(got.map((e) => e.type), got.map(() => "message"), "no gap notice");
      assert.deepEqual(got.map((e) => e.data), datas.slice(from + 1));
      assert.deepEqual(got.map((e) => e.lastEventId), ids.slice(from + 1));
      // New ids continue past the old ones, and the live event follows the replay.
      const [next] = await publishAll(second.port, ["after restart"]);
      assert.ok(BigInt(next) > BigInt(ids[N - 1]), `${next} > ${ids[N - 1]}`);
      const live = await readEvents(s, N - from);
      assert.deepEqual(live.at(-1), { type: "message", data: "after restart", lastEventId: next });
    } finally {
      second.child.kill("SIGTERM");
      await second.child.status;
      await second.reading;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

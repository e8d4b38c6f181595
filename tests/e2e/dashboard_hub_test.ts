/**
 * The dashboard against the real hub (the CLI as a subprocess, `--demo`):
 * values update live, "reconnecting" while the hub is down, no lost events
 * after it restarts on the same history file, "closed" after the button.
 */

import assert from "node:assert/strict";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";
import { RawClient } from "../_util/raw_client.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts the hub and resolves once it listens. */
async function startHub(port: number, historyFile: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "--port",
      String(port),
      "--hostname",
      "127.0.0.1",
      "--demo",
      "--demo-min-interval",
      "0.05",
      "--demo-max-interval",
      "0.15",
      "--heartbeat",
      "1",
      "--retry",
      "300",
      "--history-file",
      historyFile,
      "--quiet",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000; // guards a hang only
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch {
      if (Date.now() > deadline) throw new Error("hub did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function stopHub(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  const status = await child.status;
  assert.equal(status.code, 0, "the hub exits 0 on SIGTERM");
}

const received = "globalThis.sluiceDashboard.received";

Deno.test({
  name: "dashboard on the real hub: live values, reconnecting while down, no lost events, closed",
  ignore: !browserAvailable(),
}, async () => {
  const dir = await Deno.makeTempDir();
  const historyFile = `${dir}/history.db`;
  const port = freePort();
  let hub = await startHub(port, historyFile);
  try {
    await using browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(`document.querySelector("#state").textContent === "open"`, null, {
      timeout: 20_000,
    });
    await page.waitForFunction(`${received}.length >= 5`, null, { timeout: 20_000 });
    const sensorA = await page.textContent("#sensorA");
    assert.match(sensorA ?? "", /^\d+$/, "sensor A shows a number");
    await page.waitForFunction(
      `/uptime/.test(document.querySelector("#heartbeat").textContent)`,
      null,
      { timeout: 20_000 },
    );

    // Stop the hub: the page shows it is reconnecting.
    await stopHub(hub);
    await page.waitForFunction(
      `document.querySelector("#state").textContent === "reconnecting"`,
      null,
      { timeout: 20_000 },
    );
    const before = await page.evaluate(`${received}.length`) as number;

    // Restart on the same history file: the page resumes with Last-Event-ID.
    hub = await startHub(port, historyFile);
    await page.waitForFunction(`document.querySelector("#state").textContent === "open"`, null, {
      timeout: 30_000,
    });
    await page.waitForFunction(`${received}.length >= ${before + 5}`, null, { timeout: 20_000 });
    const ids = await page.evaluate(received) as string[];

    // What the hub has for channel "sensors" after the first id the page got:
    // the page must have every one of them, in order, once.
    const sub = await RawClient.stream(port, "/events/sensors", { "Last-Event-ID": ids[0] });
    await using _sub = sub.client;
    const want = ids.length - 1;
    await sub.client.readEvents(sub.parser, want);
    const replayed = sub.parser.events.filter((e) => /"sensor[AB]"/.test(e.data))
      .map((e) => e.lastEventId);
    assert.deepEqual(ids.slice(1), replayed.slice(0, want), "no event lost or repeated");
    assert.equal(new Set(ids).size, ids.length, "no duplicates");

    await page.click("#close");
    await page.waitForFunction(`document.querySelector("#state").textContent === "closed"`, null, {
      timeout: 10_000,
    });
  } finally {
    await stopHub(hub).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

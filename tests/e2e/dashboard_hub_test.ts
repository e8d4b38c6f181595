/**
 * The dashboard against the real hub (the CLI as a subprocess, `--demo`):
 * values update live, "reconnecting" while the hub is down, no lost events
 * after it restarts on the same history file, "closed" after the button.
 */

import assert from "node:assert/strict";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";
import { RawClient } from "../_util/raw_client.ts";
import { type CliHub, startCli } from "./_hub.ts";

/** The hub with its demo sensors, fast, on a history file that survives a restart. */
function hubArgs(historyFile: string): string[] {
  return [
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
  ];
}

const received = "globalThis.sluiceDashboard.received";

Deno.test({
  name: "dashboard on the real hub: live values, reconnecting while down, no lost events, closed",
  ignore: !browserAvailable(),
}, async () => {
  const dir = await Deno.makeTempDir();
  const historyFile = `${dir}/history.db`;
  let hub: CliHub = await startCli(hubArgs(historyFile));
  const port = hub.port;
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
    assert.equal(await hub.stop(), 0, "the hub exits 0 on SIGTERM");
    await page.waitForFunction(
      `document.querySelector("#state").textContent === "reconnecting"`,
      null,
      { timeout: 20_000 },
    );
    const before = await page.evaluate(`${received}.length`) as number;

    // Restart on the same history file: the page resumes with Last-Event-ID.
    hub = await startCli(hubArgs(historyFile), {}, { port });
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
    await hub.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

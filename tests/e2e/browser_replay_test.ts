import assert from "node:assert/strict";
import { serve } from "../../mod.ts";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";

const PAGE = `<!doctype html><title>replay</title><script>
window.got = [];
window.gaps = [];
window.opens = 0;
const es = new EventSource("/events");
es.onopen = () => window.opens++;
es.onmessage = (e) => window.got.push([e.data, e.lastEventId]);
es.addEventListener("sluice.gap", (e) => window.gaps.push(JSON.parse(e.data)));
</script>`;

Deno.test({
  name:
    "Chromium's EventSource reconnects with Last-Event-ID, gets what it missed, and hears sluice.gap",
  ignore: !browserAvailable(),
}, async () => {
  await using server = serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, history: 3 });
  server.route("GET", "/", () => ({
    status: 200,
    headers: { "Content-Type": "text/html; charset=utf-8" },
    body: PAGE,
  }));
  const events = server.eventSource("/events", { retry: 100 });
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.addr.port}/`);
  await page.waitForFunction("window.opens === 1 && window.got.length === 0", null, {
    timeout: 20_000,
  });
  const ids: string[] = [];
  for (const d of ["e1", "e2", "e3"]) ids.push((await events.publish(d))!);
  await page.waitForFunction("window.got.length === 3", null, { timeout: 20_000 });

  // Cut from the server; publish while the browser waits its retry: it comes
  // back with Last-Event-ID and gets both, once.
  for (const c of [...events.clients()]) c.close();
  for (const d of ["e4", "e5"]) ids.push((await events.publish(d))!);
  await page.waitForFunction("window.got.length === 5", null, { timeout: 20_000 });

  // Cut again and publish more than history keeps: the browser hears the gap.
  for (const c of [...events.clients()]) c.close();
  for (const d of ["e6", "e7", "e8", "e9", "e10"]) ids.push((await events.publish(d))!);
  await page.waitForFunction("window.got.length === 8", null, { timeout: 20_000 });
  assert.ok(events.send("live"));
  await page.waitForFunction("window.got.length === 9", null, { timeout: 20_000 });

  const got = await page.evaluate("window.got") as [string, string][];
  const gaps = await page.evaluate("window.gaps") as unknown[];
  assert.deepEqual(got.map(([d]) => d), [
    "e1",
    "e2",
    "e3",
    "e4",
    "e5",
    "e8",
    "e9",
    "e10",
    "live",
  ]);
  assert.deepEqual(got.slice(0, 8).map(([, id]) => id), [...ids.slice(0, 5), ...ids.slice(7)]);
  assert.deepEqual(gaps, [{ lastEventId: ids[4], earliest: ids[7] }]);
  assert.equal(await page.evaluate("window.opens"), 3);
  assert.equal(server.stats.replays, 2);
});

/**
 * CORS from another origin with a real browser: a page served on one origin
 * (http://127.0.0.1:P1) opens `new EventSource(hub, { withCredentials: true })`
 * to a hub on another (http://127.0.0.1:P2) that wants Basic auth.
 */

import assert from "node:assert/strict";
import { serve } from "../../server/server.ts";
import { subscriberAuth } from "../../server/hub/subscriber_auth.ts";
import { UserStore } from "../../server/middleware/users.ts";
import { browserAvailable, launchBrowser } from "../_util/browser.ts";
import { publish, request, testHub, until } from "./_hub.ts";

/** The test page: opens the stream and records what happens in `window.result`. */
const PAGE = `<!doctype html><title>cors</title><script>
window.open_ = (url, withCredentials) => new Promise((resolve) => {
  const got = [];
  const es = new EventSource(url, { withCredentials });
  es.addEventListener("greeting", (e) => {
    got.push(e.data);
    es.close();
    resolve({ ok: true, got });
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) resolve({ ok: false, got });
  };
});
</script>`;

/** A page server on its own origin. */
function pageServer() {
  const server = serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0 });
  server.route("GET", "/", () => ({
    status: 200,
    headers: { "Content-Type": "text/html; charset=utf-8" },
    body: PAGE,
  }));
  return server;
}

declare const open_: (url: string, withCredentials: boolean) => Promise<{
  ok: boolean;
  got: string[];
}>;

Deno.test({
  name: "hub CORS: a page of an allowed origin subscribes withCredentials through Basic auth",
  ignore: !browserAvailable(),
  async fn() {
    await using allowedPages = pageServer();
    await using otherPages = pageServer();
    const origin = `http://127.0.0.1:${allowedPages.addr.port}`;
    await using hub = testHub({
      auth: subscriberAuth({ scheme: "basic", users: new UserStore().addPassword("ann", "pw") }),
      cors: { origins: [origin], credentials: true },
    });
    const hubUrl = `http://127.0.0.1:${hub.server.addr.port}/events/news`;
    assert.notEqual(allowedPages.addr.port, hub.server.addr.port, "two origins");

    await using browser = await launchBrowser();
    const context = await browser.newContext({
      httpCredentials: { username: "ann", password: "pw" },
    });
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    const result = page.evaluate((url) => open_(url, true), hubUrl);
    await until(() => hub.events.count() === 1, "browser subscribed");
    assert.equal(
      (await publish(hub.server.addr.port, "/events/news?event=greeting", "hi")).status,
      202,
    );
    assert.deepEqual(await result, { ok: true, got: ["hi"] });

    // Without withCredentials the browser sends no HTTP auth cross-origin: 401, fails.
    const opened = hub.server.sessions.stats.opened;
    assert.deepEqual(await page.evaluate((url) => open_(url, false), hubUrl), {
      ok: false,
      got: [],
    });
    assert.equal(hub.server.sessions.stats.opened, opened, "no stream was opened");

    // A page of another origin: the hub sends no Access-Control-Allow-Origin, the browser fails it.
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${otherPages.addr.port}/`);
    assert.deepEqual(await other.evaluate((url) => open_(url, true), hubUrl), {
      ok: false,
      got: [],
    });
    await context.close();
  },
});

Deno.test("hub CORS: preflight for the publish API and CORS headers on 401 answers", async () => {
  const origin = "http://app.example:8443";
  await using hub = testHub({
    auth: subscriberAuth({ scheme: "bearer", tokens: ["t0k"] }),
    cors: { origins: [origin], credentials: true },
    publishTokens: ["pub"],
  });
  const port = hub.server.addr.port;
  const preflight = await request(port, "OPTIONS", "/events/news", {
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "authorization, content-type",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
  assert.equal(preflight.headers.get("access-control-allow-credentials"), "true");
  assert.match(preflight.headers.get("access-control-allow-headers")!, /Authorization/);
  assert.match(preflight.headers.get("access-control-allow-headers")!, /Last-Event-ID/);

  const denied = await request(port, "GET", "/events/news", { headers: { Origin: origin } });
  assert.equal(denied.status, 401);
  assert.equal(
    denied.headers.get("access-control-allow-origin"),
    origin,
    "scripts can read the 401",
  );

  const stranger = await request(port, "GET", "/events/news?access_token=t0k", {
    headers: { Origin: "http://evil.example" },
  });
  assert.equal(stranger.headers.get("access-control-allow-origin"), undefined, "never echoed");
  const strangerPreflight = await request(port, "OPTIONS", "/events/news", {
    headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" },
  });
  assert.equal(strangerPreflight.status, 403);
});

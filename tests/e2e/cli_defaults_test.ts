/**
 * Defaults are written once: `main.ts --help` shows the `DEFAULT_*`
 * constants of the code, and the hub README's flag table shows what
 * `--help` shows. Changing a default in one place and not the other fails here.
 */

import assert from "node:assert/strict";
import { mainHelp } from "../_util/main_help.ts";
import { DEFAULT_SERVER_OPTIONS } from "../../server/server_options.ts";
import { DEFAULT_HUB_OPTIONS } from "../../server/hub/hub.ts";
import { DEFAULT_SQLITE_HISTORY_OPTIONS } from "../../queue/sqlite_history.ts";
import { DEFAULT_MEMORY_RECLAIM_OPTIONS } from "../../server/hub/memory_reclaim.ts";
import { DEFAULT_SUBSCRIBER_AUTH_OPTIONS } from "../../server/hub/hub_auth.ts";

const ROOT = new URL("../../", import.meta.url);

/** Each flag's default as the code defines it. */
const EXPECTED: Record<string, string> = {
  port: String(DEFAULT_SERVER_OPTIONS.port),
  hostname: DEFAULT_SERVER_OPTIONS.hostname,
  "max-clients": String(DEFAULT_SERVER_OPTIONS.maxClients),
  "queue-size": String(DEFAULT_SERVER_OPTIONS.queueSize),
  keepalive: String(DEFAULT_SERVER_OPTIONS.keepAlive),
  heartbeat: String(DEFAULT_HUB_OPTIONS.heartbeat),
  history: String(DEFAULT_SERVER_OPTIONS.history),
  "history-bytes": String(DEFAULT_SERVER_OPTIONS.historyBytes),
  "history-sync": DEFAULT_SQLITE_HISTORY_OPTIONS.synchronous,
  "max-pending-bytes": String(DEFAULT_SERVER_OPTIONS.maxPendingBytes),
  "slow-consumer": DEFAULT_SERVER_OPTIONS.slowConsumer,
  "max-pending-heads": String(DEFAULT_SERVER_OPTIONS.maxPendingHeads),
  "reclaim-after": String(DEFAULT_MEMORY_RECLAIM_OPTIONS.afterConnections),
  "watch-streams": String(DEFAULT_SERVER_OPTIONS.watchStreams),
  "write-timeout": String(DEFAULT_SERVER_OPTIONS.writeTimeout),
  busy: DEFAULT_SERVER_OPTIONS.busy,
  "demo-min-interval": String(DEFAULT_HUB_OPTIONS.demo.minIntervalMs / 1000),
  "demo-max-interval": String(DEFAULT_HUB_OPTIONS.demo.maxIntervalMs / 1000),
  "max-event-bytes": String(DEFAULT_HUB_OPTIONS.maxEventBytes),
  "max-channels": String(DEFAULT_HUB_OPTIONS.maxChannels),
  realm: DEFAULT_SUBSCRIBER_AUTH_OPTIONS.realm,
};

async function helpDefaults(): Promise<Map<string, string>> {
  const help = await mainHelp();
  const found = new Map<string, string>();
  for (const m of help.matchAll(/^\s+(?:-\w, )?--([a-z-]+).*, default ([^)]+)\)$/gm)) {
    found.set(m[1], m[2]);
  }
  return found;
}

Deno.test("--help shows the DEFAULT_* constants as each flag's default", async () => {
  const shown = await helpDefaults();
  for (const [flag, value] of Object.entries(EXPECTED)) {
    assert.equal(shown.get(flag), value, `--${flag}`);
  }
  assert.equal(shown.get("auth"), "none");
});

Deno.test("the hub README's flag table shows the defaults --help shows", async () => {
  const shown = await helpDefaults();
  const readme = await Deno.readTextFile(new URL("server/hub/README.md", ROOT));
  const table = new Map<string, string>();
  for (const m of readme.matchAll(/^\| `--([a-z-]+)`\s*\|[^|]*\|\s*([^|]*?)\s*\|/gm)) {
    table.set(m[1], m[2]);
  }
  assert.ok(table.size > 30, `read ${table.size} rows`);
  for (const [flag, value] of shown) {
    assert.equal(table.get(flag), value, `README row of --${flag}`);
  }
});

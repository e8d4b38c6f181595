import assert from "node:assert/strict";
import { startMemoryReclaim } from "../../../server/hub/memory_reclaim.ts";
import type { ServerStats } from "../../../server/server_stats.ts";
import { until } from "../../e2e/_replay_util.ts";

/** Just the counters the reclaimer reads. */
function fakeServer() {
  const closed = { "client-closed": 0 };
  const stats = { accepted: 0, sessions: { open: 0, closed } } as unknown as ServerStats;
  return {
    stats,
    connect(n: number) {
      (stats as { accepted: number }).accepted += n;
    },
    disconnect(n: number) {
      closed["client-closed"] += n;
    },
  };
}

Deno.test("one collection once a burst of connections has settled, none while it goes on", async () => {
  const server = fakeServer();
  const calls: unknown[] = [];
  const logs: string[] = [];
  using reclaim = startMemoryReclaim(server, {
    afterConnections: 100,
    minYoungMb: 0,
    quietMs: 300,
    checkMs: 5,
    gc: (o) => calls.push(o),
    logger: (_level, message) => logs.push(message),
  })!;
  // A burst that keeps going: never quiet for 300 ms, so no collection.
  for (let i = 0; i < 10; i++) {
    server.connect(20);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(calls.length, 0);
  await until(() => calls.length === 1, "the collection after the burst");
  assert.deepEqual(calls[0], { type: "major", execution: "sync", flavor: "last-resort" });
  assert.deepEqual(logs, ["memory reclaimed"]);
  // Quiet, and nothing new: no second collection.
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(reclaim.collections, 1);
  // A burst of departures counts too.
  server.disconnect(150);
  await until(() => calls.length === 2, "the collection after the departures");
});

Deno.test("fewer connections than afterConnections: no collection", async () => {
  const server = fakeServer();
  let calls = 0;
  using _reclaim = startMemoryReclaim(server, {
    afterConnections: 100,
    minYoungMb: 0,
    quietMs: 10,
    checkMs: 5,
    gc: () => calls++,
  })!;
  server.connect(99);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls, 0);
});

Deno.test("a burst after which V8's young generation is small again: no collection", async () => {
  const server = fakeServer();
  let calls = 0;
  using _reclaim = startMemoryReclaim(server, {
    afterConnections: 100,
    minYoungMb: 1024 * 1024, // Far above any young generation.
    quietMs: 10,
    checkMs: 5,
    gc: () => calls++,
  })!;
  server.connect(500);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(calls, 0);
});

Deno.test("no collector or afterConnections 0: nothing is started; bad options throw", () => {
  const server = fakeServer();
  if ((globalThis as { gc?: unknown }).gc === undefined) {
    assert.equal(startMemoryReclaim(server), undefined);
  }
  assert.equal(startMemoryReclaim(server, { afterConnections: 0, gc: () => {} }), undefined);
  assert.throws(() => startMemoryReclaim(server, { quietMs: -1, gc: () => {} }), {
    name: "RangeError",
    message: "quietMs must be a non-negative integer: received -1",
  });
});

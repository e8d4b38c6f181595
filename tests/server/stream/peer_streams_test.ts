import assert from "node:assert/strict";
import { isLoopbackIp, peerIp } from "../../../server/http/peer_address.ts";
import { PeerStreams } from "../../../server/stream/peer_streams.ts";
import { resolveServerOptions } from "../../../server/server_options.ts";

Deno.test("peerIp counts an IPv4-mapped IPv6 address as the IPv4 address", () => {
  assert.equal(peerIp("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(peerIp("::FFFF:192.0.2.7"), "192.0.2.7");
  assert.equal(peerIp("192.0.2.7"), "192.0.2.7");
  assert.equal(peerIp("2001:DB8::1"), "2001:db8::1");
});

Deno.test("isLoopbackIp knows 127.0.0.0/8, ::1 and mapped 127.x", () => {
  for (const ip of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.2"]) {
    assert.ok(isLoopbackIp(ip), ip);
  }
  for (const ip of ["192.0.2.7", "::ffff:192.0.2.7", "128.0.0.1", "::2"]) {
    assert.ok(!isLoopbackIp(ip), ip);
  }
});

Deno.test("PeerStreams caps each address, mapped or not, and forgets peers at zero", () => {
  const peers = new PeerStreams(2, { exemptLoopback: true });
  assert.ok(!peers.full("192.0.2.7"));
  peers.opened(1, "192.0.2.7");
  peers.opened(2, "::ffff:192.0.2.7");
  assert.ok(peers.full("192.0.2.7"));
  assert.ok(peers.full("::ffff:192.0.2.7"), "the mapped form is the same peer");
  assert.ok(!peers.full("192.0.2.8"));
  peers.opened(3, "127.0.0.1");
  peers.opened(4, "127.0.0.1");
  peers.opened(5, "127.0.0.1");
  assert.ok(!peers.full("127.0.0.1"), "loopback is exempt");
  assert.equal(peers.peers, 1);
  peers.closed(1);
  peers.closed(1); // idempotent
  assert.ok(!peers.full("192.0.2.7"));
  peers.closed(2);
  for (const id of [3, 4, 5]) peers.closed(id);
  assert.equal(peers.peers, 0, "no entry is kept for a peer without streams");
});

Deno.test("PeerStreams counts loopback when not exempt; limit 0 counts nothing", () => {
  const strict = new PeerStreams(1, { exemptLoopback: false });
  strict.opened(1, "::1");
  assert.ok(strict.full("::1"));
  const off = new PeerStreams(0, { exemptLoopback: false });
  off.opened(1, "192.0.2.7");
  assert.ok(!off.full("192.0.2.7"));
  assert.equal(off.peers, 0);
});

Deno.test("the default maxClientsPerIp is min(64, a quarter of maxClients) and exempts loopback", () => {
  const cases: [number, number][] = [[1, 1], [3, 1], [8, 2], [64, 16], [1024, 64], [10_000, 64]];
  for (const [maxClients, cap] of cases) {
    const opts = resolveServerOptions({ maxClients });
    assert.equal(opts.maxClientsPerIp, cap, `maxClients ${maxClients}`);
    assert.equal(opts.exemptLoopback, true);
  }
  const given = resolveServerOptions({ maxClients: 8, maxClientsPerIp: 5 });
  assert.deepEqual([given.maxClientsPerIp, given.exemptLoopback], [5, false]);
});

import assert from "node:assert/strict";
import { pendingHead as head, PendingHeads } from "../../../server/http/pending_heads.ts";

Deno.test("PendingHeads at its cap evicts the oldest counted socket of the peer with the most", () => {
  const heads = new PendingHeads<string>(3, 60_000);
  const b1 = head("192.0.2.2");
  const a = [head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1")];
  heads.enter("b1", b1);
  heads.markSlow("b1", b1); // The oldest counted socket belongs to the quiet peer.
  heads.enter("a0", a[0]);
  heads.markSlow("a0", a[0]);
  heads.enter("a1", a[1]);
  heads.markSlow("a1", a[1]);
  heads.enter("a2", a[2]);
  heads.markSlow("a2", a[2]); // Past the cap: one of 192.0.2.1's goes, not 192.0.2.2's.
  assert.deepEqual([b1.evicted, ...a.map((p) => p.evicted)], [false, true, false, false]);
  assert.equal(heads.counted, 3);
  heads.leave("b1", b1);
  a.forEach((p, i) => heads.leave(`a${i}`, p));
  assert.equal(heads.counted, 0);
  assert.equal(heads.peers, 0, "no entry is kept for a peer with no socket");
});

Deno.test("PendingHeads.makeRoom evicts from the peer with the most sockets, counted ones first", () => {
  const heads = new PendingHeads<string>(100, 60_000);
  const other = head("192.0.2.2");
  const flood = [head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1")];
  heads.enter("other", other);
  flood.forEach((p, i) => heads.enter(`f${i}`, p));
  heads.markSlow("f1", flood[1]);
  let woken: string | undefined;
  flood[1].wake = (why) => woken = why;
  assert.equal(heads.makeRoom(), "f1");
  assert.equal(woken, "evicted");
  assert.equal(heads.makeRoom(), "f0", "then the oldest, counted or not");
  assert.equal(heads.makeRoom(), "f2");
  assert.ok(!other.evicted, "the peer with one socket is left alone while another has more");
  heads.makeRoom();
  heads.makeRoom();
  assert.equal(heads.makeRoom(), undefined, "nothing left receiving");
  assert.equal(heads.peers, 0);
});

Deno.test("PendingHeads counts a socket silent past the grace period, and not one that left", async () => {
  const heads = new PendingHeads<string>(100, 20);
  const silent = head("192.0.2.1");
  const quick = head("192.0.2.1");
  const again = head("192.0.2.3");
  heads.enter("silent", silent);
  heads.enter("quick", quick);
  heads.leave("quick", quick); // Its request came whole.
  heads.enter("again", again);
  heads.leave("again", again);
  heads.enter("again", again); // The next request on a keep-alive socket: queued anew.
  assert.equal(heads.counted, 0, "nobody counts within the grace period");
  await new Promise((r) => setTimeout(r, 40));
  heads.enter("late", head("192.0.2.2")); // Any call ages the queue.
  assert.equal(heads.counted, 2, "the silent socket and the re-entered one, not the one that left");
  heads.leave("silent", silent);
  heads.leave("again", again);
  assert.equal(heads.counted, 0);
  assert.equal(heads.peers, 0);
});

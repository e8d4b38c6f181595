import assert from "node:assert/strict";
import { type PendingHead, PendingHeads } from "../../../server/http/pending_heads.ts";

function head(peer: string): PendingHead {
  return { peer, since: 0, evicted: false, deadline: 0, wake: undefined };
}

Deno.test("PendingHeads at its cap evicts the oldest counted socket of the peer with the most", () => {
  const heads = new PendingHeads<string>(3, 60_000);
  const b1 = head("192.0.2.2");
  const a = [head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1")];
  heads.enter("b1", b1);
  heads.markSlow("b1"); // The oldest counted socket belongs to the quiet peer.
  heads.enter("a0", a[0]);
  heads.markSlow("a0");
  heads.enter("a1", a[1]);
  heads.markSlow("a1");
  heads.enter("a2", a[2]);
  heads.markSlow("a2"); // Past the cap: one of 192.0.2.1's goes, not 192.0.2.2's.
  assert.deepEqual([b1.evicted, ...a.map((p) => p.evicted)], [false, true, false, false]);
  assert.equal(heads.counted, 3);
  for (const key of ["b1", "a0", "a1", "a2"]) heads.leave(key);
  assert.equal(heads.counted, 0);
  assert.equal(heads.peers, 0, "no entry is kept for a peer with no socket");
});

Deno.test("PendingHeads.makeRoom evicts from the peer with the most sockets, counted ones first", () => {
  const heads = new PendingHeads<string>(100, 60_000);
  const other = head("192.0.2.2");
  const flood = [head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1"), head("192.0.2.1")];
  heads.enter("other", other);
  flood.forEach((p, i) => heads.enter(`f${i}`, p));
  heads.markSlow("f1");
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

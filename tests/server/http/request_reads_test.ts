import assert from "node:assert/strict";
import { RequestReads } from "../../../server/http/_request_reads.ts";
import {
  type PendingHead,
  pendingHead as newPendingHead,
} from "../../../server/http/pending_heads.ts";

function pendingHead(): PendingHead {
  return newPendingHead("127.0.0.1");
}

/** A socket whose reads answer `n` at once, or never. */
function fakeConn(n: number | undefined): Deno.Conn {
  return {
    read: () => n === undefined ? new Promise<number | null>(() => {}) : Promise.resolve(n),
  } as unknown as Deno.Conn;
}

Deno.test("a read buffer goes back to the pool once its read has ended", async () => {
  const reads = new RequestReads({ headerTimeout: 40, idleTimeout: 40 });
  const chunk = reads.takeBuffer();
  assert.equal(await reads.read(fakeConn(7), chunk, Date.now() + 1_000, pendingHead()), 7);
  reads.releaseBuffer(chunk);
  assert.equal(reads.takeBuffer(), chunk);
});

Deno.test("the buffer of a read that timed out is never reused: the read may still fill it", async () => {
  const reads = new RequestReads({ headerTimeout: 40, idleTimeout: 40 });
  reads.start();
  try {
    const chunk = reads.takeBuffer();
    const result = await reads.read(fakeConn(undefined), chunk, Date.now() + 10, pendingHead());
    assert.equal(result, "timeout");
    reads.releaseBuffer(chunk);
    assert.notEqual(reads.takeBuffer(), chunk);
  } finally {
    reads.stop();
  }
});

Deno.test("the buffer of an evicted read is never reused either", async () => {
  const reads = new RequestReads({ headerTimeout: 10_000, idleTimeout: 10_000 });
  const chunk = reads.takeBuffer();
  const pending = pendingHead();
  const result = reads.read(fakeConn(undefined), chunk, Date.now() + 10_000, pending);
  pending.evicted = true;
  pending.wake?.("evicted");
  assert.equal(await result, "evicted");
  reads.releaseBuffer(chunk);
  assert.notEqual(reads.takeBuffer(), chunk);
});

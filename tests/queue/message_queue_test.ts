import assert from "node:assert/strict";
import { MessageQueue } from "../../queue/message_queue.ts";

Deno.test("MessageQueue keeps FIFO order across wrap-around", () => {
  const q = new MessageQueue<number>(3);
  const out: number[] = [];
  for (let i = 0; i < 10; i++) {
    assert.equal(q.push(i), true);
    if (i % 2 === 1) {
      out.push(q.shift()!);
      out.push(q.shift()!);
    }
  }
  assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
});

Deno.test("MessageQueue push returns false when full and counts the rejection", () => {
  const q = new MessageQueue<string>(2);
  assert.equal(q.push("a"), true);
  assert.equal(q.push("b"), true);
  assert.equal(q.push("c"), false);
  assert.equal(q.push("d"), false);
  assert.equal(q.length, 2);
  assert.deepEqual(q.stats, { pushed: 2, rejected: 2, shifted: 0 });
  assert.equal(q.shift(), "a");
  assert.equal(q.push("e"), true);
  assert.deepEqual([q.shift(), q.shift()], ["b", "e"]);
  assert.deepEqual(q.stats, { pushed: 3, rejected: 2, shifted: 3 });
});

Deno.test("MessageQueue calls onItem synchronously after each accepted push only", () => {
  let calls = 0;
  const q = new MessageQueue<number>(1, () => calls++);
  q.push(1);
  assert.equal(calls, 1);
  q.push(2); // refused
  assert.equal(calls, 1);
});

Deno.test("MessageQueue validates its capacity", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(
      () => new MessageQueue(bad),
      (err: unknown) => err instanceof RangeError && err.message.includes(`received ${bad}`),
    );
  }
  assert.equal(new MessageQueue(7).capacity, 7);
});

Deno.test("MessageQueue pushWait succeeds at once when there is room", async () => {
  const q = new MessageQueue<number>(1);
  assert.equal(await q.pushWait(1, 1000), true);
  assert.equal(q.shift(), 1);
});

Deno.test("MessageQueue pushWait waits for room and succeeds after a shift", async () => {
  const q = new MessageQueue<number>(1);
  q.push(1);
  const waiting = q.pushWait(2, 10_000);
  await Promise.resolve();
  assert.equal(q.length, 1);
  assert.equal(q.shift(), 1);
  assert.equal(await waiting, true);
  assert.equal(q.shift(), 2);
  assert.deepEqual(q.stats, { pushed: 2, rejected: 0, shifted: 2 });
});

Deno.test("MessageQueue pushWait gives up after its timeout and counts one rejection", async () => {
  const q = new MessageQueue<number>(1);
  q.push(1);
  assert.equal(await q.pushWait(2, 20), false);
  assert.equal(await q.pushWait(3, 0), false);
  assert.deepEqual(q.stats, { pushed: 1, rejected: 2, shifted: 0 });
  assert.equal(q.shift(), 1);
  assert.equal(q.length, 0);
});

Deno.test("MessageQueue pushWait waiters are served in order", async () => {
  const q = new MessageQueue<string>(1);
  q.push("first");
  const a = q.pushWait("a", 10_000);
  const b = q.pushWait("b", 10_000);
  await Promise.resolve();
  assert.equal(q.shift(), "first");
  assert.equal(await a, true);
  assert.equal(q.shift(), "a");
  assert.equal(await b, true);
  assert.equal(q.shift(), "b");
});

Deno.test("MessageQueue pushWait that loses its slot to a push keeps waiting, not counted", async () => {
  const q = new MessageQueue<string>(1);
  q.push("first");
  const waiting = q.pushWait("waiter", 10_000);
  await Promise.resolve();
  assert.equal(q.shift(), "first");
  // A synchronous producer takes the slot before the woken waiter runs.
  assert.equal(q.push("thief"), true);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(q.shift(), "thief");
  assert.equal(await waiting, true);
  assert.equal(q.shift(), "waiter");
  // Nothing was finally refused.
  assert.deepEqual(q.stats, { pushed: 3, rejected: 0, shifted: 3 });
});

Deno.test("MessageQueue wakeAll wakes every waiter", async () => {
  const q = new MessageQueue<number>(1);
  q.push(0);
  const waits = [q.pushWait(1, 10_000), q.pushWait(2, 10_000)];
  await Promise.resolve();
  q.shift();
  q.wakeAll();
  // One gets the free slot; the other keeps waiting until room or timeout.
  const first = await Promise.race(waits.map((p, i) => p.then((ok) => ({ ok, i }))));
  assert.equal(first.ok, true);
  q.shift();
  assert.deepEqual(await Promise.all(waits), [true, true]);
});

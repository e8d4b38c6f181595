import assert from "node:assert/strict";
import { fanOut, type FanOutTarget } from "../../queue/fan_out.ts";

class Recorder implements FanOutTarget {
  got: Uint8Array[] = [];
  constructor(readonly accept = true) {}
  write(bytes: Uint8Array): boolean {
    this.got.push(bytes);
    return this.accept;
  }
}

Deno.test("fanOut hands the same bytes object to every target", () => {
  const bytes = new TextEncoder().encode("data: x\n\n");
  const targets = [new Recorder(), new Recorder(), new Recorder()];
  assert.equal(fanOut(bytes, targets), 3);
  for (const t of targets) {
    assert.equal(t.got.length, 1);
    assert.equal(t.got[0], bytes, "shared, not copied");
  }
});

Deno.test("fanOut counts only the targets that accepted", () => {
  const bytes = new Uint8Array([1]);
  const targets = [new Recorder(true), new Recorder(false), new Recorder(true)];
  assert.equal(fanOut(bytes, targets), 2);
  // A refusing target does not stop the ones after it.
  assert.equal(targets[2].got.length, 1);
});

Deno.test("fanOut with no targets accepts nothing", () => {
  assert.equal(fanOut(new Uint8Array([1]), []), 0);
});

Deno.test("fanOut takes any iterable, such as a Map's values", () => {
  const m = new Map([[1, new Recorder()], [2, new Recorder()]]);
  assert.equal(fanOut(new Uint8Array([1]), m.values()), 2);
});

Deno.test("fanOut never waits on a target: all writes happen in one synchronous pass", () => {
  const order: string[] = [];
  const slow: FanOutTarget = {
    write: () => (order.push("slow"), true),
  };
  const fast: FanOutTarget = { write: () => (order.push("fast"), true) };
  const n = fanOut(new Uint8Array([1]), [slow, fast, slow]);
  order.push("returned");
  assert.equal(n, 3);
  assert.deepEqual(order, ["slow", "fast", "slow", "returned"]);
});

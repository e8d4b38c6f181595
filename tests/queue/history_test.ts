import assert from "node:assert/strict";
import { encodeGapEvent, MemoryHistory } from "../../queue/history.ts";
import { EventIdSequence, numericId, withEventId } from "../../queue/event_ids.ts";
import { historyContract } from "./_history_contract.ts";

historyContract("MemoryHistory", (options) => new MemoryHistory(options));

Deno.test("MemoryHistory keeps count bounds over many events without growing", () => {
  const h = new MemoryHistory({ maxEvents: 10, firstId: 1 });
  const bytes = new TextEncoder().encode("data: x\n\n");
  for (let i = 0; i < 10_000; i++) h.append("a", { bytes });
  assert.equal(h.size, 10);
  const r = h.since(["a"], "9995");
  assert.deepEqual(r.events.map((e) => e.id), ["9996", "9997", "9998", "9999", "10000"]);
  assert.equal(r.gap, false);
});

Deno.test("encodeGapEvent is a sluice.gap event with JSON data and no id line", () => {
  const text = new TextDecoder().decode(encodeGapEvent("41", null));
  assert.equal(text, 'event: sluice.gap\ndata: {"lastEventId":"41","earliest":null}\n\n');
});

Deno.test("EventIdSequence skips past observed numeric ids only", () => {
  const s = new EventIdSequence(5);
  assert.equal(s.next(), "5");
  s.observe("3");
  s.observe("x9");
  assert.equal(s.next(), "6");
  s.observe("20");
  assert.equal(s.next(), "21");
  assert.equal(numericId("99999999999999999"), undefined, "beyond safe integers");
  assert.equal(numericId("007"), 7);
});

Deno.test("withEventId prepends an id line", () => {
  const out = withEventId("7", new TextEncoder().encode("event: t\ndata: x\n\n"));
  assert.equal(new TextDecoder().decode(out), "id: 7\nevent: t\ndata: x\n\n");
});

Deno.test("MemoryHistory keeps at most maxChannels channels, dropping the least recently appended", () => {
  const enc = new TextEncoder();
  const h = new MemoryHistory({ maxChannels: 3, firstId: 1 });
  const a = h.append("a", { bytes: enc.encode("data: a\n\n") });
  h.append("b", { bytes: enc.encode("data: b\n\n") });
  h.append("c", { bytes: enc.encode("data: c\n\n") });
  h.append("a", { bytes: enc.encode("data: a2\n\n") }); // "a" is now the freshest
  h.append("d", { bytes: enc.encode("data: d\n\n") }); // evicts "b"
  assert.equal(h.channelCount, 3);
  assert.equal(h.since(["a"], a.id).events.length, 1, "channel a kept");
  const b = h.since(["b"], undefined);
  assert.equal(b.latest, null, "channel b was dropped whole");
  assert.throws(
    () => new MemoryHistory({ maxChannels: 0 }),
    /maxChannels must be a positive integer: received 0/,
  );
});

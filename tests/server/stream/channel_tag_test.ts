import assert from "node:assert/strict";
import { multiChannelEventName, tagEvent } from "../../../server/stream/channel_tag.ts";
import { encodeEvent } from "../../../queue/encode_event.ts";
import { withEventId } from "../../../queue/event_ids.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("multiChannelEventName names the channel, then the event after a colon", () => {
  assert.equal(multiChannelEventName("news", undefined), "news");
  assert.equal(multiChannelEventName("news", ""), "news");
  assert.equal(multiChannelEventName("news", "greeting"), "news:greeting");
});

Deno.test("tagEvent equals encoding the event again with the tagged name", () => {
  const cases: [string, Parameters<typeof encodeEvent>[1]][] = [
    ["x", {}],
    ["x", { event: "temp" }],
    ["x", { event: "" }],
    ["a\nb", { event: "t", id: "7", retry: 100 }],
    ["event: inside data", { id: "9" }],
    ["", {}],
  ];
  for (const [data, fields] of cases) {
    const tagged = { ...fields, event: multiChannelEventName("ch", fields?.event) };
    assert.equal(text(tagEvent(encodeEvent(data, fields), "ch")), text(encodeEvent(data, tagged)));
  }
});

Deno.test("tagEvent finds the event line after an id line the store added", () => {
  const stored = withEventId("42", encodeEvent("v", { event: "temp" }));
  const tagged = text(tagEvent(stored, "kitchen"));
  assert.ok(tagged.includes("event: kitchen:temp\n"), tagged);
  assert.ok(tagged.includes("id: 42\n"), tagged);
  assert.ok(tagged.endsWith("data: v\n\n"), tagged);
});

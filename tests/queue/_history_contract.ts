/**
 * The behaviour every synchronous history store must have, as tests run
 * against each store (memory, SQLite).
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeEvent } from "../../queue/encode_event.ts";
import {
  DuplicateEventIdError,
  type HistoryOptions,
  type HistoryReplay,
  type StoredEvent,
} from "../../queue/history.ts";

/** A synchronous store under test. */
export interface SyncStore {
  append(channel: string, event: { id?: string; bytes: Uint8Array }): StoredEvent;
  since(channels: readonly string[], lastId?: string, options?: { last?: number }): HistoryReplay;
  channels(): readonly string[];
  close(): void;
  readonly size: number;
}

const dec = new TextDecoder();

function ids(r: HistoryReplay): string[] {
  return r.events.map((e) => e.id);
}

function add(store: SyncStore, channel: string, data: string, id?: string): StoredEvent {
  return store.append(channel, { id, bytes: encodeEvent(data, id === undefined ? {} : { id }) });
}

/**
 * Registers the contract tests for a store.
 *
 * @param name Store name for test titles.
 * @param make Creates a fresh store with the given options.
 */
export function historyContract(
  name: string,
  make: (options: HistoryOptions) => SyncStore,
): void {
  Deno.test(`${name}: assigned ids are increasing numeric strings and the bytes carry them`, () => {
    const s = make({ firstId: 100 });
    try {
      const a = add(s, "a", "x");
      const b = add(s, "b", "y");
      const c = add(s, "a", "z");
      assert.deepEqual([a.id, b.id, c.id], ["100", "101", "102"]);
      assert.equal(dec.decode(a.bytes), "id: 100\ndata: x\n\n");
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: ids start above the clock by default`, () => {
    const before = Date.now() * 1000;
    const s = make({});
    try {
      assert.ok(Number(add(s, "a", "x").id) >= before);
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: publisher ids are kept, unique per channel, and numeric ones move the sequence`, () => {
    const s = make({ firstId: 1 });
    try {
      const given = add(s, "a", "x", "500");
      assert.equal(given.id, "500");
      assert.equal(dec.decode(given.bytes), "id: 500\ndata: x\n\n");
      assert.throws(() => add(s, "a", "again", "500"), DuplicateEventIdError);
      assert.equal(add(s, "b", "other channel", "500").id, "500");
      assert.equal(add(s, "a", "y").id, "501");
      assert.equal(add(s, "a", "z", "abc").id, "abc");
      assert.equal(add(s, "a", "w").id, "502");
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: since gives the events after an id in order, without a gap`, () => {
    const s = make({ firstId: 1 });
    try {
      for (let i = 0; i < 5; i++) add(s, "a", `e${i}`);
      const r = s.since(["a"], "2");
      assert.deepEqual(ids(r), ["3", "4", "5"]);
      assert.equal(r.gap, false);
      assert.equal(r.earliest, "1");
      assert.equal(r.latest, "5");
      assert.deepEqual(ids(s.since(["a"], "5")), []);
      assert.equal(s.since(["a"], "5").gap, false);
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: without an id, since gives no events, only the bounds`, () => {
    const s = make({ firstId: 1 });
    try {
      for (let i = 0; i < 3; i++) add(s, "a", `e${i}`);
      assert.deepEqual(s.since(["a"]), { events: [], gap: false, earliest: "1", latest: "3" });
      assert.deepEqual(s.since(["nobody"]), {
        events: [],
        gap: false,
        earliest: null,
        latest: null,
      });
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: an expired or unknown id is a gap followed by all that is retained`, () => {
    const s = make({ firstId: 1, maxEvents: 3 });
    try {
      for (let i = 0; i < 6; i++) add(s, "a", `e${i}`);
      assert.equal(s.size, 3);
      const expired = s.since(["a"], "2");
      assert.equal(expired.gap, true);
      assert.deepEqual(ids(expired), ["4", "5", "6"]);
      assert.equal(expired.earliest, "4");
      const unknown = s.since(["a"], "no-such-id");
      assert.equal(unknown.gap, true);
      assert.deepEqual(ids(unknown), ["4", "5", "6"]);
      // The oldest retained id is still a clean resume point.
      assert.equal(s.since(["a"], "4").gap, false);
      const empty = s.since(["quiet"], "1");
      assert.deepEqual(empty, { events: [], gap: true, earliest: null, latest: null });
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: the byte bound drops the oldest events but keeps the newest`, () => {
    const one = encodeEvent("x".repeat(100)).length + "id: 1\n".length;
    const s = make({ firstId: 1, maxBytes: one * 3 });
    try {
      for (let i = 0; i < 5; i++) add(s, "a", "x".repeat(100));
      assert.deepEqual(ids(s.since(["a"], "nope")), ["3", "4", "5"]);
      add(s, "a", "y".repeat(10 * one));
      assert.deepEqual(ids(s.since(["a"], "nope")), ["6"]);
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: several channels merge in publication order and a hole in one is a gap`, () => {
    const s = make({ firstId: 1, maxEvents: 2 });
    try {
      add(s, "a", "a1"); // 1
      add(s, "b", "b1"); // 2
      add(s, "a", "a2"); // 3
      add(s, "b", "b2"); // 4
      const r = s.since(["a", "b"], "2");
      assert.deepEqual(ids(r), ["3", "4"]);
      assert.equal(r.gap, false);
      add(s, "b", "b3"); // 5: drops 2
      add(s, "b", "b4"); // 6: drops 4
      const late = s.since(["a", "b"], "3");
      assert.equal(late.gap, true, "b dropped 4, published after 3");
      assert.deepEqual(ids(late), ["5", "6"]);
      assert.equal(s.since(["a"], "3").gap, false, "a alone lost nothing after 3");
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: since with last gives each channel's newest events in order (rewind)`, () => {
    const s = make({ firstId: 1, maxEvents: 5 });
    try {
      add(s, "a", "a1"); // 1
      add(s, "b", "b1"); // 2
      add(s, "a", "a2"); // 3
      add(s, "a", "a3"); // 4
      const r = s.since(["a", "b", "none"], undefined, { last: 1 });
      assert.deepEqual(ids(r), ["2", "4"]);
      assert.equal(r.gap, false);
      assert.deepEqual(ids(s.since(["a", "b"], undefined, { last: 2 })), ["2", "3", "4"]);
      assert.deepEqual(ids(s.since(["a"], undefined, { last: 99 })), ["1", "3", "4"]);
      assert.deepEqual(ids(s.since(["a"], "3", { last: 1 })), ["4"], "last is ignored with an id");
      assert.deepEqual(s.since(["a"], undefined, { last: 2 }).events.map((e) => e.channel), [
        "a",
        "a",
      ]);
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: channels lists the channels with retained events`, () => {
    const s = make({ firstId: 1 });
    try {
      add(s, "x/1", "a");
      add(s, "x/2", "b");
      assert.deepEqual([...s.channels()].sort(), ["x/1", "x/2"]);
    } finally {
      s.close();
    }
  });

  Deno.test(`${name}: limits are checked at construction`, () => {
    assert.throws(() => make({ maxEvents: 0 }), /maxEvents must be a positive integer: received 0/);
    assert.throws(() => make({ maxBytes: -1 }), /maxBytes must be a positive integer: received -1/);
    assert.throws(() => make({ firstId: 1.5 }), /firstId must be a non-negative integer/);
  });
}

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { encodeEvent } from "../../queue/encode_event.ts";
import { SqliteHistory } from "../../queue/sqlite_history.ts";
import { historyContract } from "./_history_contract.ts";

historyContract("SqliteHistory", (options) => {
  const dir = Deno.makeTempDirSync();
  let store: SqliteHistory;
  try {
    store = new SqliteHistory(`${dir}/h.db`, options);
  } catch (err) {
    Deno.removeSync(dir, { recursive: true });
    throw err;
  }
  return {
    append: (c, e) => store.append(c, e),
    since: (c, id, o) => store.since(c, id, o),
    channels: () => store.channels(),
    get size() {
      return store.size;
    },
    close() {
      store.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
});

function tempFile(): { path: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync();
  return {
    path: `${dir}/history.db`,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

Deno.test("SqliteHistory: events, gaps and ids survive reopening the file", () => {
  using f = tempFile();
  const first = new SqliteHistory(f.path, { maxEvents: 3, firstId: 1 });
  for (let i = 0; i < 5; i++) first.append("a", { bytes: encodeEvent(`e${i}`) });
  first.append("a", { id: "9000", bytes: encodeEvent("given", { id: "9000" }) });
  first.close();

  const again = new SqliteHistory(f.path, { maxEvents: 3, firstId: 1 });
  try {
    assert.equal(again.size, 3);
    const r = again.since(["a"], "4");
    assert.deepEqual(r.events.map((e) => e.id), ["5", "9000"]);
    assert.equal(r.gap, false);
    assert.equal(new TextDecoder().decode(r.events[0].bytes), "id: 5\ndata: e4\n\n");
    const expired = again.since(["a"], "2");
    assert.equal(expired.gap, true, "the dropped position is remembered across the restart");
    assert.equal(expired.earliest, "4");
    // New ids continue past every id seen before, also the publisher's numeric one.
    assert.equal(again.append("a", { bytes: encodeEvent("new") }).id, "9001");
  } finally {
    again.close();
  }
});

Deno.test("SqliteHistory: ids continue past dropped ones after a restart", () => {
  using f = tempFile();
  const first = new SqliteHistory(f.path, { maxEvents: 1, firstId: 1 });
  first.append("a", { id: "777", bytes: encodeEvent("x", { id: "777" }) });
  first.append("a", { id: "zzz", bytes: encodeEvent("x", { id: "zzz" }) }); // drops 777
  first.close();
  const again = new SqliteHistory(f.path, { maxEvents: 1, firstId: 1 });
  try {
    const next = Number(again.append("b", { bytes: encodeEvent("y") }).id);
    assert.ok(next > 777, `${next} > 777`);
  } finally {
    again.close();
  }
});

Deno.test("SqliteHistory: retention limits hold on disk", () => {
  using f = tempFile();
  const h = new SqliteHistory(f.path, { maxEvents: 50, firstId: 1 });
  for (let i = 0; i < 500; i++) h.append(i % 2 ? "a" : "b", { bytes: encodeEvent(`e${i}`) });
  h.close();
  const db = new DatabaseSync(f.path);
  try {
    const rows = db.prepare(
      "SELECT channel, count(*) AS n FROM events GROUP BY channel ORDER BY channel",
    )
      .all();
    assert.deepEqual(rows.map((r) => [r.channel, r.n]), [["a", 50], ["b", 50]]);
  } finally {
    db.close();
  }
});

Deno.test("SqliteHistory: options are checked and a closed store refuses work", () => {
  using f = tempFile();
  assert.throws(
    () => new SqliteHistory(f.path, { synchronous: "off" as "full" }),
    /synchronous must be "normal" or "full": received "off"/,
  );
  const h = new SqliteHistory(f.path, { synchronous: "full" });
  h.close();
  h.close();
  assert.throws(() => h.append("a", { bytes: encodeEvent("x") }), /closed/);
});

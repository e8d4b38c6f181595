import assert from "node:assert/strict";
import type { CloseReason, Session, SessionSocket } from "../../sessions/session.ts";
import { SessionTable, SessionTableFullError } from "../../sessions/session_table.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (s: string) => encoder.encode(s);

interface PendingWrite {
  bytes: Uint8Array;
  resolve: (n: number) => void;
  reject: (err: Error) => void;
}

/**
 * A socket under the test's control. In `auto` mode each write settles on the
 * next microtask, taking at most `chunk` bytes; in `manual` mode writes stay
 * in flight until `complete()` or `fail()`.
 */
class FakeSocket implements SessionSocket {
  /** The bytes of each write call, as offered. */
  readonly calls: Uint8Array[] = [];
  /** The bytes accepted so far, in order. */
  readonly received: number[] = [];
  closes = 0;
  inFlight = 0;
  maxInFlight = 0;
  #pending: PendingWrite[] = [];

  constructor(
    readonly mode: "auto" | "manual" = "auto",
    readonly chunk = Infinity,
    readonly failWith?: Error,
  ) {}

  write(data: Uint8Array): Promise<number> {
    this.calls.push(data.slice());
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<number>((resolve, reject) => {
      const w: PendingWrite = { bytes: data, resolve, reject };
      if (this.mode === "manual") {
        this.#pending.push(w);
      } else {
        queueMicrotask(() => this.failWith ? this.#fail(w, this.failWith) : this.#accept(w));
      }
    });
  }

  /** Settles the oldest write in flight, accepting all of it. */
  complete(): void {
    const w = this.#pending.shift();
    assert.ok(w, "no write in flight");
    this.#accept(w);
  }

  /** Fails the oldest write in flight. */
  fail(err: Error = new Deno.errors.BrokenPipe("broken pipe")): void {
    const w = this.#pending.shift();
    assert.ok(w, "no write in flight");
    this.#fail(w, err);
  }

  get text(): string {
    return decoder.decode(new Uint8Array(this.received));
  }

  close(): void {
    this.closes++;
    if (this.closes > 1) throw new Deno.errors.BadResource("already closed");
  }

  #accept(w: PendingWrite): void {
    const n = Math.min(w.bytes.length, this.chunk);
    for (let i = 0; i < n; i++) this.received.push(w.bytes[i]);
    this.inFlight--;
    w.resolve(n);
  }

  #fail(w: PendingWrite, err: Error): void {
    this.inFlight--;
    w.reject(err);
  }
}

const info = (n = 1) => ({ remoteAddr: `127.0.0.1:${5000 + n}`, channels: ["a"] });

/** Lets pending microtasks and promise continuations run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

function freeRecorder() {
  const calls: { ctx: unknown; reason: CloseReason }[] = [];
  return { calls, free: (ctx: unknown, reason: CloseReason) => calls.push({ ctx, reason }) };
}

Deno.test("SessionTable opens sessions up to capacity then throws SessionTableFullError", () => {
  const table = new SessionTable(2);
  const a = table.open(new FakeSocket(), info(1));
  const b = table.open(new FakeSocket(), info(2));
  assert.notEqual(a.id, b.id);
  assert.equal(table.full, true);
  assert.throws(
    () => table.open(new FakeSocket(), info(3)),
    (err: unknown) => err instanceof SessionTableFullError && err.capacity === 2,
  );
  assert.equal(table.size, 2);
  assert.equal(table.stats.rejected, 1);
  // A freed slot can be used again, with a fresh id.
  a.close("client-closed");
  const c = table.open(new FakeSocket(), info(3));
  assert.ok(c.id !== a.id && c.id !== b.id);
});

Deno.test("SessionTable keeps the session's info and looks sessions up by id", () => {
  const table = new SessionTable(4);
  const s = table.open(new FakeSocket(), {
    remoteAddr: "127.0.0.1:4242",
    channels: ["x", "y"],
    lastEventId: "17",
  });
  assert.equal(table.get(s.id), s);
  assert.equal(s.remoteAddr, "127.0.0.1:4242");
  assert.deepEqual(s.channels, ["x", "y"]);
  assert.equal(s.lastEventId, "17");
  assert.equal(typeof s.connectedAt, "number");
  assert.deepEqual([...table], [s]);
  s.close();
  assert.equal(table.get(s.id), undefined);
  assert.deepEqual([...table], []);
});

Deno.test("SessionTable reserve holds a slot that open consumes; release frees it once", () => {
  const table = new SessionTable(1);
  const release = table.reserve();
  assert.ok(release);
  assert.equal(table.full, true);
  assert.equal(table.reserve(), undefined, "second reservation refused");
  assert.throws(() => table.open(new FakeSocket(), info()), SessionTableFullError);
  assert.equal(table.stats.rejected, 2);
  release();
  release(); // idempotent: does not free a slot that is not held
  assert.equal(table.full, false);
  const again = table.reserve()!;
  const s = table.open(new FakeSocket(), info(), again);
  assert.equal(table.size, 1);
  again(); // already consumed by open
  assert.equal(table.full, true);
  assert.equal(table.reserve(), undefined);
  s.close();
  assert.equal(table.full, false);
});

Deno.test("SessionTable validates its options with messages naming the value", () => {
  assert.throws(() => new SessionTable(0), /maxClients must be a positive integer: received 0/);
  assert.throws(() => new SessionTable(1.5), RangeError);
  assert.throws(() => new SessionTable(1, { maxPendingBytes: 0 }), /maxPendingBytes.*received 0/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new SessionTable(1, { slowConsumer: "kill" as any }),
    /slowConsumer must be "disconnect" or "drop": received "kill"/,
  );
});

Deno.test("free callback runs exactly once on client close, with context and reason", () => {
  const closes: CloseReason[] = [];
  const table = new SessionTable(2, { onClose: (_s, reason) => closes.push(reason) });
  const socket = new FakeSocket();
  const s = table.open(socket, info());
  const rec = freeRecorder();
  const ctx = { user: "u" };
  s.setContext(ctx, rec.free);
  s.close("client-closed");
  s.close("client-closed");
  s.close("shutdown");
  assert.deepEqual(rec.calls, [{ ctx, reason: "client-closed" }]);
  assert.equal(s.context, undefined, "context released");
  assert.equal(s.closeReason, "client-closed");
  assert.equal(s.closed, true);
  assert.equal(socket.closes, 1);
  assert.deepEqual(closes, ["client-closed"]);
  assert.equal(table.size, 0);
  assert.equal(s.write(bytes("x")), false, "a closed session refuses writes");
});

Deno.test("free callback runs exactly once on a write error and the slot is freed", async () => {
  const table = new SessionTable(1);
  const socket = new FakeSocket("auto", Infinity, new Deno.errors.BrokenPipe("gone"));
  const s = table.open(socket, info());
  const rec = freeRecorder();
  s.setContext("ctx", rec.free);
  assert.equal(s.write(bytes("data: 1\n\n")), true, "accepted before the failure is known");
  s.write(bytes("data: 2\n\n"));
  await settle();
  assert.deepEqual(rec.calls, [{ ctx: "ctx", reason: "write-error" }]);
  assert.equal(s.closeReason, "write-error");
  assert.equal(table.size, 0);
  assert.equal(table.stats.closed["write-error"], 1);
  s.close("client-closed");
  assert.equal(rec.calls.length, 1);
  assert.equal(table.full, false);
});

Deno.test("a write that fails after close keeps the first close reason and one free call", async () => {
  const table = new SessionTable(1);
  const socket = new FakeSocket("manual");
  const s = table.open(socket, info());
  const rec = freeRecorder();
  s.setContext(1, rec.free);
  s.write(bytes("x"));
  s.close("client-closed");
  socket.fail(new Deno.errors.BadResource("closed"));
  await settle();
  assert.deepEqual(rec.calls, [{ ctx: 1, reason: "client-closed" }]);
  assert.equal(table.stats.closed["write-error"], 0);
});

Deno.test("free callback runs exactly once on triggerClose", () => {
  const table = new SessionTable(2);
  const s = table.open(new FakeSocket(), info());
  const rec = freeRecorder();
  s.setContext("c", rec.free);
  assert.equal(table.triggerClose(s.id), true);
  assert.equal(table.triggerClose(s.id), false, "no longer open");
  assert.equal(table.triggerClose(9999), false);
  assert.deepEqual(rec.calls, [{ ctx: "c", reason: "closed" }]);
  const t = table.open(new FakeSocket(), info());
  const rec2 = freeRecorder();
  t.setContext("d", rec2.free);
  table.triggerClose(t.id, "write-timeout");
  assert.deepEqual(rec2.calls, [{ ctx: "d", reason: "write-timeout" }]);
});

Deno.test("closeAll runs every free callback exactly once with the shutdown reason", () => {
  const table = new SessionTable(5);
  const recs = Array.from({ length: 5 }, (_, i) => {
    const s = table.open(new FakeSocket(), info(i));
    const rec = freeRecorder();
    s.setContext(i, rec.free);
    return rec;
  });
  table.closeAll("shutdown");
  table.closeAll("shutdown");
  recs.forEach((rec, i) => assert.deepEqual(rec.calls, [{ ctx: i, reason: "shutdown" }]));
  assert.equal(table.size, 0);
  assert.equal(table.stats.closed.shutdown, 5);
});

Deno.test("the free callback runs before the table's onClose hook", () => {
  const order: string[] = [];
  const table = new SessionTable(1, { onClose: () => order.push("onClose") });
  const s = table.open(new FakeSocket(), info());
  s.setContext(null, () => order.push("free"));
  s.close();
  assert.deepEqual(order, ["free", "onClose"]);
});

Deno.test("partial writes are looped until every byte arrives in order", async () => {
  const table = new SessionTable(1);
  const socket = new FakeSocket("auto", 3);
  const s = table.open(socket, info());
  let expected = "";
  for (let i = 0; i < 20; i++) {
    const event = `id: ${i}\ndata: ${"x".repeat(i)}\n\n`;
    expected += event;
    assert.equal(s.write(bytes(event)), true);
  }
  await s.idle();
  assert.equal(socket.text, expected);
  assert.ok(socket.calls.every((c) => c.length > 0));
  assert.ok(socket.calls.length >= Math.ceil(expected.length / 3));
  assert.equal(socket.maxInFlight, 1, "never two writes at once");
  assert.equal(s.bytesSent, expected.length);
  assert.equal(s.pendingBytes, 0);
  assert.equal(s.eventsSent, 20);
});

Deno.test("events written while a write is in flight are coalesced into one later write", async () => {
  const table = new SessionTable(1);
  const socket = new FakeSocket("manual");
  const s = table.open(socket, info());
  s.write(bytes("A;"));
  assert.equal(socket.calls.length, 1);
  s.write(bytes("B;"));
  s.write(bytes("C;"));
  s.write(bytes("D;"));
  assert.equal(socket.calls.length, 1, "no second write while one is in flight");
  assert.equal(s.pendingBytes, 8);
  socket.complete();
  await settle();
  assert.equal(socket.calls.length, 2);
  assert.equal(decoder.decode(socket.calls[1]), "B;C;D;", "one write, in order");
  const idle = s.idle();
  socket.complete();
  await idle;
  assert.equal(socket.text, "A;B;C;D;");
  assert.equal(s.pendingBytes, 0);
  assert.equal(socket.maxInFlight, 1);
});

Deno.test("slow consumer over its budget is disconnected and pendingBytes stays in budget", async () => {
  const table = new SessionTable(2, { maxPendingBytes: 10, slowConsumer: "disconnect" });
  const socket = new FakeSocket("manual");
  const s = table.open(socket, info());
  const rec = freeRecorder();
  s.setContext("slow", rec.free);
  const other = table.open(new FakeSocket(), info(2));
  assert.equal(s.write(bytes("123456")), true);
  assert.equal(s.write(bytes("7890")), true);
  assert.equal(s.pendingBytes, 10);
  assert.equal(s.write(bytes("x")), false, "one byte over the budget");
  assert.ok(s.pendingBytes <= 10);
  assert.deepEqual(rec.calls, [{ ctx: "slow", reason: "slow-consumer" }]);
  assert.equal(table.stats.closed["slow-consumer"], 1);
  assert.equal(other.closed, false, "other sessions are not disturbed");
  assert.equal(other.write(bytes("still fine")), true);
  socket.fail(new Deno.errors.BadResource("closed"));
  await other.idle();
  await settle();
  assert.equal(rec.calls.length, 1);
});

Deno.test("drop policy skips events over budget, counts them, and keeps the session", async () => {
  const table = new SessionTable(1, { maxPendingBytes: 10, slowConsumer: "drop" });
  const socket = new FakeSocket("manual");
  const s = table.open(socket, info());
  const accepted: string[] = [];
  for (let i = 0; i < 10; i++) {
    const ev = `e${i};`;
    if (s.write(bytes(ev))) accepted.push(ev);
    assert.ok(s.pendingBytes <= 10, `pendingBytes ${s.pendingBytes} over budget`);
  }
  assert.deepEqual(accepted, ["e0;", "e1;", "e2;"]);
  assert.equal(s.droppedEvents, 7);
  assert.equal(s.droppedTotal, 7);
  assert.equal(s.closed, false);
  socket.complete(); // "e0;"
  await settle();
  socket.complete(); // "e1;e2;"
  await s.idle();
  assert.equal(socket.text, "e0;e1;e2;");
  assert.equal(s.droppedEvents, 0, "reset after a successful write");
  assert.equal(s.droppedTotal, 7);
  assert.equal(s.write(bytes("after;")), true);
  const idle = s.idle();
  socket.complete();
  await idle;
  assert.equal(socket.text, "e0;e1;e2;after;");
  s.close();
});

Deno.test("SessionTable stats count opened, open, rejected and closed by reason", async () => {
  const table = new SessionTable(3);
  const a = table.open(new FakeSocket(), info(1));
  const b = table.open(new FakeSocket(), info(2));
  const c = table.open(
    new FakeSocket("auto", Infinity, new Deno.errors.ConnectionReset("x")),
    info(3),
  );
  assert.throws(() => table.open(new FakeSocket(), info(4)), SessionTableFullError);
  assert.equal(table.reserve(), undefined);
  a.close("client-closed");
  table.triggerClose(b.id);
  c.write(bytes("x"));
  await settle();
  const d = table.open(new FakeSocket(), info(5));
  table.closeAll("shutdown");
  assert.equal(d.closeReason, "shutdown");
  assert.deepEqual(table.stats, {
    open: 0,
    capacity: 3,
    opened: 4,
    rejected: 2,
    closed: {
      "client-closed": 1,
      "write-error": 1,
      "slow-consumer": 0,
      "write-timeout": 0,
      "shutdown": 1,
      "closed": 1,
    },
  });
});

Deno.test("idle resolves once the backlog is written, and at once when closed", async () => {
  const table = new SessionTable(1);
  const socket = new FakeSocket("manual");
  const s: Session = table.open(socket, info());
  s.write(bytes("a"));
  s.write(bytes("b"));
  let idle = false;
  const p = s.idle().then(() => idle = true);
  socket.complete();
  await settle();
  assert.equal(idle, false, "backlog still in flight");
  socket.complete();
  await p;
  assert.equal(socket.text, "ab");
  s.write(bytes("c"));
  const q = s.idle();
  s.close("shutdown");
  await q;
  socket.fail(new Deno.errors.BadResource("closed"));
  await settle();
});

Deno.test("a throwing free callback still frees the slot and reaches onClose", () => {
  const seen: [CloseReason, unknown][] = [];
  const table = new SessionTable(1, { onClose: (_s, reason, error) => seen.push([reason, error]) });
  const s = table.open(new FakeSocket(), info());
  const boom = new Error("free failed");
  s.setContext(1, () => {
    throw boom;
  });
  s.close("client-closed"); // does not throw
  assert.deepEqual(seen, [["client-closed", boom]]);
  assert.equal(table.size, 0);
  assert.equal(table.full, false);
});

Deno.test("a throwing free callback on a write error does not escape as an uncaught error", async () => {
  const seen: unknown[] = [];
  const table = new SessionTable(1, { onClose: (_s, _r, error) => seen.push(error) });
  const s = table.open(new FakeSocket("auto", Infinity, new Deno.errors.BrokenPipe("x")), info());
  s.setContext(1, () => {
    throw new Error("free failed");
  });
  s.write(bytes("x"));
  await settle();
  assert.equal(s.closeReason, "write-error");
  assert.equal(seen.length, 1);
  assert.match(String(seen[0]), /free failed/);
});

Deno.test("closeAll closes every session even when a free callback throws", () => {
  const table = new SessionTable(3);
  const sessions = [0, 1, 2].map((i) => table.open(new FakeSocket(), info(i)));
  sessions[0].setContext(0, () => {
    throw new Error("first free fails");
  });
  const rec = freeRecorder();
  sessions[1].setContext(1, rec.free);
  sessions[2].setContext(2, rec.free);
  table.closeAll("shutdown");
  assert.equal(table.size, 0);
  assert.deepEqual(rec.calls, [{ ctx: 1, reason: "shutdown" }, { ctx: 2, reason: "shutdown" }]);
});

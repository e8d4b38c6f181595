/**
 * Internal: subscriber engine on `Deno.connect`: one pending `conn.read()` per
 * connection. Portable, but every read is a Deno op (several µs), so at high
 * event rates or many connections the client costs more CPU than the epoll engine.
 *
 * @module
 */
import type { Engine, EngineOptions } from "./_engine.ts";
import { monoNs } from "./_libc.ts";
import { newStreamState, parseHead, type StreamState } from "./_sse_parser.ts";

interface DenoConn {
  conn: Deno.TcpConn | null;
  /** handshake start, ns; -1 once timed out */
  startNs: number;
  stream: StreamState;
}

/** Engine on `Deno.connect`. */
export class DenoEngine implements Engine {
  readonly #o: EngineOptions;
  readonly #handshaking = new Set<DenoConn>();
  readonly #streams = new Set<DenoConn>();
  #next = 0;
  #stopping = false;
  #gate: Promise<void> | null = null;

  /** @param options what to open and where to count */
  constructor(options: EngineOptions) {
    this.#o = options;
  }

  async connectPhase(): Promise<void> {
    const scan = setInterval(() => this.#scanTimeouts(), 200);
    try {
      const workers: Promise<void>[] = [];
      for (let i = 0; i < Math.min(this.#o.parallel, this.#o.conns); i++) {
        workers.push(this.#worker());
      }
      await Promise.all(workers);
    } finally {
      clearInterval(scan);
    }
  }

  peerClosed(): number | null {
    return null;
  }

  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const c of this.#handshaking) closeQuietly(c.conn);
    for (const c of this.#streams) closeQuietly(c.conn);
  }

  #scanTimeouts(): void {
    const now = monoNs();
    for (const c of this.#handshaking) {
      if (c.startNs >= 0 && now - c.startNs > this.#o.timeoutNs) {
        c.startNs = -1;
        closeQuietly(c.conn);
      }
    }
  }

  async #worker(): Promise<void> {
    const o = this.#o;
    const k = o.counters;
    while (!this.#stopping && this.#next < o.conns) {
      this.#next++;
      const c: DenoConn = { conn: null, startNs: monoNs(), stream: newStreamState(false) };
      const buf = new Uint8Array(o.rbuf);
      this.#handshaking.add(c);
      const [bodyStart, n] = await this.#handshake(c, buf);
      this.#handshaking.delete(c);
      if (bodyStart < 0) {
        closeQuietly(c.conn);
        continue;
      }
      k.streamStarted(o.stats);
      this.#streams.add(c);
      this.#read(c, buf, bodyStart, n);
    }
  }

  /** Connect, send the GET, read the head: [body offset, bytes in buf], or [-1, 0] (counted). */
  async #handshake(c: DenoConn, buf: Uint8Array): Promise<[number, number]> {
    const o = this.#o;
    const k = o.counters;
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: o.host, port: o.port });
    } catch (e) {
      if (e instanceof Deno.errors.ConnectionRefused) k.refused++;
      else k.failed++;
      return [-1, 0];
    }
    c.conn = conn;
    if (this.#stopping) return [-1, 0];
    try {
      let off = 0;
      while (off < o.request.length) off += await conn.write(o.request.subarray(off));
      let n = 0;
      for (;;) {
        if (n === buf.length) {
          k.failed++;
          return [-1, 0];
        }
        const r = await conn.read(buf.subarray(n));
        if (r === null) {
          k.failed++;
          return [-1, 0];
        }
        n += r;
        const head = parseHead(buf, n);
        if (head === null) continue;
        if (!k.head(head)) return [-1, 0];
        c.stream.chunked = head.chunked;
        return [head.end, n];
      }
    } catch {
      if (c.startNs < 0) k.timeouts++;
      else k.failed++;
      return [-1, 0];
    }
  }

  /** One shared timer for every lazy reader. */
  #tick(): Promise<void> {
    if (this.#gate === null) {
      this.#gate = new Promise((resolve) =>
        setTimeout(() => {
          this.#gate = null;
          resolve();
        }, this.#o.readDelayMs)
      );
    }
    return this.#gate;
  }

  async #read(c: DenoConn, buf: Uint8Array, bodyStart: number, n: number): Promise<void> {
    const o = this.#o;
    const k = o.counters;
    const conn = c.conn!;
    if (bodyStart < n) o.sse.feed(c.stream, buf, bodyStart, n, monoNs());
    if (o.mode === "stall") return; // never read again; closed at exit
    try {
      for (;;) {
        const r = await conn.read(buf);
        if (r === null) {
          if (!this.#stopping) k.closedByServer++;
          break;
        }
        k.reads++;
        o.sse.feed(c.stream, buf, 0, r, monoNs());
        if (o.stats !== null) o.stats.events = o.sse.events;
        if (o.readDelayMs > 0 && !this.#stopping) await this.#tick();
      }
    } catch {
      if (!this.#stopping) k.resetByServer++;
    }
    if (!this.#stopping) {
      k.active--;
      this.#streams.delete(c);
      closeQuietly(conn);
    }
  }
}

function closeQuietly(c: Deno.TcpConn | null): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

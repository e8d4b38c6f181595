/**
 * Internal: subscriber engine on non-blocking sockets and one epoll instance,
 * called through FFI (the C `sseload`'s design): one shared read buffer, a read
 * costs one syscall plus a few hundred ns of FFI, so one load core can follow a
 * server near the machine's limit. Linux x86_64 only; needs `--allow-ffi`.
 *
 * The loop polls (zero, then 1 ms timeout) while events keep coming and yields to
 * the event loop (an epoll wait on a helper thread) when idle and at least every
 * 5 ms, so timers and signals keep working.
 *
 * @module
 */
import type { Engine, EngineOptions } from "./_engine.ts";
import { monoNs } from "./_libc.ts";
import { newStreamState, parseHead, type StreamState } from "./_sse_parser.ts";
import {
  closeSocket,
  connectNonBlocking,
  EAGAIN,
  ECONNREFUSED,
  EINPROGRESS,
  EINTR,
  Epoll,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  readSocket,
  sockaddrIn,
  socketError,
  writeSocket,
} from "./_sockets.ts";

const CONNECTING = 0;
const HEAD = 1;
const STREAM = 2;
const DONE = 3;

const HEAD_MAX = 8192;
const YIELD_NS = 5e6;

interface EpollConn {
  fd: number;
  state: number;
  startNs: number;
  sent: number;
  head: Uint8Array | null;
  headLen: number;
  stream: StreamState;
}

/** Engine on epoll + non-blocking sockets through FFI. */
export class EpollEngine implements Engine {
  readonly #o: EngineOptions;
  readonly #ep = new Epoll(4096);
  readonly #addr: Uint8Array;
  readonly #conns: EpollConn[] = [];
  readonly #rbuf: Uint8Array;
  readonly #rbufLen: bigint;
  #next = 0;
  #pending = 0;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #phaseDone: (() => void) | null = null;

  /** @param options what to open and where to count */
  constructor(options: EngineOptions) {
    this.#o = options;
    this.#addr = sockaddrIn(options.host, options.port);
    this.#rbuf = new Uint8Array(Math.max(options.rbuf, 256 * 1024));
    this.#rbufLen = BigInt(this.#rbuf.length);
  }

  connectPhase(): Promise<void> {
    const done = new Promise<void>((resolve) => this.#phaseDone = resolve);
    this.#loop ??= this.#run();
    return done;
  }

  peerClosed(): number | null {
    // A peer's FIN or RST shows as EPOLLRDHUP / EPOLLHUP / EPOLLERR even with unread data.
    if (this.#stopping) return null;
    const probe = new Epoll(1024);
    let watched = 0;
    for (let i = 0; i < this.#conns.length; i++) {
      const c = this.#conns[i];
      if (c.state === STREAM && probe.add(c.fd, EPOLLRDHUP, i) === 0) watched++;
    }
    let closed = 0;
    for (let seen = 0; seen < watched;) {
      const n = probe.waitSync(0);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const c = this.#conns[probe.dataAt(i)];
        probe.remove(c.fd);
        if (probe.maskAt(i) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) closed++;
      }
      seen += n;
    }
    probe.close();
    return closed;
  }

  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const c of this.#conns) {
      if (c.state !== DONE) {
        c.state = DONE;
        closeSocket(c.fd, true);
      }
    }
    this.#ep.close();
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const ep = this.#ep;
    let lastYield = monoNs();
    let lastScan = lastYield;
    while (!this.#stopping) {
      const now = monoNs();
      this.#startConnections();
      if (this.#phaseDone !== null && this.#next === o.conns && this.#pending === 0) {
        this.#phaseDone();
        this.#phaseDone = null;
      }
      if (this.#pending > 0 && now - lastScan > 200e6) {
        lastScan = now;
        this.#scanTimeouts(now);
      }
      let n = -1;
      if (now - lastYield <= YIELD_NS) {
        n = ep.waitSync(0);
        // nothing yet: a short blocking wait is far cheaper than a hop to a helper thread
        if (n === 0) n = ep.waitSync(1);
      }
      if (n <= 0) {
        // idle (or due to yield): wait on a helper thread so timers and signals run
        const connecting = this.#next < o.conns && this.#pending < o.parallel;
        n = await ep.wait(connecting ? 0 : 10);
        lastYield = monoNs();
        if (this.#stopping) break;
      }
      for (let i = 0; i < n; i++) this.#onEvent(ep.dataAt(i), ep.maskAt(i));
      if (o.stats !== null) o.stats.events = o.sse.events;
      if (o.readDelayMs > 0 && this.#phaseDone === null && n > 0) {
        await new Promise((r) => setTimeout(r, o.readDelayMs));
        lastYield = monoNs();
      }
    }
  }

  #startConnections(): void {
    const o = this.#o;
    const k = o.counters;
    while (this.#next < o.conns && this.#pending < o.parallel && !this.#stopping) {
      const id = this.#next++;
      const [fd, err] = connectNonBlocking(this.#addr, o.mode === "stall" ? o.stallRcvbuf : 0);
      const c: EpollConn = {
        fd,
        state: CONNECTING,
        startNs: monoNs(),
        sent: 0,
        head: null,
        headLen: 0,
        stream: newStreamState(false),
      };
      this.#conns.push(c);
      if (fd < 0 || (err !== 0 && err !== EINPROGRESS)) {
        if (err === ECONNREFUSED) k.refused++;
        else k.failed++;
        if (fd >= 0) closeSocket(fd);
        c.state = DONE;
        continue;
      }
      this.#pending++;
      this.#ep.add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, id);
    }
  }

  #scanTimeouts(now: number): void {
    const k = this.#o.counters;
    for (const c of this.#conns) {
      if ((c.state === CONNECTING || c.state === HEAD) && now - c.startNs > this.#o.timeoutNs) {
        k.timeouts++;
        this.#fail(c);
      }
    }
  }

  /** Drop a connection that never got its head. */
  #fail(c: EpollConn): void {
    this.#pending--;
    this.#close(c, true);
  }

  #close(c: EpollConn, reset: boolean): void {
    c.state = DONE;
    c.head = null;
    this.#ep.remove(c.fd);
    closeSocket(c.fd, reset);
  }

  #onEvent(id: number, mask: number): void {
    const c = this.#conns[id];
    if (c === undefined || c.state === DONE) return;
    const k = this.#o.counters;
    if (c.state === CONNECTING) {
      const err = socketError(c.fd);
      if (err !== 0) {
        if (err === ECONNREFUSED) k.refused++;
        else k.failed++;
        this.#fail(c);
        return;
      }
      if (!(mask & EPOLLOUT)) return;
      c.state = HEAD;
      c.head = new Uint8Array(1024);
    }
    if (c.state === HEAD) {
      if (c.sent < this.#o.request.length) {
        const w = writeSocket(c.fd, this.#o.request.subarray(c.sent));
        if (w < 0) {
          const e = errno();
          if (e !== EAGAIN && e !== EINTR) {
            k.failed++;
            this.#fail(c);
          }
          return;
        }
        c.sent += w;
        if (c.sent < this.#o.request.length) return;
        this.#ep.modify(c.fd, EPOLLIN | EPOLLRDHUP, id);
      }
      if (mask & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) this.#readHead(c);
      return;
    }
    this.#readStream(c);
  }

  #readHead(c: EpollConn): void {
    const k = this.#o.counters;
    let head = c.head!;
    if (c.headLen === head.length) {
      if (head.length >= HEAD_MAX) {
        k.failed++;
        this.#fail(c);
        return;
      }
      const bigger = new Uint8Array(head.length * 2);
      bigger.set(head);
      c.head = head = bigger;
    }
    const r = readSocket(c.fd, head.subarray(c.headLen), BigInt(head.length - c.headLen));
    if (r <= 0) {
      if (r < 0 && (errno() === EAGAIN || errno() === EINTR)) return;
      k.failed++;
      this.#fail(c);
      return;
    }
    c.headLen += r;
    const h = parseHead(head, c.headLen);
    if (h === null) return;
    this.#pending--;
    if (!k.head(h)) {
      this.#close(c, true);
      return;
    }
    const o = this.#o;
    c.state = STREAM;
    c.stream.chunked = h.chunked;
    k.streamStarted(o.stats);
    if (h.end < c.headLen) o.sse.feed(c.stream, head, h.end, c.headLen, monoNs());
    c.head = null;
    if (o.mode === "stall") this.#ep.remove(c.fd); // never read again
  }

  #readStream(c: EpollConn): void {
    const o = this.#o;
    const k = o.counters;
    const r = readSocket(c.fd, this.#rbuf, this.#rbufLen);
    if (r > 0) {
      k.reads++;
      o.sse.feed(c.stream, this.#rbuf, 0, r, monoNs());
      return;
    }
    if (r < 0) {
      const e = errno();
      if (e === EAGAIN || e === EINTR) return;
      k.resetByServer++;
    } else {
      k.closedByServer++;
    }
    k.active--;
    this.#close(c, false);
  }
}

/**
 * Internal: the few libc socket and epoll calls the epoll engine of the
 * subscriber load tool needs, through FFI (Linux x86_64). Non-blocking IPv4
 * TCP sockets only.
 *
 * @module
 */

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t results read as i32: exact for the sizes used here, and no BigInt per call.
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait_async: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
});

const sym = libc.symbols;

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EAGAIN = 11;
export const EINTR = 4;
export const EINPROGRESS = 115;
export const ECONNREFUSED = 111;
/** Bytes of one `struct epoll_event` (packed on x86_64). */
export const EPOLL_EVENT_SIZE = 12;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_LINGER = 13;
const SO_RCVBUF = 8;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;

const intBuf = new Int32Array(2);
const intBytes = new Uint8Array(intBuf.buffer);
const errnoView = new Deno.UnsafePointerView(sym.__errno_location()!);

/** errno of the last failed call on this thread. */
export function errno(): number {
  return errnoView.getInt32();
}

/** Raised when a socket call fails in a way the caller cannot handle. */
export class SocketCallError extends Error {
  constructor(call: string, code: number) {
    super(`${call} failed: errno ${code}`);
    this.name = "SocketCallError";
  }
}

/**
 * `sockaddr_in` for a dotted IPv4 address and port.
 *
 * @param host IPv4 address, e.g. `127.0.0.1`
 * @param port TCP port
 * @returns the 16-byte address
 */
export function sockaddrIn(host: string, port: number): Uint8Array {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`host must be a numeric IPv4 address: received ${host}`);
  }
  const a = new Uint8Array(16);
  const v = new DataView(a.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  a.set(parts, 4);
  return a;
}

/**
 * Start a non-blocking connect.
 *
 * @param addr from {@link sockaddrIn}
 * @param rcvbuf SO_RCVBUF to set before connecting (0: leave the kernel's autotuning)
 * @returns `[fd, errno]`: fd < 0 when no socket could be made; errno 0 (connected) or
 *   EINPROGRESS (wait for EPOLLOUT), anything else is a failure
 */
export function connectNonBlocking(addr: Uint8Array, rcvbuf = 0): [number, number] {
  const fd = sym.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return [-1, errno()];
  if (rcvbuf > 0) {
    // fixed receive buffer (no autotuning): a client that stops reading fills up quickly
    intBuf[0] = rcvbuf;
    sym.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, intBytes, 4);
  }
  const r = sym.connect(fd, addr, addr.length);
  return [fd, r === 0 ? 0 : errno()];
}

const lenBuf = new Uint32Array([4]);
const lenBytes = new Uint8Array(lenBuf.buffer);

/**
 * Pending error of a socket (SO_ERROR), 0 when connected.
 *
 * @param fd socket
 * @returns errno value
 */
export function socketError(fd: number): number {
  lenBuf[0] = 4;
  if (sym.getsockopt(fd, SOL_SOCKET, SO_ERROR, intBytes, lenBytes) !== 0) return errno();
  return intBuf[0];
}

/**
 * Close; with `reset`, SO_LINGER 0 first so the close sends RST and leaves no TIME_WAIT.
 *
 * @param fd socket
 * @param reset send RST
 */
export function closeSocket(fd: number, reset = false): void {
  if (reset) {
    intBuf[0] = 1;
    intBuf[1] = 0;
    sym.setsockopt(fd, SOL_SOCKET, SO_LINGER, intBytes, 8);
  }
  sym.close(fd);
}

/**
 * read(2).
 *
 * @param fd socket
 * @param buf destination
 * @param len at most this many bytes (a bigint: the FFI fast path for size_t)
 * @returns bytes read, 0 at EOF, -1 with {@link errno} on error
 */
export function readSocket(fd: number, buf: Uint8Array, len: bigint): number {
  return sym.read(fd, buf, len);
}

/**
 * write(2).
 *
 * @param fd socket
 * @param buf bytes
 * @returns bytes written or -1
 */
export function writeSocket(fd: number, buf: Uint8Array): number {
  return sym.write(fd, buf, BigInt(buf.length));
}

/** An epoll instance with an events buffer. */
export class Epoll {
  readonly #fd: number;
  readonly #ev = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #evView = new DataView(this.#ev.buffer);
  /** Ready events of the last wait. */
  readonly events: Uint8Array;
  readonly #view: DataView;
  readonly #max: number;

  /**
   * @param maxEvents events returned per wait
   * @throws {SocketCallError} when epoll_create1 fails
   */
  constructor(maxEvents = 4096) {
    this.#fd = sym.epoll_create1(0o2000000);
    if (this.#fd < 0) throw new SocketCallError("epoll_create1", errno());
    this.#max = maxEvents;
    this.events = new Uint8Array(maxEvents * EPOLL_EVENT_SIZE);
    this.#view = new DataView(this.events.buffer);
  }

  #ctl(op: number, fd: number, mask: number, data: number): number {
    this.#evView.setUint32(0, mask, true);
    this.#evView.setUint32(4, data, true);
    this.#evView.setUint32(8, 0, true);
    return sym.epoll_ctl(this.#fd, op, fd, this.#ev);
  }

  /** Watch fd for mask; data comes back with its events. */
  add(fd: number, mask: number, data: number): number {
    return this.#ctl(EPOLL_CTL_ADD, fd, mask, data);
  }
  /** Change the mask of a watched fd. */
  modify(fd: number, mask: number, data: number): number {
    return this.#ctl(EPOLL_CTL_MOD, fd, mask, data);
  }
  /** Stop watching fd. */
  remove(fd: number): number {
    return this.#ctl(EPOLL_CTL_DEL, fd, 0, 0);
  }

  /** Wait without blocking the thread for more than timeoutMs (blocks the event loop). */
  waitSync(timeoutMs: number): number {
    return sym.epoll_wait(this.#fd, this.events, this.#max, timeoutMs);
  }

  /** Wait on a helper thread, so timers and signals keep running meanwhile. */
  wait(timeoutMs: number): Promise<number> {
    return sym.epoll_wait_async(this.#fd, this.events, this.#max, timeoutMs);
  }

  /** Event mask of ready event i. */
  maskAt(i: number): number {
    return this.#view.getUint32(i * EPOLL_EVENT_SIZE, true);
  }
  /** Data of ready event i. */
  dataAt(i: number): number {
    return this.#view.getUint32(i * EPOLL_EVENT_SIZE + 4, true);
  }

  /** Close the epoll fd. */
  close(): void {
    sym.close(this.#fd);
  }
}

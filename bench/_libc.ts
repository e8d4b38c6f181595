/**
 * Internal helpers for the benchmark load tools that need libc through FFI:
 * a CLOCK_MONOTONIC clock shared by every process on the machine (the C
 * instruments in ../shared/bench use the same clock, so timestamps mix), and
 * a memory-mapped stats page with the same layout as `sseload --stats-shm`.
 *
 * Needs `--allow-ffi` (the bench runs with `-A`). Linux only.
 *
 * @module
 */

const libc = Deno.dlopen("libc.so.6", {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
});

const CLOCK_MONOTONIC = 1;
// struct timespec { int64 tv_sec; int64 tv_nsec; } read as int32 halves (little endian):
// seconds since boot fit in 31 bits, and no BigInt is allocated per call.
const timespec = new Int32Array(4);
const timespecBytes = new Uint8Array(timespec.buffer);

/**
 * Current CLOCK_MONOTONIC time in nanoseconds, as a number (exact below 2^53 ns,
 * i.e. about 104 days of uptime). Comparable across processes; `process.hrtime`
 * in Deno is relative to process start, so it is not.
 *
 * @returns nanoseconds since boot (monotonic)
 * @example
 * ```ts
 * const t0 = monoNs();
 * ```
 */
export function monoNs(): number {
  libc.symbols.clock_gettime(CLOCK_MONOTONIC, timespecBytes);
  return timespec[0] * 1e9 + timespec[2];
}

/** Byte size of the stats page. */
const PAGE = 4096;
/** Value of the first word once a page is initialised (same as sseload). */
export const STATS_MAGIC = 0x55E5E5E5;

const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;

/** Word indexes (uint64) in the page, as `sse_shm_t` in sseload's common.h. */
const W_MAGIC = 0;
const W_EVENTS = 1;
const W_ESTABLISHED = 2;
const W_ACTIVE = 3;
const W_READY = 4;
const W_DONE = 5;

/** Error raised when a stats page cannot be created or mapped. */
export class StatsPageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StatsPageError";
  }
}

/**
 * A live-counter page shared between a subscriber process (writer) and a
 * publisher process (reader), backed by an mmap'ed file. Layout-compatible with
 * `sseload --stats-shm` / `ssepub --follow`, so the Deno and C tools can be mixed.
 * Values are written as two 32-bit halves (no BigInt allocation on the hot path).
 */
export class StatsPage {
  readonly #u32: Uint32Array;

  private constructor(u32: Uint32Array) {
    this.#u32 = u32;
  }

  /**
   * Create (truncate) the page file and map it read-write.
   *
   * @param path file to create
   * @returns the writable page
   * @throws {StatsPageError} when the file cannot be created or mapped
   */
  static create(path: string): StatsPage {
    const page = new StatsPage(mapFile(path, true));
    page.#set(W_MAGIC, STATS_MAGIC);
    return page;
  }

  /**
   * Map an existing page read-only. Returns `null` while the file is missing or
   * not yet initialised.
   *
   * @param path file written by a subscriber
   * @returns the page or `null`
   */
  static open(path: string): StatsPage | null {
    let u32: Uint32Array;
    try {
      u32 = mapFile(path, false);
    } catch {
      return null;
    }
    const page = new StatsPage(u32);
    return page.#get(W_MAGIC) === STATS_MAGIC ? page : null;
  }

  #set(word: number, value: number): void {
    this.#u32[word * 2 + 1] = Math.floor(value / 4294967296);
    this.#u32[word * 2] = value >>> 0;
  }

  #get(word: number): number {
    return this.#u32[word * 2 + 1] * 4294967296 + this.#u32[word * 2];
  }

  /** Events dispatched, all connections. */
  get events(): number {
    return this.#get(W_EVENTS);
  }
  set events(v: number) {
    this.#set(W_EVENTS, v);
  }
  /** Connections that received a 2xx head. */
  get established(): number {
    return this.#get(W_ESTABLISHED);
  }
  set established(v: number) {
    this.#set(W_ESTABLISHED, v);
  }
  /** Connections currently streaming. */
  get active(): number {
    return this.#get(W_ACTIVE);
  }
  set active(v: number) {
    this.#set(W_ACTIVE, v);
  }
  /** True once the connect phase is over. */
  get ready(): boolean {
    return this.#get(W_READY) !== 0;
  }
  set ready(v: boolean) {
    this.#set(W_READY, v ? 1 : 0);
  }
  /** True once the subscriber finished. */
  get done(): boolean {
    return this.#get(W_DONE) !== 0;
  }
  set done(v: boolean) {
    this.#set(W_DONE, v ? 1 : 0);
  }
}

function mapFile(path: string, write: boolean): Uint32Array {
  const cpath = new TextEncoder().encode(path + "\0");
  const flags = write ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY;
  const fd = libc.symbols.open(cpath, flags, 0o644);
  if (fd < 0) throw new StatsPageError(`cannot open stats page: ${path}`);
  try {
    if (write && libc.symbols.ftruncate(fd, BigInt(PAGE)) !== 0) {
      throw new StatsPageError(`cannot size stats page: ${path}`);
    }
    if (!write && Deno.statSync(path).size < PAGE) {
      throw new StatsPageError(`stats page too short: ${path}`);
    }
    const prot = write ? PROT_READ | PROT_WRITE : PROT_READ;
    const ptr = libc.symbols.mmap(null, BigInt(PAGE), prot, MAP_SHARED, fd, 0n);
    const addr = ptr === null ? 0n : Deno.UnsafePointer.value(ptr);
    if (ptr === null || addr === 0xffffffffffffffffn) {
      throw new StatsPageError(`cannot map stats page: ${path}`);
    }
    return new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(ptr, PAGE));
  } finally {
    libc.symbols.close(fd);
  }
}

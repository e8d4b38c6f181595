/**
 * A seeded generator of hostile HTTP/1.1 request heads for the fuzz tests:
 * grammar-built heads (valid and nearly valid), then mutated (bad request
 * lines, huge or duplicated headers, NULs, bare CR/LF, invalid UTF-8,
 * truncation, bogus `Content-Length`, pipelined garbage after a valid
 * request), plus plain random bytes. Same seed, same inputs.
 *
 * @module
 */

import { concatAll } from "../../server/http/conn_io.ts";

const encoder = new TextEncoder();

/**
 * A small, fast, seedable PRNG (mulberry32). Not for cryptography.
 *
 * @example
 * ```ts
 * const rng = new Prng(42);
 * rng.int(10); // 0..9, the same sequence for the same seed
 * ```
 */
export class Prng {
  #s: number;
  /** @param seed Any 32-bit integer. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** @returns A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** @returns An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** @returns A random element. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** @returns `true` with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** What kind of input a generated case is, for reporting. */
export type FuzzKind = "grammar" | "mutated" | "random" | "pipelined";

/** One generated input. */
export interface FuzzCase {
  /** How it was made. */
  kind: FuzzKind;
  /** The bytes to parse or send. */
  bytes: Uint8Array;
}

const METHODS = [
  "GET",
  "GET",
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "get",
  "CONNECT",
  "TRACE",
  "BREW",
  "G E T",
  "",
  "GET\0",
  "GÉT",
  "X".repeat(300),
];
const PATHS = [
  "/ok",
  "/ok",
  "/events/a",
  "/events/fuzz",
  "/events/",
  "/events/a/b",
  "/",
  "*",
  "/%00",
  "/%0d%0aSet-Cookie:%20x=1",
  "/events/%0D%0Ainjected",
  "/events/a%",
  "/events/%E9",
  "/events/%ED%A0%80",
  "/events/%F0%9F%98%80",
  "/ok?lastEventId=%0d%0aid:%201",
  "/ok?a=1&a=2&&=&%zz",
  "http://127.0.0.1/ok",
  "https://x/events/a?x=1",
  "http://[::1]:99999/",
  "http://",
  "ftp://x/",
  "//double",
  "/ok#frag",
  "/" + "a".repeat(9000),
  "/é",
  "/\x7f",
  "/a b",
  "",
];
const VERSIONS = [
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.0",
  "HTTP/2.0",
  "HTTP/0.9",
  "HTTP/1.10",
  "http/1.1",
  "HTTP/1",
  "HTTP/1.1 ",
  "",
  "HTTP/9.9",
  "HTTP/1.1\0",
];
const HEADER_NAMES = [
  "Host",
  "Host",
  "Accept",
  "Connection",
  "Content-Length",
  "Transfer-Encoding",
  "Last-Event-ID",
  "Authorization",
  "Origin",
  "X-Custom",
  "content-length",
  "HOST",
  "Bad Name",
  "Bad:Name",
  "",
  "Ünicode",
  "X\0Y",
  "(paren)",
];
const HEADER_VALUES = [
  "127.0.0.1",
  "text/event-stream",
  "close",
  "keep-alive",
  "Keep-Alive",
  "close, upgrade",
  "0",
  "5",
  "10",
  "-1",
  "1e3",
  "0x10",
  " 5",
  "5, 5",
  "5,6",
  "99999999999999999999",
  "1048577",
  "chunked",
  "gzip, chunked",
  "42",
  "Basic dXNlcjpwYXNz",
  "Bearer \r\nX-Injected: 1",
  "a\0b",
  "a\x7fb",
  "\t tabbed \t",
  "é",
  "\xff\xfe",
  "",
  "v".repeat(20000),
];
const LINE_ENDS = ["\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r", "\n\r", "\r\r\n"];
const GARBAGE_BYTES = [0, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x7f, 0x80, 0xc0, 0xc3, 0xed, 0xff, 0xfe];

/** Returns a well-formed request (a GET to `/ok` or a stream, or a POST with a body). */
export function validRequest(rng: Prng, closeAtEnd = false): string {
  const conn = closeAtEnd ? "Connection: close\r\n" : "";
  switch (rng.int(4)) {
    case 0:
      return `GET /ok HTTP/1.1\r\nHost: x\r\n${conn}\r\n`;
    case 1:
      return `HEAD /ok?x=${rng.int(100)} HTTP/1.1\r\nHost: x\r\n${conn}\r\n`;
    case 2: {
      const body = "b".repeat(rng.int(20));
      return `POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n${conn}\r\n${body}`;
    }
    default:
      return `GET /nowhere HTTP/1.1\r\nHost: x\r\n${conn}\r\n`;
  }
}

/** Latin-1 string to bytes (each char one byte), so generated NULs and 0xff survive. */
function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** A head built from the grammar, with a few random wrong choices. */
export function grammarHead(rng: Prng): Uint8Array {
  const eol = () => rng.chance(0.9) ? "\r\n" : rng.pick(LINE_ENDS);
  const sp = () => rng.chance(0.95) ? " " : rng.pick(["", "  ", "\t", " \0"]);
  let s = rng.chance(0.03) ? rng.pick(["\r\n", "\n", "\r\n\r\n", "\r"]) : "";
  s += `${rng.pick(METHODS)}${sp()}${rng.pick(PATHS)}${sp()}${rng.pick(VERSIONS)}${eol()}`;
  const n = rng.chance(0.02) ? 90 + rng.int(30) : rng.int(6);
  let host = false;
  for (let i = 0; i < n; i++) {
    const name = rng.pick(HEADER_NAMES);
    if (name.toLowerCase() === "host") host = true;
    const colon = rng.chance(0.97) ? ":" : rng.pick(["", " :", "::"]);
    const lead = rng.chance(0.02) ? rng.pick([" ", "\t"]) : "";
    s += `${lead}${name}${colon}${rng.chance(0.9) ? " " : ""}${rng.pick(HEADER_VALUES)}${eol()}`;
  }
  if (!host && rng.chance(0.8)) s += `Host: x${eol()}`;
  if (rng.chance(0.9)) s += eol();
  let bytes = bytesOf(s);
  // Bodies matching (or not) a Content-Length.
  if (rng.chance(0.2)) bytes = concatAll([bytes, bytesOf("x".repeat(rng.int(16)))]);
  return bytes;
}

/** Applies 1..4 random byte-level mutations. */
export function mutate(rng: Prng, input: Uint8Array): Uint8Array {
  let b = input;
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? rng.int(b.length) : 0;
    switch (rng.int(10)) {
      case 0: { // flip a byte
        if (b.length === 0) break;
        b = b.slice();
        b[at] = rng.chance(0.5) ? rng.pick(GARBAGE_BYTES) : rng.int(256);
        break;
      }
      case 1: // insert a special byte
        b = concatAll([b.subarray(0, at), Uint8Array.of(rng.pick(GARBAGE_BYTES)), b.subarray(at)]);
        break;
      case 2: // delete a range
        b = concatAll([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8)))]);
        break;
      case 3: { // duplicate a range (duplicated headers)
        const len = 1 + rng.int(64);
        b = concatAll([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: // insert invalid UTF-8
        b = concatAll([
          b.subarray(0, at),
          rng.pick([
            Uint8Array.of(0xc0, 0x80),
            Uint8Array.of(0xed, 0xa0, 0x80),
            Uint8Array.of(0xff),
            Uint8Array.of(0xf8, 0x88, 0x80, 0x80, 0x80),
            Uint8Array.of(0xe2, 0x82),
          ]),
          b.subarray(at),
        ]);
        break;
      case 6: // bare CR or LF
        b = concatAll([
          b.subarray(0, at),
          bytesOf(rng.pick(["\r", "\n", "\r\r", "\n\n"])),
          b.subarray(at),
        ]);
        break;
      case 7: { // a huge header
        const big = bytesOf(`X-Big: ${"a".repeat(rng.pick([100, 8000, 17000, 40000]))}\r\n`);
        const nl = b.indexOf(10);
        const pos = nl < 0 ? b.length : nl + 1;
        b = concatAll([b.subarray(0, pos), big, b.subarray(pos)]);
        break;
      }
      case 8: { // bogus or conflicting Content-Length
        const nl = b.indexOf(10);
        const pos = nl < 0 ? b.length : nl + 1;
        const cl = bytesOf(`Content-Length: ${rng.pick(HEADER_VALUES.slice(6, 18))}\r\n`);
        b = concatAll([b.subarray(0, pos), cl, b.subarray(pos)]);
        break;
      }
      default: // many headers
        {
          const nl = b.indexOf(10);
          const pos = nl < 0 ? b.length : nl + 1;
          const many = bytesOf(`X-Dup: ${rng.int(10)}\r\n`.repeat(20 + rng.int(120)));
          b = concatAll([b.subarray(0, pos), many, b.subarray(pos)]);
        }
        break;
    }
  }
  return b;
}

/** Random bytes, biased towards HTTP-ish characters. */
export function randomBytes(rng: Prng): Uint8Array {
  const n = rng.int(rng.chance(0.9) ? 200 : 3000);
  const out = new Uint8Array(n);
  const alphabet = encoder.encode("GET /HTP1.:\r\n \tHost:ContentLgh0123456789%?&=");
  for (let i = 0; i < n; i++) {
    out[i] = rng.chance(0.7) ? alphabet[rng.int(alphabet.length)] : rng.int(256);
  }
  return out;
}

/**
 * Makes one fuzz input.
 *
 * @param rng The seeded generator.
 * @returns A case: grammar-built, mutated, random, or a valid request followed by garbage.
 */
export function fuzzCase(rng: Prng): FuzzCase {
  const r = rng.next();
  if (r < 0.35) return { kind: "grammar", bytes: grammarHead(rng) };
  if (r < 0.8) {
    const base = rng.chance(0.5) ? grammarHead(rng) : bytesOf(validRequest(rng));
    return { kind: "mutated", bytes: mutate(rng, base) };
  }
  if (r < 0.9) return { kind: "random", bytes: randomBytes(rng) };
  const garbage = rng.chance(0.5) ? mutate(rng, grammarHead(rng)) : randomBytes(rng);
  return { kind: "pipelined", bytes: concatAll([bytesOf(validRequest(rng)), garbage]) };
}

/** Encodes bytes for a failure message or a regression list (latin-1 JSON string). */
export function latin1Json(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return JSON.stringify(s);
}

/** Bytes of a latin-1 string (the inverse of {@linkcode latin1Json} after `JSON.parse`). */
export function latin1Bytes(s: string): Uint8Array {
  return bytesOf(s);
}

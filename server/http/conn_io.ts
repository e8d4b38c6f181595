/**
 * Socket helpers of the HTTP layer (the stream layer uses them too): writing everything, closing
 * quietly or with a linger, telling disconnects apart, byte concatenation.
 *
 * @module
 */

import type { ConnectionCloseReason } from "./types.ts";

/** `host:port` of an address (`[host]:port` for IPv6). */
export function peerString(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Joins byte arrays into one new array. */
export function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Joins two byte arrays into a new one (a copy of `b` when `a` is empty). */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Writes every byte, looping over partial writes. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(off ? bytes.subarray(off) : bytes);
}

/** Closes after which the client may still be sending: linger so it reads the answer. */
export const LINGER_AFTER: ReadonlySet<ConnectionCloseReason> = new Set([
  "response-sent",
  "bad-request",
  "header-timeout",
]);
const LINGER_MS = 500;
const LINGER_BYTES = 256 * 1024;

/**
 * Half-closes a socket, then reads and drops what the client still sends, for
 * at most {@linkcode LINGER_MS} ms and {@linkcode LINGER_BYTES} bytes, or until
 * its EOF. Closing with unread input makes the kernel reset the connection,
 * which can destroy the answer before the client reads it (Go's
 * `closeWriteAndWait`, Apache's lingering close).
 */
export async function lingerClose(conn: Deno.Conn): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await conn.closeWrite();
    const sink = new Uint8Array(16 * 1024);
    const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), LINGER_MS));
    for (let total = 0; total < LINGER_BYTES;) {
      const n = await Promise.race([conn.read(sink), timeout]);
      if (n === null) break;
      total += n;
    }
  } catch (err) {
    if (!isDisconnect(err)) throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a socket, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Whether an error means the peer went away (by class, never by message). */
export function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.UnexpectedEof || err instanceof Deno.errors.TimedOut;
}

/**
 * A peer's address as one key per host: an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.7`) is the IPv4 address it maps, so a dual-stack listener
 * counts a host once whichever way it connected.
 *
 * @module
 */

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * The address that identifies a peer (its host, without the port).
 *
 * @param hostname The numeric address of `conn.remoteAddr`.
 * @returns The IPv4 address of an IPv4-mapped IPv6 address; otherwise the address, lower-cased.
 * @example
 * ```ts
 * import { peerIp } from "./peer_address.ts";
 * peerIp("::ffff:192.0.2.7"); // "192.0.2.7"
 * ```
 */
export function peerIp(hostname: string): string {
  if (!hostname.includes(":")) return hostname; // IPv4: already canonical.
  const mapped = MAPPED_V4.exec(hostname);
  return mapped ? mapped[1] : hostname.toLowerCase();
}

/**
 * Whether a peer address is loopback: 127.0.0.0/8, `::1`, or IPv4-mapped 127.x.
 *
 * @param hostname A numeric address (mapped or not).
 * @returns `true` for a loopback address.
 * @example
 * ```ts
 * import { isLoopbackIp } from "./peer_address.ts";
 * isLoopbackIp("::ffff:127.0.0.2"); // true
 * ```
 */
export function isLoopbackIp(hostname: string): boolean {
  const ip = peerIp(hostname);
  return ip === "::1" || ip.startsWith("127.");
}

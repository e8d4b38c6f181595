/**
 * The per-peer stream cap (`maxClientsPerIp`): how many streams each peer
 * address holds open, so that one host cannot take every slot of the
 * session table. Only peers with open streams are in the map (an entry is
 * deleted at zero), so it never holds more entries than there are streams.
 *
 * @module
 */

import { isLoopbackIp, peerIp } from "../http/peer_address.ts";

/**
 * Counts open streams per peer address.
 *
 * @example
 * ```ts
 * import { PeerStreams } from "./peer_streams.ts";
 * const peers = new PeerStreams(2, { exemptLoopback: true });
 * if (!peers.full("192.0.2.7")) peers.opened(1, "192.0.2.7");
 * peers.closed(1);
 * ```
 */
export class PeerStreams {
  readonly #limit: number;
  readonly #exemptLoopback: boolean;
  /** Open streams by peer address; only peers with one or more. */
  readonly #counts = new Map<string, number>();
  /** The peer address of each counted session. */
  readonly #peerOf = new Map<number, string>();

  /**
   * Creates the counter.
   *
   * @param limit Most streams per peer; `0`: no cap (nothing is counted).
   * @param options `exemptLoopback`: loopback peers are neither counted nor capped.
   */
  constructor(limit: number, options: { exemptLoopback: boolean }) {
    this.#limit = limit;
    this.#exemptLoopback = options.exemptLoopback;
  }

  /** Peers with streams counted now. */
  get peers(): number {
    return this.#counts.size;
  }

  /** The key a peer is counted under, or `undefined` when it is not counted. */
  #key(hostname: string): string | undefined {
    if (this.#limit === 0) return undefined;
    if (this.#exemptLoopback && isLoopbackIp(hostname)) return undefined;
    return peerIp(hostname);
  }

  /**
   * Whether one more stream from this peer would pass its cap.
   *
   * @param hostname The peer's numeric address.
   * @returns `true` when the peer already holds `limit` streams.
   */
  full(hostname: string): boolean {
    const key = this.#key(hostname);
    return key !== undefined && (this.#counts.get(key) ?? 0) >= this.#limit;
  }

  /**
   * Counts a stream that opened (call right after {@linkcode full}, with no
   * `await` between, so the check and the count are one decision).
   *
   * @param session The session id.
   * @param hostname The peer's numeric address.
   */
  opened(session: number, hostname: string): void {
    const key = this.#key(hostname);
    if (key === undefined) return;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#peerOf.set(session, key);
  }

  /**
   * Gives back the slot of a stream that ended (idempotent).
   *
   * @param session The session id.
   */
  closed(session: number): void {
    const key = this.#peerOf.get(session);
    if (key === undefined) return;
    this.#peerOf.delete(session);
    const n = (this.#counts.get(key) ?? 1) - 1;
    if (n === 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }
}

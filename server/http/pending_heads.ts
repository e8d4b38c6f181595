/**
 * The slowloris cap: tracks the sockets that are still receiving a request
 * and, past `maxPendingHeads`, evicts one: the oldest counted socket of the
 * peer address that holds the most, so that a flood from one host is thinned
 * before anyone else is touched.
 *
 * A socket is not counted at once: a client that sends its request in one
 * piece leaves on its first read and never is. It counts once a read leaves
 * its request incomplete ({@linkcode PendingHeads.markSlow}) or once it has
 * been silent for a grace period. When the server is at `maxConnections`,
 * {@linkcode PendingHeads.makeRoom} evicts the oldest receiving socket of the
 * peer that holds the most, counted or not, so that a newcomer is not refused
 * because one host fills every socket with silence.
 *
 * @module
 */

/** A socket while it receives a request: when it started, and how to evict it. */
export interface PendingHead {
  /** The peer address (see `peerIp`): sockets are evicted per peer first. */
  readonly peer: string;
  /** When it started receiving (ms since the epoch). */
  since: number;
  /** Set when the socket was chosen to make room under the cap. */
  evicted: boolean;
  /** When the read the socket's handler is waiting on times out (ms since the epoch). */
  deadline: number;
  /** Wakes that read: its deadline passed, or the socket was evicted. */
  wake: ((why: "timeout" | "evicted") => void) | undefined;
}

/** The sockets of one peer receiving a request (oldest first), and how many of them count. */
interface PeerHeads<K> {
  readonly sockets: Map<K, PendingHead>;
  counted: number;
}

/** The sockets receiving a request, keyed by socket. */
export class PendingHeads<K> {
  /** Not counted yet; oldest first. */
  readonly #fresh = new Map<K, PendingHead>();
  /** Counted against the cap (trickling or silent); oldest first. */
  readonly #slow = new Map<K, PendingHead>();
  /** The same sockets by peer; only peers with one or more. */
  readonly #byPeer = new Map<string, PeerHeads<K>>();
  readonly #cap: number;
  readonly #grace: number;
  /**
   * When {@linkcode #age} last ran: within the same millisecond it finds
   * nothing new (with a grace period), and a connect burst enters many sockets per millisecond.
   */
  #agedAt = -1;

  /**
   * Creates the tracker.
   *
   * @param cap Most sockets counted at once.
   * @param graceMs How long a silent socket stays uncounted.
   */
  constructor(cap: number, graceMs: number) {
    this.#cap = cap;
    this.#grace = graceMs;
  }

  /** Sockets counted against the cap now. */
  get counted(): number {
    return this.#slow.size;
  }

  /** Peers with sockets receiving a request now. */
  get peers(): number {
    return this.#byPeer.size;
  }

  /**
   * Notes that a socket has begun receiving a request.
   *
   * @param key The socket.
   * @param pending Its record (reused across its requests).
   */
  enter(key: K, pending: PendingHead): void {
    if (this.#fresh.has(key) || this.#slow.has(key)) return;
    const now = Date.now();
    pending.since = now;
    pending.evicted = false;
    this.#fresh.set(key, pending);
    let heads = this.#byPeer.get(pending.peer);
    if (heads === undefined) {
      this.#byPeer.set(pending.peer, heads = { sockets: new Map(), counted: 0 });
    }
    heads.sockets.set(key, pending);
    this.#age(now);
  }

  /**
   * A read left the socket's request incomplete: it now counts.
   *
   * @param key The socket.
   */
  markSlow(key: K): void {
    const p = this.#fresh.get(key);
    if (p === undefined) return;
    this.#fresh.delete(key);
    this.#count(key, p);
    this.#age(Date.now());
  }

  /**
   * The socket's request is complete (or the socket is gone).
   *
   * @param key The socket.
   */
  leave(key: K): void {
    const p = this.#fresh.get(key) ?? this.#slow.get(key);
    if (p !== undefined) this.#forget(key, p);
  }

  /**
   * Evicts one receiving socket so that a new connection can be accepted at
   * `maxConnections`: the oldest of the peer holding the most, a counted one
   * of that peer first.
   *
   * @returns The evicted socket (its read wakes), or `undefined` when none is receiving.
   */
  makeRoom(): K | undefined {
    this.#age(Date.now());
    let most: PeerHeads<K> | undefined;
    for (const heads of this.#byPeer.values()) {
      if (most === undefined || heads.sockets.size > most.sockets.size) most = heads;
    }
    if (most === undefined) return undefined;
    let victim: K | undefined;
    for (const key of most.sockets.keys()) {
      if (most.counted === 0 || this.#slow.has(key)) {
        victim = key;
        break;
      }
    }
    if (victim !== undefined) this.#evict(victim, most.sockets.get(victim)!);
    return victim;
  }

  /** Counts the sockets silent past the grace period (oldest first). */
  #age(now: number): void {
    if (now === this.#agedAt && this.#grace > 0) return;
    this.#agedAt = now;
    for (const [key, p] of this.#fresh) {
      if (now - p.since < this.#grace) break;
      this.#fresh.delete(key);
      this.#count(key, p);
    }
  }

  /**
   * Counts a socket; at the cap one is evicted first: the oldest counted
   * socket of the peer with the most counted.
   */
  #count(key: K, p: PendingHead): void {
    if (this.#slow.size >= this.#cap) {
      let most: PeerHeads<K> | undefined;
      for (const heads of this.#byPeer.values()) {
        if (most === undefined || heads.counted > most.counted) most = heads;
      }
      for (const [k, v] of most?.sockets ?? []) {
        if (this.#slow.has(k)) {
          this.#evict(k, v);
          break;
        }
      }
    }
    this.#slow.set(key, p);
    this.#byPeer.get(p.peer)!.counted++;
  }

  #evict(key: K, p: PendingHead): void {
    this.#forget(key, p);
    p.evicted = true;
    p.wake?.("evicted");
  }

  #forget(key: K, p: PendingHead): void {
    const heads = this.#byPeer.get(p.peer);
    if (this.#slow.delete(key) && heads) heads.counted--;
    this.#fresh.delete(key);
    if (heads === undefined) return;
    heads.sockets.delete(key);
    if (heads.sockets.size === 0) this.#byPeer.delete(p.peer);
  }
}

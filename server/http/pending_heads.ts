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
 * A connect burst enters and leaves thousands of sockets within a
 * millisecond or two: a socket that has just begun waits in a plain queue
 * (no map entry), and is filed by peer only once it counts, or when
 * {@linkcode PendingHeads.makeRoom} needs every receiving socket.
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
  /** Kept by {@linkcode PendingHeads}: where the record is (`NOWHERE`, `QUEUED`, `FILED`). */
  place: number;
  /** Kept by {@linkcode PendingHeads}: which queue slot is the record's current one. */
  slot: number;
}

/** Not receiving a request (or not tracked). */
const NOWHERE = 0;
/** In the newcomers' queue only. */
const QUEUED = 1;
/** Filed by peer: in `#fresh` (uncounted) or `#slow` (counted). */
const FILED = 2;

/**
 * A new record for a socket of `peer`, not receiving yet.
 *
 * @param peer The peer address (see `peerIp`).
 * @returns The record, to pass to every call of {@linkcode PendingHeads} for this socket.
 * @example
 * ```ts
 * import { pendingHead } from "./pending_heads.ts";
 * pendingHead("192.0.2.7").evicted; // false
 * ```
 */
export function pendingHead(peer: string): PendingHead {
  return {
    peer,
    since: 0,
    evicted: false,
    deadline: 0,
    wake: undefined,
    place: NOWHERE,
    slot: 0,
  };
}

/** The sockets of one peer receiving a request (oldest first), and how many of them count. */
interface PeerHeads<K> {
  readonly sockets: Map<K, PendingHead>;
  counted: number;
}

/**
 * The sockets receiving a request, keyed by socket.
 *
 * @typeParam K The socket (any key).
 * @example
 * ```ts
 * import { pendingHead, PendingHeads } from "./pending_heads.ts";
 * const heads = new PendingHeads<string>(64, 1000);
 * const p = pendingHead("192.0.2.7");
 * heads.enter("conn-1", p);
 * heads.leave("conn-1", p); // Its request came whole: it never counted.
 * ```
 */
export class PendingHeads<K> {
  /** Newcomers, oldest first from `#head`: keys, records, and the slot each was queued in. */
  #queueKeys: K[] = [];
  #queued: PendingHead[] = [];
  #queueSlots: number[] = [];
  #head = 0;
  #slots = 0;
  /** Filed, not counted yet (by `makeRoom`); oldest first. */
  readonly #fresh = new Map<K, PendingHead>();
  /** Counted against the cap (trickling or silent); oldest first. */
  readonly #slow = new Map<K, PendingHead>();
  /** The filed sockets by peer; only peers with one or more. */
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

  /** Peers with counted sockets, or with sockets filed by `makeRoom`, now. */
  get peers(): number {
    return this.#byPeer.size;
  }

  /**
   * Notes that a socket has begun receiving a request.
   *
   * @param key The socket.
   * @param pending Its record (from {@linkcode pendingHead}, reused across its requests).
   */
  enter(key: K, pending: PendingHead): void {
    if (pending.place !== NOWHERE) return;
    const now = Date.now();
    pending.since = now;
    pending.evicted = false;
    pending.place = QUEUED;
    pending.slot = ++this.#slots;
    this.#queueKeys.push(key);
    this.#queued.push(pending);
    this.#queueSlots.push(pending.slot);
    this.#age(now);
  }

  /**
   * A read left the socket's request incomplete: it now counts.
   *
   * @param key The socket.
   * @param pending Its record.
   */
  markSlow(key: K, pending: PendingHead): void {
    if (pending.place === QUEUED) {
      this.#file(key, pending);
    } else if (this.#fresh.delete(key)) {
      this.#count(key, pending);
    }
    this.#age(Date.now());
  }

  /**
   * The socket's request is complete (or the socket is gone).
   *
   * @param key The socket.
   * @param pending Its record.
   */
  leave(key: K, pending: PendingHead): void {
    // A queued record's slot goes stale: the queue skips it.
    if (pending.place === FILED) this.#forget(key, pending);
    pending.place = NOWHERE;
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
    // Every receiving socket counts here, counted or not: file the newcomers.
    for (let i = this.#head; i < this.#queued.length; i++) {
      const p = this.#queued[i];
      if (p.place === QUEUED && p.slot === this.#queueSlots[i]) {
        this.#fresh.set(this.#queueKeys[i], p);
        this.#addToPeer(this.#queueKeys[i], p);
      }
    }
    this.#clearQueue();
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
    const queued = this.#queued;
    let i = this.#head;
    for (; i < queued.length; i++) {
      const p = queued[i];
      if (p.place !== QUEUED || p.slot !== this.#queueSlots[i]) continue; // Left, or queued again later.
      if (now - p.since < this.#grace) break;
      this.#file(this.#queueKeys[i], p);
    }
    this.#head = i;
    if (i === queued.length) {
      this.#clearQueue();
    } else if (i >= 1024 && i * 2 >= queued.length) {
      // Drop the consumed front now and then (amortized: each slot is moved at most once per halving).
      this.#queueKeys = this.#queueKeys.slice(i);
      this.#queued = queued.slice(i);
      this.#queueSlots = this.#queueSlots.slice(i);
      this.#head = 0;
    }
    for (const [key, p] of this.#fresh) {
      if (now - p.since < this.#grace) break;
      this.#fresh.delete(key);
      this.#count(key, p);
    }
  }

  #clearQueue(): void {
    this.#queueKeys.length = 0;
    this.#queued.length = 0;
    this.#queueSlots.length = 0;
    this.#head = 0;
  }

  /** Files a queued socket by peer, counted. */
  #file(key: K, p: PendingHead): void {
    this.#addToPeer(key, p);
    this.#count(key, p);
  }

  #addToPeer(key: K, p: PendingHead): void {
    p.place = FILED;
    let heads = this.#byPeer.get(p.peer);
    if (heads === undefined) this.#byPeer.set(p.peer, heads = { sockets: new Map(), counted: 0 });
    heads.sockets.set(key, p);
  }

  /**
   * Counts a filed socket; at the cap one is evicted first: the oldest counted
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
    p.place = NOWHERE;
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

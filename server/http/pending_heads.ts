/**
 * The slowloris cap: tracks the sockets that are still receiving a request
 * and, past `maxPendingHeads`, evicts the one that has been counted longest.
 *
 * A socket is not counted at once: a client that sends its request in one
 * piece leaves on its first read and never is. It counts once a read leaves
 * its request incomplete ({@linkcode PendingHeads.markSlow}) or once it has
 * been silent for a grace period.
 *
 * @module
 */

/** A socket while it receives a request: when it started, and how to evict it. */
export interface PendingHead {
  /** When it started receiving (ms since the epoch). */
  since: number;
  /** Set when the socket was chosen to make room under the cap. */
  evicted: boolean;
  /** When the read the socket's handler is waiting on times out (ms since the epoch). */
  deadline: number;
  /** Wakes that read: its deadline passed, or the socket was evicted. */
  wake: ((why: "timeout" | "evicted") => void) | undefined;
}

/** The sockets receiving a request, keyed by socket. */
export class PendingHeads<K> {
  /** Not counted yet; oldest first. */
  readonly #fresh = new Map<K, PendingHead>();
  /** Counted against the cap (trickling or silent); oldest first. */
  readonly #slow = new Map<K, PendingHead>();
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
    this.#fresh.delete(key);
    this.#slow.delete(key);
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

  /** Counts a socket; at the cap the one counted longest is evicted first (its read wakes). */
  #count(key: K, p: PendingHead): void {
    if (this.#slow.size >= this.#cap) {
      const victim = this.#slow.entries().next().value;
      if (victim !== undefined) {
        this.#slow.delete(victim[0]);
        victim[1].evicted = true;
        victim[1].wake?.("evicted");
      }
    }
    this.#slow.set(key, p);
  }
}

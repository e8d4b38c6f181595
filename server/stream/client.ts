/**
 * One subscriber of an event source, as its callbacks see it: a view of its
 * session.
 *
 * @module
 */

import { encodeEvent, type EventFields } from "../../queue/encode_event.ts";
import type { CloseReason, Session } from "../../sessions/session.ts";

const clients = new WeakMap<Session, Client>();

/**
 * One subscriber of an event source, as given to `onConnect` / `onDisconnect`.
 * The same object is returned for a session every time.
 */
export class Client {
  readonly #session: Session;
  /** @internal */
  constructor(session: Session) {
    this.#session = session;
  }

  /**
   * The client object of a session.
   *
   * @param session The session.
   * @returns Its client (created once).
   */
  static of(session: Session): Client {
    let c = clients.get(session);
    if (c === undefined) {
      c = new Client(session);
      clients.set(session, c);
    }
    return c;
  }

  /** Session id. */
  get id(): number {
    return this.#session.id;
  }
  /** The id the client reported with `Last-Event-ID` (or `?lastEventId=`), if any. */
  get lastId(): string | undefined {
    return this.#session.lastEventId;
  }
  /** Peer address as `host:port`. */
  get remoteAddr(): string {
    return this.#session.remoteAddr;
  }
  /** Channels the client receives. */
  get channels(): readonly string[] {
    return this.#session.channels;
  }
  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#session.closed;
  }
  /** The underlying session (counters, context slot). */
  get session(): Session {
    return this.#session;
  }

  /**
   * Sends an event to this client alone, bypassing the queue.
   *
   * @param data Event data.
   * @param fields Event type, id, retry.
   * @returns `false` when the client is gone or over its budget.
   * @throws {InvalidEventError} When a field is invalid.
   */
  send(data: string, fields: EventFields = {}): boolean {
    return this.#session.write(encodeEvent(data, fields));
  }

  /**
   * Ends this client's stream.
   *
   * @param reason Close reason for the free callback and logs.
   */
  close(reason: CloseReason = "closed"): void {
    this.#session.close(reason);
  }
}

/**
 * Internal: the counters of a bridge and the snapshot `/status` and
 * `/metrics` read.
 *
 * @module
 */

import type { MqttRefusal } from "./_classify.ts";

/** Counters and state of a bridge, for `/status` and `/metrics`. */
export interface MqttBridgeStats {
  /** Connected to the broker (CONNACK received, connection open). */
  readonly connected: boolean;
  /** Subscribed on the current connection (or the session already held the subscriptions). */
  readonly subscribed: boolean;
  /** Messages received (redeliveries included). */
  readonly messagesIn: number;
  /** Messages the hub recorded. */
  readonly published: number;
  /** Messages acknowledged without publishing, by reason. */
  readonly refused: Readonly<Record<MqttRefusal, number>>;
  /** Messages whose acknowledgement is withheld now because `publish` rejected them (0 or 1). */
  readonly acksWithheld: number;
  /** Rejections of `publish` (each retry counts). */
  readonly publishFailures: number;
  /** Messages the broker marked as redelivered (`dup`). */
  readonly redelivered: number;
  /** Connection attempts after the first. */
  readonly reconnects: number;
  /** Connections the broker refused for bad credentials or authorization. */
  readonly authFailures: number;
  /** The last error, or `null`. */
  readonly lastError: string | null;
}

/** The mutable counters behind {@linkcode MqttBridgeStats}. */
export interface Counters {
  messagesIn: number;
  published: number;
  refused: Record<MqttRefusal, number>;
  acksWithheld: number;
  publishFailures: number;
  redelivered: number;
  reconnects: number;
  authFailures: number;
  lastError: string | null;
}

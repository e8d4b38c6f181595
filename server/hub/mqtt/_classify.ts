/**
 * What the bridge does with one MQTT message: publish it on a channel, or
 * refuse it for a reason that can never change (so the message is
 * acknowledged, not redelivered forever).
 *
 * @module
 */

import { topicToChannel } from "../../stream/topic_filter.ts";

/** Why a message is refused: one string union, used by stats and logs alike. */
export type MqttRefusal = "badTopic" | "tooLarge" | "notUtf8" | "empty";

/** The verdict on one message. */
export type MqttVerdict =
  | { readonly ok: true; readonly channel: string; readonly data: string }
  | { readonly ok: false; readonly reason: MqttRefusal };

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Maps a message to its channel and data, or refuses it. The checks run
 * cheapest first: topic grammar, size, emptiness, then strict UTF-8.
 * An empty payload is refused because an SSE event with empty data is never
 * dispatched by browsers (and in MQTT it only clears a retained message).
 */
export function classifyMessage(
  topic: string,
  payload: Uint8Array,
  maxPayloadBytes: number,
): MqttVerdict {
  const channel = topicToChannel(topic);
  if (channel === undefined) return { ok: false, reason: "badTopic" };
  if (payload.byteLength > maxPayloadBytes) return { ok: false, reason: "tooLarge" };
  if (payload.byteLength === 0) return { ok: false, reason: "empty" };
  let data: string;
  try {
    data = decoder.decode(payload);
  } catch {
    return { ok: false, reason: "notUtf8" };
  }
  return { ok: true, channel, data };
}

/**
 * The SSE encoder: turns one event into the bytes of the WHATWG
 * `text/event-stream` format, once, so that every recipient shares them.
 *
 * @module
 */

/** Optional fields of an SSE event. */
export interface EventFields {
  /** Event type (`event:` line); no CR or LF. Omitted: the browser's `message`. */
  event?: string;
  /** Event id (`id:` line); no CR, LF or NUL. `"0"` is kept. */
  id?: string;
  /** Reconnection time in milliseconds (`retry:` line); a non-negative integer. */
  retry?: number;
}

/** Thrown when an event field cannot be encoded without changing its meaning. */
export class InvalidEventError extends Error {
  /** The offending field: `event`, `id`, `retry` or `comment`. */
  readonly field: string;
  /**
   * Creates the error.
   *
   * @param field The offending field.
   * @param message What was wrong.
   */
  constructor(field: string, message: string) {
    super(message);
    this.name = "InvalidEventError";
    this.field = field;
  }
}

const encoder = new TextEncoder();
const LINE_BREAK = /\r\n|\r|\n/;
const CR_OR_LF = /[\r\n]/;
const CR_LF_OR_NUL = /[\r\n\0]/;

/**
 * Checks the fields of an event, throwing before anything is encoded or sent.
 *
 * @param fields The fields to check.
 * @throws {InvalidEventError} When `event` has CR/LF, `id` has CR/LF/NUL, or
 * `retry` is not a non-negative integer.
 */
export function validateEventFields(fields: EventFields): void {
  const { event, id, retry } = fields;
  if (event !== undefined && CR_OR_LF.test(event)) {
    throw new InvalidEventError("event", "event name must not contain CR or LF");
  }
  if (id !== undefined && CR_LF_OR_NUL.test(id)) {
    throw new InvalidEventError("id", "event id must not contain CR, LF or NUL");
  }
  if (retry !== undefined && !(Number.isSafeInteger(retry) && retry >= 0)) {
    throw new InvalidEventError("retry", `retry must be a non-negative integer: received ${retry}`);
  }
}

/**
 * Encodes the text of one event: `event:`, `id:`, `retry:` lines, then one
 * `data:` line per line of `data` (split on CRLF, CR and LF), then a blank line.
 *
 * @param data The event data; an empty string sends one empty `data:` line.
 * @param fields Optional event type, id and retry.
 * @returns The event as text.
 * @throws {InvalidEventError} When a field is invalid.
 */
export function formatEvent(data: string, fields: EventFields = {}): string {
  validateEventFields(fields);
  let text = "";
  if (fields.event !== undefined) text += `event: ${fields.event}\n`;
  if (fields.id !== undefined) text += `id: ${fields.id}\n`;
  if (fields.retry !== undefined) text += `retry: ${fields.retry}\n`;
  if (!CR_OR_LF.test(data)) return `${text}data: ${data}\n\n`;
  for (const line of data.split(LINE_BREAK)) text += `data: ${line}\n`;
  return text + "\n";
}

/**
 * Encodes one event into bytes, ready to be written to every subscriber.
 *
 * @param data The event data.
 * @param fields Optional event type, id and retry.
 * @returns The UTF-8 bytes of the event.
 * @throws {InvalidEventError} When a field is invalid.
 *
 * @example
 * ```ts
 * import { encodeEvent } from "./encode_event.ts";
 * const bytes = encodeEvent("a\nb", { event: "tick", id: "7" });
 * // "event: tick\nid: 7\ndata: a\ndata: b\n\n"
 * ```
 */
export function encodeEvent(data: string, fields: EventFields = {}): Uint8Array {
  return encoder.encode(formatEvent(data, fields));
}

/**
 * Encodes an SSE comment (`: text`), one comment line per line of text.
 * Comments keep connections alive and are ignored by `EventSource`.
 *
 * @param text The comment text.
 * @returns The UTF-8 bytes of the comment block.
 */
export function encodeComment(text: string): Uint8Array {
  let out = "";
  for (const line of text.split(LINE_BREAK)) out += line === "" ? ":\n" : `: ${line}\n`;
  return encoder.encode(out + "\n");
}

/**
 * Encodes a lone `retry:` field, sent first on a stream to set the client's
 * reconnection delay.
 *
 * @param ms Milliseconds, a non-negative integer.
 * @returns The UTF-8 bytes of the field block.
 * @throws {InvalidEventError} When `ms` is not a non-negative integer.
 */
export function encodeRetry(ms: number): Uint8Array {
  validateEventFields({ retry: ms });
  return encoder.encode(`retry: ${ms}\n\n`);
}

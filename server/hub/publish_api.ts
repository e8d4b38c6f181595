/**
 * The hub's publish API: turns a `POST /events/<channel>` request into the
 * event to send, or an `HttpError` with the status to answer.
 *
 * - `text/plain` (or no `Content-Type`): the body is the data; `?event=` and
 *   `?id=` are optional.
 * - `application/json`: `{"data": …, "event"?: string, "id"?: string,
 *   "retry"?: integer}`; a `data` that is not a string is sent as its JSON text.
 * - `application/x-www-form-urlencoded` (what `curl --data-binary` sends by
 *   default): taken as text, the raw body being the data (it is not
 *   form-decoded), so `curl -X POST --data-binary 'hello' URL` just works.
 * - Anything else: `415`.
 *
 * @module
 */

import { InvalidEventError, validateEventFields } from "../../queue/encode_event.ts";
import { HttpError } from "../http/http_error.ts";
import type { HttpRequest } from "../http/types.ts";

/** An event taken from a publish request, checked and ready to send. */
export interface PublishRequest {
  /** Event data. */
  data: string;
  /** Event type, if the publisher named one. */
  event?: string;
  /** Event id, if the publisher gave one. */
  id?: string;
  /** Reconnection delay in ms to send with the event, if given. */
  retry?: number;
}

/** Options of {@linkcode parsePublishRequest}. */
export interface PublishApiOptions {
  /**
   * Largest request body, in bytes; larger ones get `413`.
   * @default {65536}
   */
  maxEventBytes?: number;
}

/** Defaults of {@linkcode PublishApiOptions}. */
export const DEFAULT_PUBLISH_API_OPTIONS: Readonly<Required<PublishApiOptions>> = Object.freeze({
  maxEventBytes: 64 * 1024,
});

/** Keys a JSON publish body may have. */
export const PUBLISH_JSON_KEYS: readonly string[] = Object.freeze(["data", "event", "id", "retry"]);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const CR_LF_OR_NUL = /[\r\n\0]/;

function bad(message: string): HttpError {
  return new HttpError(400, `Bad Request: ${message}`, { close: false });
}

/** The media type (lower case, no parameters) and charset of a `Content-Type`. */
function mediaType(value: string | undefined): { type: string; charset?: string } {
  if (value === undefined) return { type: "text/plain" };
  const [type, ...params] = value.split(";");
  let charset: string | undefined;
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq < 0) continue;
    if (p.slice(0, eq).trim().toLowerCase() === "charset") {
      charset = p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    }
  }
  return { type: type.trim().toLowerCase(), charset };
}

function fromJson(text: string, query: URLSearchParams): PublishRequest {
  if (query.has("event") || query.has("id")) {
    throw bad("with a JSON body, give event and id in the body");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad("body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw bad('JSON body must be an object like {"data": "..."}');
  }
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!PUBLISH_JSON_KEYS.includes(key)) throw bad(`unknown key ${JSON.stringify(key)}`);
  }
  if (!("data" in body)) throw bad('JSON body has no "data"');
  const { data, event, id, retry } = body;
  if (event !== undefined && typeof event !== "string") throw bad("event must be a string");
  if (id !== undefined && typeof id !== "string") throw bad("id must be a string");
  if (retry !== undefined && !(Number.isSafeInteger(retry) && (retry as number) >= 0)) {
    throw bad("retry must be a non-negative integer");
  }
  return {
    data: typeof data === "string" ? data : JSON.stringify(data),
    event,
    id,
    retry: retry as number | undefined,
  };
}

/**
 * Reads the event of a publish request.
 *
 * @param req The `POST` request (body read by the server).
 * @param options The size limit.
 * @returns The event: data and optional type, id and retry.
 * @throws {HttpError} `413` when the body is over `maxEventBytes`; `415` for
 * a `Content-Type` other than `text/plain` (UTF-8) or `application/json`;
 * `400` for a body that is not UTF-8, bad JSON, or an event name or id with
 * CR, LF or NUL. None of them closes the connection.
 * @example
 * ```ts
 * import { parsePublishRequest } from "./publish_api.ts";
 * import type { HttpRequest } from "../http/types.ts";
 * declare const req: HttpRequest; // POST /events/news?event=greeting, body "hello"
 * const { data, event } = parsePublishRequest(req, { maxEventBytes: 1024 });
 * ```
 */
export function parsePublishRequest(
  req: HttpRequest,
  options: PublishApiOptions = {},
): PublishRequest {
  const max = options.maxEventBytes ?? DEFAULT_PUBLISH_API_OPTIONS.maxEventBytes;
  if (req.body.length > max) {
    throw new HttpError(413, `Payload Too Large: events are limited to ${max} bytes`, {
      close: false,
    });
  }
  const { type, charset } = mediaType(req.headers.get("content-type"));
  const json = type === "application/json";
  if (
    !(json || type === "text/plain" || type === "application/x-www-form-urlencoded") ||
    (!json && charset !== undefined && charset !== "utf-8" && charset !== "us-ascii")
  ) {
    throw new HttpError(
      415,
      "Unsupported Media Type: send text/plain (UTF-8) or application/json",
      { close: false },
    );
  }
  let text: string;
  try {
    text = strictUtf8.decode(req.body);
  } catch {
    throw bad("body is not valid UTF-8");
  }
  const event: PublishRequest = json ? fromJson(text, req.query) : {
    data: text,
    event: req.query.get("event") ?? undefined,
    id: req.query.get("id") ?? undefined,
  };
  if (event.event !== undefined && CR_LF_OR_NUL.test(event.event)) {
    throw bad("event name must not contain CR, LF or NUL");
  }
  try {
    validateEventFields(event);
  } catch (err) {
    if (err instanceof InvalidEventError) throw bad(err.message);
    throw err;
  }
  return event;
}

/**
 * An independent SSE parser for tests, following the WHATWG "event stream
 * interpretation" algorithm: line ends CRLF, CR or LF (also split across
 * chunks), a leading BOM, comments, fields with or without a colon, one
 * optional space after the colon, dispatch on a blank line when data is set.
 *
 * @module
 */

/** An event as a browser would dispatch it. */
export interface ParsedEvent {
  /** `event` field, or `"message"`. */
  type: string;
  /** Data lines joined with LF. */
  data: string;
  /** The last event id in force when dispatched. */
  lastEventId: string;
}

/** Incremental parser: feed text chunks, collect events. */
export class SseParser {
  /** Dispatched events. */
  readonly events: ParsedEvent[] = [];
  /** Comment lines seen (without the leading colon). */
  readonly comments: string[] = [];
  /** Last `retry` value set, if any. */
  retry: number | undefined;
  /** The last event id string: set from the id buffer when a block is dispatched. */
  lastEventId = "";
  #idBuffer = "";
  #buf = "";
  #data: string[] | undefined;
  #type = "";
  #first = true;
  #pendingCr = false;

  /** Feeds a chunk of text. */
  feed(text: string): void {
    if (this.#first && text.length > 0) {
      this.#first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buf);
      if (m === null) break;
      // A CR at the very end might be the first half of a CRLF split across chunks.
      if (m[0] === "\r" && m.index === this.#buf.length - 1) {
        this.#pendingCr = true;
      }
      const line = this.#buf.slice(0, m.index);
      this.#buf = this.#buf.slice(m.index + m[0].length);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") {
      // WHATWG: dispatch first sets the last event ID string, even for a block without data.
      this.lastEventId = this.#idBuffer;
      if (this.#data !== undefined) {
        this.events.push({
          type: this.#type || "message",
          data: this.#data.join("\n"),
          lastEventId: this.lastEventId,
        });
      }
      this.#data = undefined;
      this.#type = "";
      return;
    }
    if (line.startsWith(":")) {
      this.comments.push(line.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") (this.#data ??= []).push(value);
    else if (field === "event") this.#type = value;
    else if (field === "id") {
      if (!value.includes("\0")) this.#idBuffer = value;
    } else if (field === "retry") {
      if (/^[0-9]+$/.test(value)) this.retry = Number(value);
    }
  }
}

/**
 * A raw-socket HTTP client for tests: sends bytes exactly as given and reads
 * the response head and (for streams) SSE events with the independent parser.
 *
 * @module
 */

import { SseParser } from "./sse_parser.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A parsed response head. */
export interface ResponseHead {
  /** The status line, e.g. `HTTP/1.1 200 OK`. */
  statusLine: string;
  /** Status code. */
  status: number;
  /** Header fields, lower-case names. */
  headers: Map<string, string>;
}

/** A test connection. */
export class RawClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  /** Bytes received and not yet consumed, as text. */
  buffer = "";
  /** Whether the server closed the connection. */
  eof = false;
  readonly #chunk = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to 127.0.0.1:port. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes raw text (or bytes). */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads once more into the buffer; false on EOF or reset. */
  async readMore(): Promise<boolean> {
    if (this.eof) return false;
    let n: number | null;
    try {
      n = await this.conn.read(this.#chunk);
    } catch {
      n = null;
    }
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.buffer += decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    return true;
  }

  /** Reads until `pred(buffer)` holds; throws on EOF first. */
  async readUntil(pred: (buf: string) => boolean): Promise<void> {
    while (!pred(this.buffer)) {
      if (!(await this.readMore())) {
        throw new Error(`connection closed before condition; got ${JSON.stringify(this.buffer)}`);
      }
    }
  }

  /** Reads one response head (consumes it from the buffer). */
  async readHead(): Promise<ResponseHead> {
    await this.readUntil((b) => b.includes("\r\n\r\n"));
    const end = this.buffer.indexOf("\r\n\r\n");
    const lines = this.buffer.slice(0, end).split("\r\n");
    this.buffer = this.buffer.slice(end + 4);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    return { statusLine: lines[0], status: Number(lines[0].split(" ")[1]), headers };
  }

  /** Reads a whole Content-Length response: head and body. */
  async readResponse(): Promise<ResponseHead & { body: string }> {
    const head = await this.readHead();
    const len = Number(head.headers.get("content-length") ?? "0");
    await this.readUntil((b) => encoder.encode(b).length >= len);
    const bytes = encoder.encode(this.buffer);
    const body = decoder.decode(bytes.subarray(0, len));
    this.buffer = decoder.decode(bytes.subarray(len));
    return { ...head, body };
  }

  /** Reads until EOF; returns everything received. */
  async readToEnd(): Promise<string> {
    while (await this.readMore()) { /* keep reading */ }
    return this.buffer;
  }

  /** Opens a stream: sends a GET and reads the 200 head. */
  static async stream(
    port: number,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ client: RawClient; head: ResponseHead; parser: SseParser }> {
    const client = await RawClient.connect(port);
    let req = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n`;
    for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
    await client.send(req + "\r\n");
    const head = await client.readHead();
    const parser = new SseParser();
    return { client, head, parser };
  }

  /** Feeds buffered text to a parser and reads until it has `n` events. */
  async readEvents(parser: SseParser, n: number): Promise<void> {
    for (;;) {
      if (this.buffer) {
        parser.feed(this.buffer);
        this.buffer = "";
      }
      if (parser.events.length >= n) return;
      if (!(await this.readMore())) {
        throw new Error(`stream ended after ${parser.events.length} of ${n} events`);
      }
    }
  }

  /** Closes the socket (idempotent). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** Closes the socket. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

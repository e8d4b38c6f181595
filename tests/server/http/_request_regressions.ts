/**
 * Request heads that once broke (or could break) the request path, each with
 * the parser's answer: an error status, `"head"` (parsed) or `"more"` (needs
 * more bytes). Inputs are latin-1 strings: one char, one byte.
 *
 * Add every input the fuzz test (tests/e2e/fuzz_test.ts) reports here, with
 * the status it must get.
 *
 * @module
 */

/** One regression input. */
export interface RegressionInput {
  /** What the input exercises. */
  name: string;
  /** The bytes, as a latin-1 string. */
  input: string;
  /** The status the parser must throw, or `"head"` / `"more"`. */
  expect: number | "head" | "more";
}

/** The inputs. */
export const REQUEST_REGRESSIONS: readonly RegressionInput[] = [
  { name: "empty input", input: "", expect: "more" },
  { name: "lone CR", input: "\r", expect: "more" },
  { name: "CR at the end of a partial head", input: "GET / HTTP/1.1\r\nHost: x\r", expect: "more" },
  {
    name: "bare CR before the request line",
    input: "\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  {
    name: "65 empty lines before the request",
    input: "\r\n".repeat(65) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  { name: "NUL in the method", input: "GE\0T / HTTP/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "NUL in a header value",
    input: "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
    expect: 400,
  },
  {
    name: "bare CR inside a header value",
    input: "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    expect: 400,
  },
  { name: "CR CR LF line end", input: "GET / HTTP/1.1\r\r\nHost: x\r\n\r\n", expect: 400 },
  { name: "LF-only line ends", input: "GET / HTTP/1.1\nHost: x\n\n", expect: "head" },
  {
    name: "obs-fold continuation line",
    input: "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    expect: 400,
  },
  { name: "space before the colon", input: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", expect: 400 },
  { name: "header without a colon", input: "GET / HTTP/1.1\r\nHost x\r\n\r\n", expect: 400 },
  { name: "empty header name", input: "GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "non-ASCII header name",
    input: "GET / HTTP/1.1\r\nH\xe9st: x\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  {
    name: "invalid UTF-8 in a header value (obs-text is allowed)",
    input: "GET / HTTP/1.1\r\nHost: x\r\nX: \xc0\x80\xff\r\n\r\n",
    expect: "head",
  },
  {
    name: "invalid UTF-8 in the target",
    input: "GET /\xc0\xaf HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  {
    name: "percent-encoded lone surrogate in the path",
    input: "GET /%ED%A0%80 HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  {
    name: "percent-encoded CR LF in the path",
    input: "GET /a%0D%0AX:%201 HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  { name: "truncated percent-encoding", input: "GET /a% HTTP/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "percent-encoded CR LF in the query (kept, decoded later)",
    input: "GET /a?x=%0D%0A HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: "head",
  },
  { name: "missing Host on HTTP/1.1", input: "GET / HTTP/1.1\r\n\r\n", expect: 400 },
  { name: "HTTP/1.0 without Host", input: "GET / HTTP/1.0\r\n\r\n", expect: "head" },
  { name: "HTTP/2.0 request line", input: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", expect: 505 },
  { name: "HTTP/1.10", input: "GET / HTTP/1.10\r\nHost: x\r\n\r\n", expect: 400 },
  { name: "lower-case http version", input: "GET / http/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "two spaces in the request line",
    input: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  { name: "tab instead of space", input: "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "trailing space after the version",
    input: "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
    expect: 400,
  },
  { name: "unknown method", input: "BREW / HTTP/1.1\r\nHost: x\r\n\r\n", expect: 501 },
  { name: "lower-case method", input: "get / HTTP/1.1\r\nHost: x\r\n\r\n", expect: 501 },
  {
    name: "CONNECT authority form",
    input: "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 501,
  },
  { name: "asterisk target on GET", input: "GET * HTTP/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  {
    name: "absolute target with an invalid port",
    input: "GET http://[::1]:99999/ HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  {
    name: "absolute target without a host",
    input: "GET http:// HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 400,
  },
  { name: "DEL in the target", input: "GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", expect: 400 },
  { name: "request line over 8 KiB without LF", input: "GET /" + "a".repeat(8300), expect: 414 },
  {
    name: "request line over 8 KiB",
    input: "GET /" + "a".repeat(8300) + " HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: 414,
  },
  {
    name: "head over 16 KiB without its end",
    input: "GET / HTTP/1.1\r\nX: " + "a".repeat(17000),
    expect: 431,
  },
  {
    name: "one 20 KB header value",
    input: "GET / HTTP/1.1\r\nHost: x\r\nX: " + "v".repeat(20000) + "\r\n\r\n",
    expect: 431,
  },
  {
    name: "101 header fields",
    input: "GET / HTTP/1.1\r\nHost: x\r\n" + "X-Dup: 1\r\n".repeat(100) + "\r\n",
    expect: 431,
  },
  {
    name: "two equal Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nb",
    expect: "head",
  },
  {
    name: "conflicting Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nbb",
    expect: 400,
  },
  {
    name: "Content-Length list",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
    expect: 400,
  },
  {
    name: "negative Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    expect: 400,
  },
  {
    name: "hex Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
    expect: 400,
  },
  {
    name: "exponent Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
    expect: 400,
  },
  {
    name: "20-digit Content-Length",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    expect: 400,
  },
  {
    name: "Content-Length over the body limit",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
    expect: 413,
  },
  {
    name: "Transfer-Encoding chunked",
    input: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    expect: 411,
  },
  {
    name: "Transfer-Encoding with Content-Length (smuggling)",
    input: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    expect: 400,
  },
  {
    name: "valid request followed by garbage",
    input: "GET / HTTP/1.1\r\nHost: x\r\n\r\n\0\xff\r\n garbage",
    expect: "head",
  },
];

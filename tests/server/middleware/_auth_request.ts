/**
 * Builds `HttpRequest` objects for middleware unit tests.
 *
 * @module
 */

import type { HttpRequest } from "../../../server/http/types.ts";

/** Fields a test may override. */
export interface RequestInit {
  method?: string;
  target?: string;
  headers?: Record<string, string>;
}

/** A request as the server's parser would produce it. */
export function makeRequest(init: RequestInit = {}): HttpRequest {
  const target = init.target ?? "/events/a";
  const url = new URL(target, "http://127.0.0.1");
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(init.headers ?? {})) headers.set(k.toLowerCase(), v);
  return {
    method: init.method ?? "GET",
    target,
    path: decodeURIComponent(url.pathname),
    query: url.searchParams,
    version: "1.1",
    headers,
    body: new Uint8Array(),
    params: {},
    remoteAddr: { hostname: "127.0.0.1", port: 40000 },
    secure: false,
  };
}

/** Header values named `name` (case-insensitive) in a response or header list. */
export function headerValues(
  headers: Record<string, string> | [string, string][] | undefined,
  name: string,
): string[] {
  const list = headers === undefined
    ? []
    : Array.isArray(headers)
    ? headers
    : Object.entries(headers);
  return list.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

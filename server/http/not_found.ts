/**
 * Internal helper of the server: the default answer to a request that
 * matches no route.
 *
 * @module
 */

import type { HttpRequest, HttpResponse } from "./types.ts";

/**
 * The default not-found handler: `404` with a `text/plain` page listing the
 * URI, method and arguments, like ESP8266WebServer's.
 *
 * @param req The unmatched request.
 * @returns The `404` response.
 */
export function notFound(req: HttpRequest): HttpResponse {
  let body = `Not Found\n\nURI: ${req.path}\nMethod: ${req.method}\n`;
  const args = [...req.query];
  body += `Arguments: ${args.length}\n`;
  for (const [k, v] of args) body += ` ${k}: ${v}\n`;
  return { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" }, body };
}

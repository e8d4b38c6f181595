/**
 * Routing: method + path pattern → handler. Patterns are literal paths with
 * optional `:name` segments that match one non-empty segment each, and an
 * optional last `:name*` segment that matches the rest of the path (one or
 * more segments, joined with `/`, not empty).
 *
 * @module
 */

/** The result of a lookup. */
export type RouteMatch<T> =
  | { kind: "found"; value: T; params: Record<string, string> }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

interface Entry<T> {
  pattern: string;
  segments: string[];
  byMethod: Map<string, T>;
}

/** Thrown when a route pattern is malformed or registered twice. */
export class RoutePatternError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "RoutePatternError";
  }
}

function split(path: string): string[] {
  return path.split("/").slice(1);
}

/**
 * A small router. Literal segments are preferred to parameters by
 * registration order: register the specific route first.
 *
 * @typeParam T What a route maps to.
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 * const r = new Router<string>();
 * r.add("GET", "/events/:channel", "subscribe");
 * r.match("GET", "/events/a"); // { kind: "found", value: "subscribe", params: { channel: "a" } }
 * ```
 */
export class Router<T> {
  #entries: Entry<T>[] = [];

  /**
   * Registers a value for a method and pattern.
   *
   * @param method HTTP method, upper case.
   * @param pattern Path pattern starting with `/`, e.g. `/rest/events/:n`.
   * @param value The value to return on a match.
   * @throws {RoutePatternError} When the pattern is malformed or taken for this method.
   */
  add(method: string, pattern: string, value: T): void {
    if (!pattern.startsWith("/")) {
      throw new RoutePatternError(
        `route pattern must start with "/": received ${JSON.stringify(pattern)}`,
      );
    }
    const segments = split(pattern);
    segments.forEach((s, i) => {
      if (s.startsWith(":") && !/^:[A-Za-z_][A-Za-z0-9_]*\*?$/.test(s)) {
        throw new RoutePatternError(`invalid parameter segment ${JSON.stringify(s)} in ${pattern}`);
      }
      if (s.endsWith("*") && i !== segments.length - 1) {
        throw new RoutePatternError(`a :name* segment must come last in ${pattern}`);
      }
    });
    let entry = this.#entries.find((e) => e.pattern === pattern);
    if (entry === undefined) {
      entry = { pattern, segments, byMethod: new Map() };
      this.#entries.push(entry);
    }
    if (entry.byMethod.has(method)) {
      throw new RoutePatternError(`route ${method} ${pattern} is already registered`);
    }
    entry.byMethod.set(method, value);
  }

  /**
   * Removes a route.
   *
   * @param method HTTP method.
   * @param pattern The pattern it was registered with.
   * @returns Whether it was there.
   */
  remove(method: string, pattern: string): boolean {
    const entry = this.#entries.find((e) => e.pattern === pattern);
    if (entry === undefined || !entry.byMethod.delete(method)) return false;
    if (entry.byMethod.size === 0) this.#entries.splice(this.#entries.indexOf(entry), 1);
    return true;
  }

  /**
   * Finds the route for a request.
   *
   * @param method Request method (`HEAD` falls back to `GET`).
   * @param path Decoded request path.
   * @returns The match, a 405 with the allowed methods, or a 404.
   */
  match(method: string, path: string): RouteMatch<T> {
    // The path's segments, as `split` gives them, from index 1 (no copy without the leading "").
    const parts = path.split("/");
    let allow: string[] | undefined;
    for (const entry of this.#entries) {
      const params = matchSegments(entry.segments, parts);
      if (params === undefined) continue;
      const value = entry.byMethod.get(method) ??
        (method === "HEAD" ? entry.byMethod.get("GET") : undefined);
      if (value !== undefined) return { kind: "found", value, params };
      allow ??= [...entry.byMethod.keys()];
    }
    return allow ? { kind: "method-not-allowed", allow } : { kind: "not-found" };
  }
}

/**
 * The params of a pattern's match, or `undefined`. `parts` is the whole
 * `path.split("/")`: segment `i` of the pattern is `parts[i + 1]`.
 */
function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const n = parts.length - 1;
  const rest = pattern.length > 0 && pattern[pattern.length - 1].endsWith("*");
  const fixed = rest ? pattern.length - 1 : pattern.length;
  if (rest ? n < pattern.length : pattern.length !== n) return undefined;
  // Checked first, so that the routes a request does not match allocate nothing.
  for (let i = 0; i < fixed; i++) {
    const p = pattern[i];
    if (p.charCodeAt(0) === 58 /* : */) {
      if (parts[i + 1] === "") return undefined;
    } else if (p !== parts[i + 1]) {
      return undefined;
    }
  }
  // `:name*`: the rest of the path, not empty (its handler checks the rest).
  const tail = !rest ? "" : n === fixed + 1 ? parts[n] : parts.slice(fixed + 1).join("/");
  if (rest && tail === "") return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < fixed; i++) {
    const p = pattern[i];
    if (p.charCodeAt(0) === 58 /* : */) params[p.slice(1)] = parts[i + 1];
  }
  if (rest) params[pattern[fixed].slice(1, -1)] = tail;
  return params;
}

/**
 * The hub's dashboard files (`server/hub/static/`), loaded into memory once.
 *
 * Every file is read through a literal `new URL("./static/…", import.meta.url)`
 * so `deno compile --include server/hub/static` embeds them in a binary.
 *
 * @module
 */

/** One in-memory file served at a fixed URL path. */
export interface StaticAsset {
  /** File contents. */
  body: Uint8Array;
  /** Value of the `Content-Type` header, e.g. `text/html; charset=utf-8`. */
  contentType: string;
}

const HTML = "text/html; charset=utf-8";
const JAVASCRIPT = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/**
 * Reads the dashboard files and maps each URL path to its body and type.
 *
 * Keys: `/` and `/index.html` (the same page), `/app.js`, `/style.css`.
 *
 * @returns A map from URL path to asset.
 * @throws {Deno.errors.NotFound} When a file is missing (for example a
 * compiled binary built without `--include server/hub/static`).
 * @throws {Deno.errors.NotCapable} Without read permission for `server/hub/static`.
 *
 * @example
 * ```ts
 * const assets = await loadStaticAssets();
 * const page = assets.get("/");
 * // page.contentType === "text/html; charset=utf-8"
 * ```
 */
export async function loadStaticAssets(): Promise<Map<string, StaticAsset>> {
  const [html, js, css] = await Promise.all([
    Deno.readFile(new URL("./static/index.html", import.meta.url)),
    Deno.readFile(new URL("./static/app.js", import.meta.url)),
    Deno.readFile(new URL("./static/style.css", import.meta.url)),
  ]);
  const page: StaticAsset = { body: html, contentType: HTML };
  return new Map<string, StaticAsset>([
    ["/", page],
    ["/index.html", page],
    ["/app.js", { body: js, contentType: JAVASCRIPT }],
    ["/style.css", { body: css, contentType: CSS }],
  ]);
}

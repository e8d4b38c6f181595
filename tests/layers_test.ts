/**
 * The import rules of the layout, read from the import specifiers of every
 * source file (comments, and so JSDoc examples, are left out):
 *
 * - `queue/` and `sessions/` import nothing outside themselves;
 * - `server/http/` imports only itself;
 * - `server/middleware/` imports only itself and `server/http/`;
 * - the SSE core (`server/stream/`, `server/*.ts`) never imports
 *   `server/middleware/` or `server/hub/`;
 * - outside `server/hub/`, only `main.ts` imports `server/hub/`;
 * - a `_file.ts` is imported only from its own folder (tests exempt);
 * - `examples/` and `bench/` import only the published entry points;
 * - no source file imports `jsr:` or URLs, and `npm:` only where a feature
 *   loads its client (never the core's static graph: see the offline test).
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname;

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const path = join(dir, e.name);
    if (e.isDirectory) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      yield* sourceFiles(path);
    } else if (e.name.endsWith(".ts")) {
      yield path;
    }
  }
}

/** Import specifiers of a file: static, re-exports and literal dynamic imports. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  for (const m of code.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) out.push(m[1]);
  return out;
}

interface Edge {
  from: string;
  to: string;
}

async function edges(): Promise<Edge[]> {
  const all: Edge[] = [];
  for (const top of ["queue", "sessions", "server", "examples", "bench", "tests"]) {
    for await (const file of sourceFiles(top)) {
      const text = await Deno.readTextFile(join(ROOT, file));
      for (const spec of specifiers(text)) {
        const to = spec.startsWith(".") ? normalize(join(dirname(file), spec)) : spec;
        all.push({ from: file, to });
      }
    }
  }
  for (const file of ["mod.ts", "main.ts"]) {
    const text = await Deno.readTextFile(join(ROOT, file));
    for (const spec of specifiers(text)) {
      all.push({ from: file, to: spec.startsWith(".") ? normalize(spec) : spec });
    }
  }
  return all;
}

const inside = (path: string, dir: string) => path.startsWith(dir + "/");
const local = (to: string) => !to.includes(":");
const ENTRY_POINTS = new Set(["mod.ts", "server/hub/mod.ts", "queue/redis/mod.ts"]);
const all = await edges();

function broken(rule: (e: Edge) => boolean): string[] {
  return all.filter(rule).map((e) => `${e.from} -> ${e.to}`);
}

Deno.test("the edges were read (the rules below are not vacuous)", () => {
  assert.ok(all.length > 200, `only ${all.length} imports found`);
  assert.ok(all.some((e) => e.from === "server/server.ts" && inside(e.to, "server/http")));
});

Deno.test("queue/ and sessions/ import nothing outside themselves", () => {
  assert.deepEqual(
    broken((e) =>
      ["queue", "sessions"].some((d) => inside(e.from, d) && local(e.to) && !inside(e.to, d))
    ),
    [],
  );
});

Deno.test("server/http/ imports only itself", () => {
  assert.deepEqual(
    broken((e) => inside(e.from, "server/http") && local(e.to) && !inside(e.to, "server/http")),
    [],
  );
});

Deno.test("server/middleware/ imports only itself and server/http/", () => {
  assert.deepEqual(
    broken((e) =>
      inside(e.from, "server/middleware") && local(e.to) &&
      !inside(e.to, "server/middleware") && !inside(e.to, "server/http")
    ),
    [],
  );
});

Deno.test("the SSE core never imports server/middleware/ or server/hub/", () => {
  const core = (f: string) =>
    inside(f, "server/stream") || (inside(f, "server") && !f.slice(7).includes("/"));
  assert.deepEqual(
    broken((e) =>
      core(e.from) && (inside(e.to, "server/middleware") || inside(e.to, "server/hub"))
    ),
    [],
  );
});

Deno.test("outside server/hub/, only main.ts imports server/hub/ (tests and published entries exempt)", () => {
  assert.deepEqual(
    broken((e) =>
      inside(e.to, "server/hub") && !inside(e.from, "server/hub") && e.from !== "main.ts" &&
      !inside(e.from, "tests") && !inside(e.from, "examples") && !inside(e.from, "bench")
    ),
    [],
  );
});

Deno.test("a _file.ts is imported only from its own folder (tests exempt)", () => {
  assert.deepEqual(
    broken((e) =>
      local(e.to) && e.to.split("/").at(-1)!.startsWith("_") && !inside(e.from, "tests") &&
      dirname(e.to) !== dirname(e.from)
    ),
    [],
  );
});

Deno.test("examples/ and bench/ import only the published entry points", () => {
  assert.deepEqual(
    broken((e) => {
      if (!inside(e.from, "examples") && !inside(e.from, "bench")) return false;
      if (!local(e.to)) return false;
      if (inside(e.to, dirname(e.from))) return false; // Their own helpers.
      return !ENTRY_POINTS.has(relative(".", e.to));
    }),
    [],
  );
});

Deno.test("no jsr: or URL imports, and npm: only in features that load their client", () => {
  const npmAllowed = (f: string) =>
    inside(f, "tests") || inside(f, "bench") || inside(f, "examples") ||
    inside(f, "queue/redis") || inside(f, "server/hub/mqtt");
  assert.deepEqual(
    broken((e) => /^(jsr:|https?:)/.test(e.to) || (e.to.startsWith("npm:") && !npmAllowed(e.from))),
    [],
  );
});

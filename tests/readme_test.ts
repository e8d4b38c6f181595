import assert from "node:assert/strict";
import { mainHelp } from "./_util/main_help.ts";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../", import.meta.url);
const ROOT_DIR = fileURLToPath(ROOT);

/** The READMEs next to the code; each must exist. */
const ROOM_READMES = [
  "server/hub/README.md",
  "bench/README.md",
  "tests/README.md",
  "examples/README.md",
];

/** Every README.md of the repository (outside dot-folders and node_modules). */
async function readmes(): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(join(ROOT_DIR, dir))) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name === "README.md") found.push(path);
    }
  }
  await walk("");
  return found.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The text of a Markdown file without its fenced code blocks (commands, not references). */
function withoutFences(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutFences(text).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

Deno.test("the hub README's flag table lists every flag of main.ts --help", async () => {
  const help = await mainHelp();
  const flags = [...help.matchAll(/^\s+(?:-\w, )?--([a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length > 20, `found ${flags.length} flags in --help`);
  const readme = await Deno.readTextFile(new URL("server/hub/README.md", ROOT));
  const missing = flags.filter((f) => !readme.includes(`\`--${f}\``));
  assert.deepEqual(missing, [], "flags missing from server/hub/README.md");
});

Deno.test("README's quick start is the two npx commands and .ci/run runs the README's test task", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  assert.match(readme, /npx -y deno@2\.9\.6 task start/);
  assert.match(readme, /npx -y deno@2\.9\.6 task test/);
  const ci = await Deno.readTextFile(new URL(".ci/run", ROOT));
  assert.match(ci, /deno task test/);
  assert.match(ci, /npm install -g deno@2\.9\.6/);
});

Deno.test("the root README stays a front door: under 15 000 bytes", async () => {
  const { size } = await Deno.stat(new URL("README.md", ROOT));
  assert.ok(size < 15_000, `README.md is ${size} bytes; move details to a README next to the code`);
});

Deno.test("each room README exists", async () => {
  const missing = [];
  for (const path of ROOM_READMES) if (!await exists(join(ROOT_DIR, path))) missing.push(path);
  assert.deepEqual(missing, []);
});

Deno.test("every relative link and file path in every README points to something that exists", async () => {
  const files = await readmes();
  assert.ok(files.includes("README.md"));
  for (const path of ROOM_READMES) assert.ok(files.includes(path), `${path} not found by the walk`);
  const broken: string[] = [];
  for (const file of files) {
    const dir = dirname(join(ROOT_DIR, file));
    const text = withoutFences(await Deno.readTextFile(join(ROOT_DIR, file)));

    // [text](target): relative to the README, as GitHub resolves it; anchors checked too.
    for (const m of text.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [pathPart, anchor] = target.split("#", 2);
      const abs = pathPart === "" ? join(ROOT_DIR, file) : resolve(dir, pathPart);
      if (relative(ROOT_DIR, abs).startsWith("..")) {
        broken.push(`${file}: ${target} (outside the repository)`);
      } else if (!await exists(abs)) {
        broken.push(`${file}: ${target}`);
      } else if (anchor !== undefined && abs.endsWith(".md")) {
        if (!anchors(await Deno.readTextFile(abs)).has(anchor)) {
          broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }

    // `path/file.ts` mentions: relative to the README or to the repository root. Paths that
    // leave the repository (the sibling ../shared checkout of the benchmark) are not checked.
    // The text of a link was checked with its target above.
    const prose = text.replace(/\[[^\]]*\]\([^)\s]+\)/g, "");
    for (const m of prose.matchAll(/`([^`\s]+)`/g)) {
      const mention = m[1].replace(/[.,:;]$/, "");
      const looksLikePath = /^[\w.-]+(\/[\w.-]+)*\/?$/.test(mention) &&
        (/\.(ts|js|md|json|sh|html|css)$/.test(mention) ||
          /^(server|sessions|queue|tests|bench|examples)\//.test(mention));
      if (!looksLikePath || mention.startsWith("../")) continue;
      if (await exists(resolve(dir, mention)) || await exists(join(ROOT_DIR, mention))) continue;
      broken.push(`${file}: \`${mention}\``);
    }
  }
  assert.deepEqual(broken, [], "links or paths in READMEs that point to nothing");
});

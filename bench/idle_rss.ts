/**
 * Memory of an idle hub: `deno run -A main.ts` with no flags, no stream ever
 * opened, against a bare `Deno.listen` script with one timer (Deno's own
 * floor for a server). Each program runs in a fresh `DENO_DIR` (a first run
 * that transpiles, then the counted runs), so accumulated code caches do not
 * skew it. Prints a markdown table of `VmRSS` after a settle time.
 *
 * ```sh
 * deno task bench:idle            # 3 runs each
 * deno task bench:idle --runs 5
 * ```
 *
 * @module
 */

import { cliFlags } from "../server/hub/mod.ts";

const { values: flags } = cliFlags({
  name: "idle_rss",
  usage: "deno run -A bench/idle_rss.ts [flags]",
  description: "RSS of an idle hub (main.ts, no flags) against a bare Deno.listen script with " +
    "one timer, each in a fresh DENO_DIR.",
  flags: {
    runs: { type: "integer", default: 3, min: 1, max: 20, help: "counted runs of each program" },
    settle: { type: "number", default: 3, help: "seconds to wait before reading VmRSS" },
  },
});

const ROOT = new URL("../", import.meta.url).pathname;
const FLOOR =
  "setInterval(() => {}, 15000); for await (const c of Deno.listen({ port: 0 })) c.close();";

async function rssOf(args: string[], denoDir: string): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { DENO_DIR: denoDir },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, flags.settle * 1000));
    const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

async function measure(args: string[]): Promise<{ first: number; runs: number[] }> {
  const denoDir = await Deno.makeTempDir({ prefix: "sluice-idle-" });
  try {
    const first = await rssOf(args, denoDir);
    const runs: number[] = [];
    for (let i = 0; i < flags.runs; i++) runs.push(await rssOf(args, denoDir));
    return { first, runs: runs.sort((a, b) => a - b) };
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const hub = await measure(["run", "-A", "main.ts", "--port", "0"]);
const floor = await measure(["eval", FLOOR]);
console.log("| program | first run (transpiles) | median of counted runs | min – max |");
console.log("|---|---|---|---|");
for (
  const [name, r] of [["idle hub: deno run -A main.ts", hub], [
    "Deno.listen + one timer",
    floor,
  ]] as const
) {
  const median = r.runs[Math.floor(r.runs.length / 2)];
  console.log(
    `| ${name} | ${mb(r.first)} | ${mb(median)} | ${mb(r.runs[0])} – ${mb(r.runs.at(-1)!)} |`,
  );
}
console.log(`\n${flags.runs} counted run(s) each, VmRSS after ${flags.settle} s, fresh DENO_DIR.`);

/**
 * Headless Chromium for end-to-end tests, driven by `playwright-core`.
 *
 * Uses Debian's `/usr/bin/chromium` (installed by `.ci/setup_browser.sh`);
 * playwright-core never downloads a browser of its own. Tests that need the
 * browser set `ignore: !browserAvailable()` so they are skipped cleanly on a
 * machine without Chromium.
 *
 * Browser tests keep Deno's op and resource sanitizers on: `await using` on
 * the returned browser closes Chromium and its pipe before the test ends, and
 * the test closes and awaits its own server after that.
 *
 * @module
 */

// Pinned here, not in deno.json's imports: `deno task start` installs every npm package of the
// import map, and only the browser tests need this one.
// deno-lint-ignore no-import-prefix
import { type Browser, chromium, type Page } from "npm:playwright-core@1.65.1";

/** A browser tab, for tests that take one from {@linkcode launchBrowser}. */
export type { Page };

/** Path of the Chromium binary that browser tests run. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Flags given to Chromium: headless, no sandbox (tests run as root in a
 * container), and nothing that reaches the network on its own.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Options for {@linkcode launchBrowser}. */
export interface LaunchBrowserOptions {
  /**
   * Milliseconds to wait for Chromium to start before failing.
   * @default {30000}
   */
  timeoutMs?: number;
}

/** Default values of {@linkcode LaunchBrowserOptions}. */
export const DEFAULT_LAUNCH_BROWSER_OPTIONS: Required<LaunchBrowserOptions> = {
  timeoutMs: 30_000,
};

/**
 * Whether Chromium is installed at {@linkcode CHROMIUM_PATH}.
 *
 * @returns `true` when the binary exists and is a file.
 *
 * @example
 * ```ts
 * Deno.test({ name: "page shows x", ignore: !browserAvailable() }, async () => {});
 * ```
 */
export function browserAvailable(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

/**
 * Launches headless Chromium with a fresh temporary profile.
 *
 * `chromium.launch()` creates its own `--user-data-dir` in the temp directory
 * and removes it on close (passing `--user-data-dir` in `args` is rejected by
 * playwright-core), so every launch starts from an empty profile.
 *
 * @param options Launch options.
 * @returns The browser; it implements `Symbol.asyncDispose`, so `await using`
 * closes it.
 * @throws {RangeError} When `timeoutMs` is not a positive integer.
 * @throws {Error} When Chromium is missing or fails to start.
 *
 * @example
 * ```ts
 * await using browser = await launchBrowser();
 * const page = await browser.newPage();
 * await page.goto("http://127.0.0.1:8080/");
 * ```
 */
export async function launchBrowser(options: LaunchBrowserOptions = {}): Promise<Browser> {
  const { timeoutMs } = { ...DEFAULT_LAUNCH_BROWSER_OPTIONS, ...options };
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive integer: received ${timeoutMs}`);
  }
  return await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    timeout: timeoutMs,
  });
}

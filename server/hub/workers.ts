/**
 * `--workers N`: the hub runs N copies of itself on one port (`--reuse-port`,
 * so the kernel spreads connections over them) and restarts a copy that
 * dies, with a growing delay, as `deno serve --parallel` does for
 * `Deno.serve`. The copies share their events through the Redis engine, so
 * a client served by any of them sees every event.
 *
 * @module
 */

import type { Logger } from "../http/types.ts";

/** Options of {@linkcode superviseWorkers}. */
export interface WorkersOptions {
  /** How many copies run at once. */
  readonly count: number;
  /** The program and arguments of one copy (`--workers` removed, `--reuse-port` added). */
  readonly command: readonly string[];
  /** Where starts, exits and restarts are logged. */
  readonly log: Logger;
  /** Shortest wait before restarting a copy that died, in ms. @default {500} */
  readonly minDelayMs?: number;
  /** Longest wait, in ms. @default {30000} */
  readonly maxDelayMs?: number;
  /** A copy that ran this long resets its delay, in ms. @default {30000} */
  readonly stableMs?: number;
}

/** A running group of workers. */
export interface Workers {
  /** PIDs of the copies running now. */
  readonly pids: readonly number[];
  /** Stops every copy (SIGTERM: they shut down gracefully) and resolves when all have exited. */
  stop(): Promise<void>;
}

/**
 * Starts the copies and keeps them running.
 *
 * @param options How many, the command line, the logger and the restart delays.
 * @returns The group.
 * @throws {RangeError} When `count` is not a positive integer.
 * @example
 * ```ts
 * import { superviseWorkers } from "./workers.ts";
 * const workers = superviseWorkers({
 *   count: 2,
 *   command: [Deno.execPath(), "run", "-A", "--unstable-net", "main.ts", "--reuse-port"],
 *   log: () => {},
 * });
 * await workers.stop();
 * ```
 */
export function superviseWorkers(options: WorkersOptions): Workers {
  const { count, command, log } = options;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`workers must be a positive integer: received ${count}`);
  }
  const minDelay = options.minDelayMs ?? 500;
  const maxDelay = options.maxDelayMs ?? 30_000;
  const stableMs = options.stableMs ?? 30_000;
  const running = new Map<number, Deno.ChildProcess>();
  const exits = new Set<Promise<unknown>>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopping = false;

  const start = (slot: number, delay: number): void => {
    if (stopping) return;
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const startedAt = Date.now();
    running.set(child.pid, child);
    log("info", "worker started", { worker: slot, pid: child.pid });
    const exit = child.status.then((status) => {
      running.delete(child.pid);
      exits.delete(exit);
      if (stopping) return;
      const next = Date.now() - startedAt >= stableMs
        ? minDelay
        : Math.min(maxDelay, Math.max(minDelay, delay * 2));
      // Jittered, so copies that died together do not come back together.
      const wait = Math.round(next * (0.5 + Math.random()));
      log("warn", "worker exited; restarting", {
        worker: slot,
        pid: child.pid,
        code: status.code,
        signal: status.signal ?? undefined,
        restartInMs: wait,
      });
      const timer = setTimeout(() => {
        timers.delete(timer);
        start(slot, next);
      }, wait);
      timers.add(timer);
    });
    exits.add(exit);
  };

  for (let slot = 1; slot <= count; slot++) start(slot, minDelay / 2);
  return {
    get pids() {
      return [...running.keys()];
    },
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const child of running.values()) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
      }
      await Promise.allSettled([...exits]);
    },
  };
}

/**
 * The command line of one copy of this program: the same runtime, module
 * (or compiled binary) and arguments, `--workers` removed and `--reuse-port`
 * added.
 *
 * @param args This process's arguments.
 * @returns The copy's command line.
 * @example
 * ```ts
 * import { workerCommand } from "./workers.ts";
 * workerCommand(["--redis", "redis://127.0.0.1:6379", "--workers", "2"]);
 * ```
 */
export function workerCommand(args: readonly string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--workers") i++;
    else if (!args[i].startsWith("--workers=")) rest.push(args[i]);
  }
  if (!rest.includes("--reuse-port")) rest.push("--reuse-port");
  // A compiled binary is its own runtime; `deno run` needs the module, the
  // permissions and the flags of `deno task start`.
  if (Deno.mainModule.includes("/deno-compile-")) return [Deno.execPath(), ...rest];
  return [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--unstable-net",
    "--v8-flags=--max-semi-space-size=16,--semi-space-growth-factor=8,--expose-gc",
    new URL(Deno.mainModule).pathname,
    ...rest,
  ];
}

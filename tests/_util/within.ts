/**
 * Hang guards for tests: they fail a step that never finishes, and never
 * measure time (no test asserts how fast anything is).
 *
 * @module
 */

/** Fails the awaited step after `ms` milliseconds; only guards against hangs. */
export async function within<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

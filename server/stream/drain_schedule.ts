/**
 * When the delivery path drains its queue: on a macrotask, so every publish
 * that arrives in one turn of the event loop goes out in one corked pass
 * (each socket gets one write for all of them). Right after a pass to few
 * sockets, a ~1 ms timer collects more per write; after a quiet spell, or
 * after a pass to many sockets, `setImmediate` goes at once (lower latency,
 * and the publishers' answers are not held back). Figures: bench/README.md.
 *
 * @module
 */

/**
 * A drain that follows another one within this many ms waits for a timer
 * (about 1 ms): under load that window collects more events per write...
 */
const BUSY_GAP_MS = 2;
/**
 * ...but only after a pass that reached fewer sockets than this. A pass to
 * more takes longer than the timer's millisecond, so events pile up during
 * the pass anyway, and the wait would only hold back the publishers' answers.
 */
const BUSY_TIMER_MAX_TARGETS = 256;

/**
 * `setImmediate` of `node:timers`, loaded with the first drain: loading it
 * starts Deno's Node compatibility layer (several megabytes), which an idle
 * hub does without. Until it is there, drains go by a 0 ms timer.
 */
let immediates: typeof import("node:timers") | undefined;
let loadingImmediates: Promise<unknown> | undefined;
function loadImmediates(): void {
  loadingImmediates ??= import("node:timers").then((m) => immediates = m, () => {});
}

/**
 * With a shared feed, a drain right after another waits this long: events
 * from the engine come in small batches, and each pass costs one socket
 * write per stream, so under load the wait is what keeps writes per event
 * down (figures: bench/README.md). After a quiet spell a drain still goes at once.
 */
const FEED_BUSY_DELAY_MS = 10;

/**
 * Schedules the drains of one delivery path (at most one pending).
 *
 * @example
 * ```ts
 * import { DrainSchedule } from "./drain_schedule.ts";
 * const schedule = new DrainSchedule(() => console.log("drain"));
 * schedule.request();
 * schedule.cancel();
 * ```
 */
export class DrainSchedule {
  readonly #drain: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #immediate: unknown;
  #lastDrainAt = 0;
  /** Sockets the last fan-out pass reached. */
  #lastPassTargets = 0;

  /**
   * Creates the schedule.
   *
   * @param drain Runs one pass (it calls {@linkcode cancel} first and {@linkcode passDone} after).
   */
  constructor(drain: () => void) {
    this.#drain = drain;
  }

  /**
   * Events come from a shared feed: publishers are answered by the engine,
   * not by the drain, so a busy drain always waits (see
   * {@linkcode FEED_BUSY_DELAY_MS}), however many sockets the last pass reached.
   */
  fromFeed = false;

  #drainNow = (): void => this.#drain();

  /** Asks for a drain (several asks before it runs make one). */
  request = (): void => {
    if (this.#timer !== undefined || this.#immediate !== undefined) return;
    if (
      immediates === undefined ||
      ((this.fromFeed || this.#lastPassTargets < BUSY_TIMER_MAX_TARGETS) &&
        performance.now() - this.#lastDrainAt < BUSY_GAP_MS)
    ) {
      loadImmediates();
      this.#timer = setTimeout(this.#drainNow, this.fromFeed ? FEED_BUSY_DELAY_MS : 0);
    } else {
      this.#immediate = immediates.setImmediate(this.#drainNow);
    }
  };

  /** Cancels the pending drain, if any. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#immediate !== undefined) {
      immediates?.clearImmediate(this.#immediate as Parameters<typeof clearImmediate>[0]);
    }
    this.#immediate = undefined;
  }

  /**
   * Notes the end of a pass, which sets how the next one is scheduled.
   *
   * @param targets Sockets the pass reached.
   */
  passDone(targets: number): void {
    this.#lastDrainAt = performance.now();
    this.#lastPassTargets = targets;
  }
}

/**
 * A bounded FIFO queue that never blocks its producer: `push()` answers
 * `false` when full (back-pressure), `pushWait()` waits for room up to a
 * timeout, like FreeRTOS's `xQueueSend` with a tick count.
 *
 * @module
 */

/** Counters of a {@linkcode MessageQueue}. */
export interface MessageQueueStats {
  /** Items accepted so far. */
  readonly pushed: number;
  /** Pushes refused because the queue was full. */
  readonly rejected: number;
  /** Items taken out so far. */
  readonly shifted: number;
}

/**
 * A bounded ring-buffer queue.
 *
 * @typeParam T The item type.
 * @example
 * ```ts
 * import { MessageQueue } from "./message_queue.ts";
 * const q = new MessageQueue<string>(2);
 * q.push("a"); q.push("b");
 * q.push("c"); // false: full
 * q.shift(); // "a"
 * ```
 */
export class MessageQueue<T> {
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;
  #waiters: (() => void)[] = [];
  #pushed = 0;
  #rejected = 0;
  #shifted = 0;
  #onItem: (() => void) | undefined;

  /**
   * Creates an empty queue.
   *
   * @param capacity Maximum number of queued items, a positive integer.
   * @param onItem Called (synchronously) after each accepted push, to schedule a drain.
   * @throws {RangeError} When `capacity` is not a positive integer.
   */
  constructor(capacity: number, onItem?: () => void) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`queue capacity must be a positive integer: received ${capacity}`);
    }
    this.#items = new Array(capacity);
    this.#onItem = onItem;
  }

  /** Maximum number of items. */
  get capacity(): number {
    return this.#items.length;
  }

  /** Number of queued items. */
  get length(): number {
    return this.#length;
  }

  /** Counters since construction. */
  get stats(): MessageQueueStats {
    return { pushed: this.#pushed, rejected: this.#rejected, shifted: this.#shifted };
  }

  /**
   * Appends an item if there is room.
   *
   * @param item The item.
   * @returns `true` when queued, `false` when the queue is full (counted).
   */
  push(item: T): boolean {
    if (this.#tryPush(item)) return true;
    this.#rejected++;
    return false;
  }

  /**
   * Appends an item, waiting up to `timeoutMs` for room when the queue is full.
   *
   * @param item The item.
   * @param timeoutMs How long to wait for room; `0` behaves like {@linkcode push}.
   * @returns `true` when queued, `false` when still full after the timeout.
   */
  async pushWait(item: T, timeoutMs: number): Promise<boolean> {
    if (this.#tryPush(item)) return true;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const room = await this.#waitForRoom(deadline - Date.now());
      if (room && this.#tryPush(item)) return true;
    }
    this.#rejected++; // counted once, when it finally fails
    return false;
  }

  /**
   * Removes and returns the oldest item.
   *
   * @returns The item, or `undefined` when empty.
   */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    this.#shifted++;
    if (this.#waiters.length > 0) this.#waiters.shift()!();
    return item;
  }

  /**
   * Waits until an item is taken out (room may have appeared), up to a timeout.
   * For producers that must do something just before pushing (e.g. record the
   * item elsewhere) and so cannot use {@linkcode pushWait}.
   *
   * @param timeoutMs Longest wait in milliseconds.
   * @returns `true` when woken by a shift (or {@linkcode wakeAll}), `false` on timeout.
   */
  waitForRoom(timeoutMs: number): Promise<boolean> {
    return this.#waitForRoom(timeoutMs);
  }

  /** Wakes every waiter (e.g. on shutdown); their pushes then fail or succeed at once. */
  wakeAll(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Appends when there is room; counts nothing on failure. */
  #tryPush(item: T): boolean {
    const cap = this.#items.length;
    if (this.#length === cap) return false;
    this.#items[(this.#head + this.#length) % cap] = item;
    this.#length++;
    this.#pushed++;
    this.#onItem?.();
    return true;
  }

  #waitForRoom(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const wake = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(true);
      };
      const timer: ReturnType<typeof setTimeout> = setTimeout(() => {
        if (done) return;
        done = true;
        const i = this.#waiters.indexOf(wake);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      }, Math.max(0, ms));
      this.#waiters.push(wake);
    });
  }
}

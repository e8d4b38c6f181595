/**
 * Simulated sensors, as in ESP8266WebServer's `ServerSentEvents` demo: each
 * sensor takes a new random 16-bit value at random intervals and reports a
 * change only when the value differs from the previous one. Used by
 * `examples/rest_subscribe.ts` and by the hub's `--demo` channel `sensors`.
 *
 * @module
 */

/** One change of a sensor's value. */
export interface SensorChange {
  /** Sensor name, e.g. `sensorA`. */
  readonly name: string;
  /** The new value. */
  readonly state: number;
  /** The value before. */
  readonly prevState: number;
}

/** Options of {@linkcode DemoSensors}. Every default is in {@linkcode DEFAULT_DEMO_SENSORS}. */
export interface DemoSensorsOptions {
  /** Sensor names. @default {["sensorA", "sensorB"]} */
  names?: readonly string[];
  /** Shortest time between two updates of one sensor, in ms. @default {10000} */
  minIntervalMs?: number;
  /** Longest time between two updates of one sensor, in ms (exclusive). @default {30000} */
  maxIntervalMs?: number;
  /** Largest value a sensor takes (values are integers from 0). @default {65535} */
  maxValue?: number;
  /** Random source in [0, 1), for tests. @default {Math.random} */
  random?: () => number;
  /**
   * Called on every update, changed or not (the original logs each one), before
   * the change callback.
   */
  onUpdate?: (name: string, prevState: number, state: number) => void;
}

/** Defaults of {@linkcode DemoSensorsOptions}: the original sketch's values. */
export const DEFAULT_DEMO_SENSORS = {
  names: ["sensorA", "sensorB"] as readonly string[],
  minIntervalMs: 10_000,
  maxIntervalMs: 30_000,
  maxValue: 65_535,
} as const;

const SENSOR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number: received ${value}`);
  }
  return value;
}

/**
 * The JSON data of a state event, in the original's shape:
 * `{"TYPE":"STATE","sensorA":{"state":N,"prevState":M}}`.
 *
 * @param change The change.
 * @returns The JSON text.
 * @example
 * ```ts
 * import { sensorStateJson } from "./demo_sensors.ts";
 * sensorStateJson({ name: "sensorA", state: 7, prevState: 3 });
 * // '{"TYPE":"STATE","sensorA":{"state":7,"prevState":3}}'
 * ```
 */
export function sensorStateJson(change: SensorChange): string {
  return JSON.stringify({
    TYPE: "STATE",
    [change.name]: { state: change.state, prevState: change.prevState },
  });
}

/**
 * A set of simulated sensors. Each starts at `0`, updates once at
 * {@linkcode DemoSensors.start} and then again after a random delay in
 * `[minIntervalMs, maxIntervalMs)`, forever, until {@linkcode DemoSensors.stop}.
 *
 * @example
 * ```ts
 * import { DemoSensors, sensorStateJson } from "./demo_sensors.ts";
 * using sensors = new DemoSensors((change) => console.log(sensorStateJson(change)), {
 *   minIntervalMs: 1000,
 *   maxIntervalMs: 3000,
 * }).start();
 * ```
 */
export class DemoSensors implements Disposable {
  readonly #onChange: (change: SensorChange) => void;
  readonly #names: readonly string[];
  readonly #min: number;
  readonly #max: number;
  readonly #maxValue: number;
  readonly #random: () => number;
  readonly #onUpdate: ((name: string, prevState: number, state: number) => void) | undefined;
  readonly #values = new Map<string, number>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #running = false;

  /**
   * Creates the sensors, stopped, every value `0`.
   *
   * @param onChange Called with each change of value (never for an update to the same value).
   * @param options Names, interval range, value range, random source.
   * @throws {RangeError} When an interval is negative, `minIntervalMs > maxIntervalMs`, or
   * `maxValue` is not a positive integer.
   * @throws {TypeError} When a name is not an identifier or appears twice.
   */
  constructor(onChange: (change: SensorChange) => void, options: DemoSensorsOptions = {}) {
    const d = DEFAULT_DEMO_SENSORS;
    const names = options.names ?? d.names;
    if (names.length === 0 || new Set(names).size !== names.length) {
      throw new TypeError(
        `names must be a non-empty list of distinct names: received ${JSON.stringify(names)}`,
      );
    }
    for (const n of names) {
      if (!SENSOR_NAME_RE.test(n)) {
        throw new TypeError(`sensor names must be identifiers: received ${JSON.stringify(n)}`);
      }
    }
    const min = nonNegative("minIntervalMs", options.minIntervalMs ?? d.minIntervalMs);
    const max = nonNegative("maxIntervalMs", options.maxIntervalMs ?? d.maxIntervalMs);
    if (min > max) {
      throw new RangeError(
        `minIntervalMs must not exceed maxIntervalMs (${max}): received ${min}`,
      );
    }
    const maxValue = options.maxValue ?? d.maxValue;
    if (!Number.isSafeInteger(maxValue) || maxValue < 1) {
      throw new RangeError(`maxValue must be a positive integer: received ${maxValue}`);
    }
    this.#onChange = onChange;
    this.#names = [...names];
    this.#min = min;
    this.#max = max;
    this.#maxValue = maxValue;
    this.#random = options.random ?? Math.random;
    this.#onUpdate = options.onUpdate;
    for (const n of this.#names) this.#values.set(n, 0);
  }

  /** Sensor names. */
  get names(): readonly string[] {
    return this.#names;
  }

  /** Whether the sensors are updating. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * The current value of a sensor.
   *
   * @param name Sensor name.
   * @returns Its value, or `undefined` for an unknown name.
   */
  value(name: string): number | undefined {
    return this.#values.get(name);
  }

  /**
   * Updates every sensor once now, then keeps updating each at random
   * intervals. Idempotent.
   *
   * @returns This object.
   */
  start(): this {
    if (this.#running) return this;
    this.#running = true;
    for (const name of this.#names) this.#update(name);
    return this;
  }

  /** Stops every timer. Idempotent. */
  stop(): void {
    this.#running = false;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  /** Same as {@linkcode stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  #update(name: string): void {
    this.#timers.delete(name);
    if (!this.#running) return;
    const prevState = this.#values.get(name)!;
    const state = Math.min(this.#maxValue, Math.floor(this.#random() * (this.#maxValue + 1)));
    this.#values.set(name, state);
    try {
      this.#onUpdate?.(name, prevState, state);
      if (state !== prevState) this.#onChange({ name, state, prevState });
    } finally {
      if (this.#running) {
        const delay = this.#min + this.#random() * (this.#max - this.#min);
        this.#timers.set(name, setTimeout(() => this.#update(name), delay));
      }
    }
  }
}

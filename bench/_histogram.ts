/**
 * Internal: a log-linear histogram of non-negative integers (microseconds in
 * the bench), ~1.6 % relative resolution, fixed memory; same bucketing as the
 * C instruments in ../shared/bench/sseload so their percentiles compare.
 *
 * @module
 */

const SUB = 64;
const BUCKETS = 40 * SUB + 2 * SUB;

/**
 * Log-linear histogram. Values above 2^38 are clamped into the last bucket.
 *
 * @example
 * ```ts
 * const h = new Histogram();
 * h.add(120);
 * h.percentile(99); // ≈ 120
 * ```
 */
export class Histogram {
  /** Bucket counts. */
  readonly buckets: Float64Array = new Float64Array(BUCKETS);
  /** Number of values added. */
  count = 0;
  /** Largest value added. */
  max = 0;
  /** Sum of values added. */
  sum = 0;

  /**
   * Add one value.
   *
   * @param v value (negative values count as 0)
   */
  add(v: number): void {
    if (v < 0) v = 0;
    v = Math.floor(v);
    this.buckets[bucketOf(v)]++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /**
   * Add every bucket of another histogram (or of its `toJSON()` pairs).
   *
   * @param other histogram or `[index, count]` pairs
   */
  merge(other: Histogram | Array<[number, number]>): void {
    const pairs = other instanceof Histogram ? other.toJSON() : other;
    for (const [i, c] of pairs) {
      this.buckets[i] += c;
      this.count += c;
      const v = valueOf(i);
      this.sum += v * c;
      if (v > this.max) this.max = v;
    }
    if (other instanceof Histogram && other.max > this.max) this.max = other.max;
  }

  /**
   * Value at percentile p (bucket midpoint, capped at max).
   *
   * @param p percentile in [0, 100]
   * @returns the value, 0 when empty
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    let want = Math.floor((p / 100) * this.count);
    if (want >= this.count) want = this.count - 1;
    let acc = 0;
    for (let i = 0; i < BUCKETS; i++) {
      acc += this.buckets[i];
      if (acc > want) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  /**
   * Non-empty buckets as `[index, count]` pairs (compact, mergeable).
   *
   * @returns pairs
   */
  toJSON(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.buckets[i] > 0) out.push([i, this.buckets[i]]);
    return out;
  }
}

function bucketOf(v: number): number {
  if (v < 2 * SUB) return v;
  if (v >= 2 ** 38) return BUCKETS - 1;
  const msb = v < 4294967296
    ? 31 - Math.clz32(v)
    : 32 + 31 - Math.clz32(Math.floor(v / 4294967296));
  const e = msb - 6;
  return e * SUB + Math.floor(v / 2 ** e);
}

function valueOf(idx: number): number {
  if (idx < 2 * SUB) return idx;
  const e = Math.floor(idx / SUB) - 1;
  const m = (idx % SUB) + SUB;
  return m * 2 ** e + Math.floor(2 ** e / 2);
}

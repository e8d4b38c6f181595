/**
 * Helpers of the replay, slow-consumer and durability tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import type { ParsedEvent, SseParser } from "../_util/sse_parser.ts";
import { within } from "../_util/within.ts";

export { within } from "../_util/within.ts";

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until it holds; fails after `ms` (a hang guard, not a timing check). */
export async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`hung: ${what}`);
    await sleep(5);
  }
}

/** Opens a stream and checks its 200 head. */
export async function subscribe(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ client: RawClient; parser: SseParser }> {
  const s = await within(RawClient.stream(port, path, headers), `stream ${path}`);
  assert.equal(s.head.status, 200, `${path}: ${s.head.statusLine}`);
  assert.equal(s.head.headers.get("content-type"), "text/event-stream", path);
  return { client: s.client, parser: s.parser };
}

/** Reads until the parser holds `n` events. */
export function readEvents(
  s: { client: RawClient; parser: SseParser },
  n: number,
): Promise<ParsedEvent[]> {
  return within(s.client.readEvents(s.parser, n).then(() => s.parser.events), `${n} events`);
}

/** The data of events that are not gap notices. */
export function dataOf(events: readonly ParsedEvent[]): string[] {
  return events.filter((e) => e.type !== "sluice.gap").map((e) => e.data);
}

/**
 * Internal: what the subscriber load tool's connection engines share.
 *
 * @module
 */
import type { StatsPage } from "./_libc.ts";
import type { ConnCounters, SseCounter } from "./_sse_parser.ts";

/** What to do with a connection once its response head is in. */
export type SubscriberMode = "stream" | "idle" | "stall";

/** Options of an engine. */
export interface EngineOptions {
  /** numeric IPv4 address */
  host: string;
  /** TCP port */
  port: number;
  /** the whole GET request */
  request: Uint8Array;
  /** connections to open */
  conns: number;
  /** handshakes in flight at most */
  parallel: number;
  /** connect + response head timeout, ns */
  timeoutNs: number;
  /** read buffer bytes (per connection in the Deno engine, shared in the epoll engine) */
  rbuf: number;
  /** stream, idle or stall */
  mode: SubscriberMode;
  /** SO_RCVBUF of stalled connections (epoll engine; 0 = kernel autotuning) */
  stallRcvbuf: number;
  /** lazy reader period in ms, 0 = off */
  readDelayMs: number;
  /** event counting and latency */
  sse: SseCounter;
  /** connection outcomes */
  counters: ConnCounters;
  /** live counters for a closed-loop publisher, or null */
  stats: StatsPage | null;
}

/** A way to run N subscriber connections. */
export interface Engine {
  /** Opens every connection; resolves once each is established or failed. */
  connectPhase(): Promise<void>;
  /** Stops reading and closes every connection (RST where the engine can). Idempotent. */
  stop(): void;
  /**
   * Established connections the server has closed although we never read them
   * (stall mode: the server dropped a slow consumer), or null if the engine cannot tell.
   */
  peerClosed(): number | null;
}

/**
 * The MQTT to SSE bridge: subscribes to a broker under a fixed client id
 * with a persistent session and hands every message to the hub's `publish`,
 * acknowledging it (PUBACK) only once the hub recorded it.
 *
 * The MQTT client (`npm:mqtt`) is imported when {@linkcode MqttBridge.start}
 * runs, never at module load, so a hub without a bridge needs neither the
 * package nor the network.
 *
 * @module
 */

import { classifyMessage, type MqttRefusal } from "./_classify.ts";
import {
  type MqttBridgeOptions,
  redactUrl,
  type ResolvedMqttBridgeOptions,
  resolveMqttBridgeOptions,
} from "./_options.ts";

import type { Counters, MqttBridgeStats } from "./_stats.ts";

export type { MqttBridgeStats } from "./_stats.ts";

/** The exact MQTT.js release the bridge loads. */
export const MQTT_CLIENT_SPECIFIER = "npm:mqtt@5.16.0";

/** The module that re-exports the client (see `_mqtt_client.ts`), loaded on start. */
const CLIENT_MODULE = new URL("./_mqtt_client.ts", import.meta.url).href;

type MqttModule = typeof import("./_mqtt_client.ts");
type MqttClient = import("./_mqtt_client.ts").MqttClient;
type PublishPacket = import("./_mqtt_client.ts").IPublishPacket;
type ConnackPacket = import("./_mqtt_client.ts").IConnackPacket;

// Reason codes of a CONNACK that refuses credentials: MQTT 3.1.1 (4 bad user
// name or password, 5 not authorized) and MQTT 5 (134, 135).
const AUTH_CODES = new Set([4, 5, 134, 135]);

// Bad topics are logged once each, up to this many distinct topics.
const MAX_LOGGED_TOPICS = 256;

/**
 * A running bridge from an MQTT broker to the hub.
 *
 * Messages reach `publish` strictly in arrival order, one at a time. A QoS 1
 * message is acknowledged only after `publish` resolved; while `publish`
 * rejects, the bridge withholds the acknowledgement and retries with
 * backoff, so the broker keeps the message and the ones after it. A message
 * that can never be published (topic outside the channel grammar, payload
 * too large, empty, or not UTF-8) is counted, logged and acknowledged.
 *
 * @example
 * ```ts
 * import { MqttBridge } from "./mqtt_bridge.ts";
 * await using bridge = await MqttBridge.start({
 *   url: "mqtt://127.0.0.1:1883",
 *   topics: ["sensors/#"],
 *   publish: (channel, data) => Promise.resolve(`${channel}:${data.length}`),
 * });
 * console.log(bridge.stats.connected);
 * ```
 */
export class MqttBridge implements AsyncDisposable {
  readonly #o: ResolvedMqttBridgeOptions;
  readonly #client: MqttClient;
  readonly #c: Counters = {
    messagesIn: 0,
    published: 0,
    refused: { badTopic: 0, tooLarge: 0, notUtf8: 0, empty: 0 },
    acksWithheld: 0,
    publishFailures: 0,
    redelivered: 0,
    reconnects: 0,
    authFailures: 0,
    lastError: null,
  };
  readonly #loggedTopics = new Set<string>();
  #connected = false;
  #subscribed = false;
  #subscribedOnce = false;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  // Messages are handled one after the other on this chain.
  #chain: Promise<void> = Promise.resolve();
  // Wakes a publish retry that is sleeping (connection lost, close()).
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  private constructor(o: ResolvedMqttBridgeOptions, mqtt: MqttModule) {
    this.#o = o;
    const v5 = o.protocolVersion === 5;
    this.#client = mqtt.connect({
      protocol: o.broker.protocol,
      host: o.broker.host,
      port: o.broker.port,
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      ca: o.ca,
      clean: false,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs,
      // Reconnection is driven here, with exponential backoff and jitter.
      reconnectPeriod: 0,
      // Subscriptions live in the broker's session; they are renewed here.
      resubscribe: false,
      manualConnect: true,
      properties: v5
        ? { sessionExpiryInterval: o.sessionExpirySeconds, receiveMaximum: o.receiveMaximum }
        : undefined,
    });
    // MQTT.js sends the PUBACK of a QoS 1 message when this callback is
    // called, and handles no further packet of the connection until then.
    this.#client.handleMessage = (packet, done) => this.#onMessage(packet, done);
    this.#client.on("connect", (connack) => this.#onConnect(connack));
    this.#client.on("close", () => this.#onClose());
    this.#client.on("error", (err) => this.#onError(err));
  }

  /**
   * Validates the options, loads the MQTT client and starts connecting. It
   * does not wait for the broker: a bridge whose broker is down keeps
   * retrying while the hub serves.
   *
   * @param options Broker URL, `publish`, topic filters, client id, limits.
   * @returns The running bridge.
   * @throws {TypeError} For a malformed URL, topic filter, client id or a missing `publish`.
   * @throws {RangeError} For a number out of range (the message names the value).
   * @throws {Error} When the MQTT client package cannot be loaded.
   * @example
   * ```ts
   * import { MqttBridge } from "./mqtt_bridge.ts";
   * const events: string[] = [];
   * const bridge = await MqttBridge.start({
   *   url: "mqtt://user:secret@127.0.0.1:1883",
   *   clientId: "sluice-gw1",
   *   publish: (channel, data) => Promise.resolve(String(events.push(`${channel} ${data}`))),
   * });
   * await bridge.close();
   * ```
   */
  static async start(options: MqttBridgeOptions): Promise<MqttBridge> {
    const o = resolveMqttBridgeOptions(options);
    let mqtt: MqttModule;
    try {
      // A specifier Deno cannot analyze ahead of time: with a literal one it
      // fetches the package when the hub starts, bridge or not.
      mqtt = await import(CLIENT_MODULE) as MqttModule;
    } catch (err) {
      throw new Error(
        `cannot load the MQTT client ${MQTT_CLIENT_SPECIFIER}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const bridge = new MqttBridge(o, mqtt);
    bridge.#log("info", "mqtt bridge connecting", {
      broker: redactUrl(o.broker),
      clientId: o.clientId,
      topics: o.topics,
    });
    bridge.#client.connect();
    return bridge;
  }

  /** Counters and state (a fresh snapshot on every read). */
  get stats(): MqttBridgeStats {
    const c = this.#c;
    return {
      connected: this.#connected,
      subscribed: this.#subscribed,
      messagesIn: c.messagesIn,
      published: c.published,
      refused: { ...c.refused },
      acksWithheld: c.acksWithheld,
      publishFailures: c.publishFailures,
      redelivered: c.redelivered,
      reconnects: c.reconnects,
      authFailures: c.authFailures,
      lastError: c.lastError,
    };
  }

  /** The client id of the bridge's session. */
  get clientId(): string {
    return this.#o.clientId;
  }

  /**
   * Stops the bridge: no more reconnects, lets a publish in progress settle
   * (at most `closeTimeoutMs`) so its acknowledgement goes out, then
   * disconnects. The broker keeps the session and queues what follows.
   * Idempotent; never throws.
   *
   * @returns Resolves once the connection is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#wake?.();
    await this.#bounded(this.#chain, this.#o.closeTimeoutMs);
    const client = this.#client;
    const ended = new Promise<void>((resolve) =>
      client.end(!client.connected, {}, () => resolve())
    );
    if (!(await this.#bounded(ended, this.#o.closeTimeoutMs))) {
      await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    }
    this.#connected = false;
    this.#subscribed = false;
    this.#log("info", "mqtt bridge closed");
  }

  // Whether p settled within ms (it is never rejected).
  async #bounded(p: Promise<void>, ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([p.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #onConnect(connack: ConnackPacket): void {
    this.#connected = true;
    this.#attempt = 0;
    const sessionPresent = connack.sessionPresent === true;
    this.#log("info", "mqtt bridge connected", { sessionPresent });
    // A session that lost its subscriptions (broker without persistence, or
    // an expired session) is subscribed again. With MQTT 5 so is a bridge's
    // first connection, in case the topic list changed since the session was
    // made: Retain Handling 1 keeps the broker from resending retained
    // messages for subscriptions it already had. MQTT 3.1.1 has no such
    // option, and a repeated subscription would record them again.
    const v5 = this.#o.protocolVersion === 5;
    if (sessionPresent && (this.#subscribedOnce || !v5)) {
      this.#subscribedOnce = true;
      this.#subscribed = true;
      return;
    }
    const subs: Record<string, { qos: 1; rh?: 1 }> = {};
    // MQTT 5 Retain Handling 1: retained messages only for a new subscription.
    for (const t of this.#o.topics) subs[t] = v5 ? { qos: 1, rh: 1 } : { qos: 1 };
    this.#client.subscribe(subs, (err, granted) => {
      if (err) {
        this.#setError(`subscribe failed: ${err.message}`);
        this.#log("warn", "mqtt bridge subscribe failed", { error: err.message });
        return;
      }
      const refused = (granted ?? []).filter((g) => g.qos > 2).map((g) => g.topic);
      if (refused.length > 0) {
        this.#setError(`broker refused subscriptions: ${refused.join(", ")}`);
        this.#log("error", "mqtt bridge subscription refused by the broker", { topics: refused });
      }
      this.#subscribedOnce = true;
      this.#subscribed = true;
      this.#log("info", "mqtt bridge subscribed", { topics: this.#o.topics });
    });
  }

  #onClose(): void {
    const was = this.#connected;
    this.#connected = false;
    this.#subscribed = false;
    // A retry sleeping for the lost connection must give up now: the broker
    // redelivers its message on the next connection.
    this.#wake?.();
    if (this.#closing) return;
    if (was) this.#log("warn", "mqtt bridge disconnected", { lastError: this.#c.lastError });
    if (this.#reconnectTimer !== undefined) return;
    const base = Math.min(this.#o.reconnectMaxMs, this.#o.reconnectMinMs * 2 ** this.#attempt);
    // Equal jitter: between half and all of the backoff, so gateways that
    // lost the same broker do not come back in step.
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    if (this.#attempt < 30) this.#attempt++;
    this.#log("debug", "mqtt bridge reconnecting", { delayMs: delay });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closing) return;
      this.#c.reconnects++;
      this.#client.reconnect();
    }, delay);
  }

  #onError(err: Error & { code?: unknown }): void {
    const message = err.message;
    if (typeof err.code === "number" && AUTH_CODES.has(err.code)) {
      this.#c.authFailures++;
      this.#log("error", "mqtt bridge not authorized: the broker refused the credentials", {
        user: this.#o.username ?? null,
        reason: message,
      });
    } else if (message !== this.#c.lastError) {
      this.#log("warn", "mqtt bridge connection error", { error: message });
    }
    this.#setError(message);
  }

  #onMessage(packet: PublishPacket, done: (err?: Error) => void): void {
    // The connection the message came on: its acknowledgement must go on the
    // same one, never on a later connection where its packet id means
    // another message.
    const stream = this.#client.stream;
    this.#chain = this.#chain.then(() => this.#handle(packet, done, stream)).catch((err) => {
      this.#setError(String(err));
      this.#log("error", "mqtt bridge message handling failed", { error: String(err) });
    });
  }

  #current(stream: unknown): boolean {
    const s = this.#client.stream as unknown as { destroyed?: boolean };
    return this.#client.connected && s === stream && s.destroyed !== true;
  }

  async #handle(
    packet: PublishPacket,
    done: (err?: Error) => void,
    stream: unknown,
  ): Promise<void> {
    const c = this.#c;
    c.messagesIn++;
    if (packet.dup) c.redelivered++;
    const payload = typeof packet.payload === "string"
      ? new TextEncoder().encode(packet.payload)
      : packet.payload;
    const verdict = classifyMessage(packet.topic, payload, this.#o.maxPayloadBytes);
    if (!verdict.ok) {
      c.refused[verdict.reason]++;
      this.#logRefusal(verdict.reason, packet.topic, payload.byteLength);
      if (this.#current(stream) || packet.qos === 0) done();
      return;
    }
    const fields = {
      ...(this.#o.event !== undefined ? { event: this.#o.event } : {}),
      ...(packet.retain ? { retained: true } : {}),
    };
    let delay = this.#o.retryMinMs;
    let withheld = false;
    try {
      while (true) {
        // QoS 0 has no acknowledgement to withhold and no redelivery: keep
        // trying until close(). QoS 1 gives up with its connection; the
        // broker sends the message again on the next one.
        if (this.#closing && withheld) return;
        if (packet.qos > 0 && !this.#current(stream)) return;
        try {
          await this.#o.publish(verdict.channel, verdict.data, fields);
        } catch (err) {
          c.publishFailures++;
          this.#setError(`publish failed: ${err instanceof Error ? err.message : String(err)}`);
          if (!withheld) {
            withheld = true;
            c.acksWithheld++;
            this.#log("warn", "mqtt bridge publish rejected; withholding the ack and retrying", {
              channel: verdict.channel,
              error: c.lastError,
            });
          }
          await this.#sleep(delay);
          delay = Math.min(this.#o.retryMaxMs, delay * 2);
          continue;
        }
        c.published++;
        if (withheld) this.#log("info", "mqtt bridge publish accepted again", {});
        // Published but the connection is gone: the broker will redeliver it,
        // a duplicate within the bound the README states.
        if (packet.qos === 0 || this.#current(stream)) done();
        return;
      }
    } finally {
      if (withheld) c.acksWithheld--;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #setError(message: string): void {
    this.#c.lastError = message;
  }

  #logRefusal(reason: MqttRefusal, topic: string, bytes: number): void {
    if (reason === "badTopic") {
      if (this.#loggedTopics.has(topic)) return;
      if (this.#loggedTopics.size >= MAX_LOGGED_TOPICS) return;
      this.#loggedTopics.add(topic);
      const shown = topic.length > 200 ? `${topic.slice(0, 200)}...` : topic;
      const last = this.#loggedTopics.size === MAX_LOGGED_TOPICS
        ? " (further bad topics are counted, not logged)"
        : "";
      this.#log("warn", `mqtt bridge refused a topic outside the channel grammar${last}`, {
        topic: shown,
      });
      return;
    }
    this.#log("warn", `mqtt bridge refused a message: ${reason}`, {
      topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic,
      bytes,
      maxPayloadBytes: this.#o.maxPayloadBytes,
    });
  }

  #log(
    level: "debug" | "info" | "warn" | "error",
    message: string,
    fields?: Record<string, unknown>,
  ) {
    try {
      this.#o.logger?.(level, message, fields);
    } catch {
      // A failing logger must not stop the bridge.
    }
  }
}

/**
 * HTTP Digest authentication middleware (RFC 7616) with `qop="auth"`,
 * algorithms `SHA-256` and `MD5`, stateless HMAC-signed nonces and
 * nonce-count replay protection.
 *
 * @module
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthHeaderError, parseAuthorization, quote, validateRealm } from "./auth_header.ts";
import type { HttpRequest, HttpResponse, Middleware } from "../http/types.ts";
import { DIGEST_ALGORITHMS, type DigestAlgorithm, digestHex, UserStore } from "./users.ts";

/** Options for {@linkcode digestAuth}. */
export interface DigestAuthOptions {
  /**
   * Realm (printable ASCII). Users stored as HA1 hashes must have been hashed
   * with this realm.
   * @default {"sluice"}
   */
  realm?: string;
  /** The users that may log in. Required. */
  users: UserStore;
  /**
   * How long a nonce stays valid, in milliseconds. A correct answer with an
   * older nonce gets `401` with `stale=true`, so clients retry silently.
   * @default {300000}
   */
  nonceTtlMs?: number;
  /**
   * Algorithms to offer and accept, in the order the challenges are sent.
   * Clients such as curl pick the first one they support. Algorithms some user
   * cannot do (an MD5-only HA1 cannot do SHA-256) are not offered while such a
   * user exists, and are refused with `401` for that user.
   * @default {["SHA-256", "MD5"]}
   */
  algorithms?: DigestAlgorithm[];
  /**
   * How many nonces to remember the highest nonce-count of. When full the
   * least recently first-used is forgotten, and nonces issued up to its time
   * get `401 stale=true` so clients fetch a fresh one.
   * @default {10000}
   */
  maxNonces?: number;
  /**
   * Key that signs nonces and derives `opaque`, at least 16 bytes. Share it
   * between several `digestAuth` instances with the same realm so a nonce
   * from one is valid on the other.
   * @default 32 random bytes per instance
   */
  secret?: Uint8Array;
  /**
   * Clock in milliseconds, for tests.
   * @default {Date.now}
   */
  now?: () => number;
}

/** Defaults of {@linkcode DigestAuthOptions}. */
export const DEFAULT_DIGEST_AUTH_OPTIONS: Readonly<{
  realm: string;
  nonceTtlMs: number;
  algorithms: readonly DigestAlgorithm[];
  maxNonces: number;
}> = Object.freeze({
  realm: "sluice",
  nonceTtlMs: 300_000,
  algorithms: DIGEST_ALGORITHMS,
  maxNonces: 10_000,
});

const TEXT = "text/plain; charset=utf-8";
const TS_BYTES = 8;
const RANDOM_BYTES = 16;
const MAC_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RANDOM_BYTES + MAC_BYTES;
const REQUIRED = ["realm", "nonce", "uri", "response", "qop", "nc", "cnonce"] as const;

/** Inputs of {@linkcode computeDigestResponse}. */
export interface DigestResponseInput {
  /** Algorithm. */
  algorithm: DigestAlgorithm;
  /** HA1 = H(user:realm:password), lower-case hex. */
  ha1: string;
  /** Request method. */
  method: string;
  /** The `uri` parameter (the request target). */
  uri: string;
  /** Server nonce. */
  nonce: string;
  /** Nonce count, 8 hex digits. */
  nc: string;
  /** Client nonce. */
  cnonce: string;
  /** Quality of protection. */
  qop: "auth";
}

/**
 * Computes the Digest `response` for `qop=auth`:
 * `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
 *
 * @param input The values of the exchange.
 * @returns Lower-case hex response.
 * @example
 * ```ts
 * import { computeDigestResponse } from "./auth_digest.ts";
 * import { hashPassword } from "./users.ts";
 * computeDigestResponse({
 *   algorithm: "MD5",
 *   ha1: hashPassword("Mufasa", "http-auth@example.org", "Circle of Life"),
 *   method: "GET",
 *   uri: "/dir/index.html",
 *   nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
 *   nc: "00000001",
 *   cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
 *   qop: "auth",
 * }); // "8ca523f5e9506fed4657c9700eebdbec" (RFC 7616 §3.9.1)
 * ```
 */
export function computeDigestResponse(input: DigestResponseInput): string {
  const ha2 = digestHex(input.algorithm, `${input.method}:${input.uri}`);
  return digestHex(
    input.algorithm,
    `${input.ha1}:${input.nonce}:${input.nc}:${input.cnonce}:${input.qop}:${ha2}`,
  );
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text, "utf8").digest();
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

function decodeExtValue(value: string): string | undefined {
  const m = /^UTF-8'[^']*'(.*)$/i.exec(value);
  if (m === null) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
}

function validateOptions(options: DigestAuthOptions) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object: received ${options}`);
  }
  const realm = validateRealm(options.realm ?? DEFAULT_DIGEST_AUTH_OPTIONS.realm);
  const users = options.users;
  if (!(users instanceof UserStore)) {
    throw new TypeError(`users must be a UserStore: received ${typeof users}`);
  }
  const nonceTtlMs = options.nonceTtlMs ?? DEFAULT_DIGEST_AUTH_OPTIONS.nonceTtlMs;
  if (!Number.isSafeInteger(nonceTtlMs) || nonceTtlMs <= 0) {
    throw new RangeError(`nonceTtlMs must be a positive integer: received ${nonceTtlMs}`);
  }
  const maxNonces = options.maxNonces ?? DEFAULT_DIGEST_AUTH_OPTIONS.maxNonces;
  if (!Number.isSafeInteger(maxNonces) || maxNonces <= 0) {
    throw new RangeError(`maxNonces must be a positive integer: received ${maxNonces}`);
  }
  const algorithms = options.algorithms ?? DEFAULT_DIGEST_AUTH_OPTIONS.algorithms;
  if (
    !Array.isArray(algorithms) || algorithms.length === 0 ||
    algorithms.some((a) => !DIGEST_ALGORITHMS.includes(a)) ||
    new Set(algorithms).size !== algorithms.length
  ) {
    throw new TypeError(
      `algorithms must be a non-empty list of distinct "SHA-256" / "MD5": received ${
        JSON.stringify(algorithms)
      }`,
    );
  }
  const secret = options.secret ?? randomBytes(32);
  if (!(secret instanceof Uint8Array) || secret.length < 16) {
    throw new TypeError(
      `secret must be a Uint8Array of at least 16 bytes: received ${
        secret instanceof Uint8Array ? `${secret.length} bytes` : typeof secret
      }`,
    );
  }
  const now = options.now ?? Date.now;
  if (typeof now !== "function") {
    throw new TypeError(`now must be a function: received ${typeof now}`);
  }
  return { realm, users, nonceTtlMs, maxNonces, algorithms: [...algorithms], secret, now };
}

/**
 * Creates Digest authentication middleware (RFC 7616, `qop="auth"`).
 *
 * - No or non-Digest credentials: `401` with one `WWW-Authenticate: Digest`
 *   challenge per offered algorithm (SHA-256 first by default), each with
 *   `realm`, `qop="auth"`, `algorithm`, a fresh `nonce`, `opaque` and
 *   `charset=UTF-8`.
 * - Malformed header, missing parameter, bad `nc`, `qop` other than `auth`, or
 *   a `uri` different from the request target: `400`.
 * - Wrong realm, unsupported algorithm, wrong `opaque`, forged nonce, unknown
 *   user, wrong response: `401` with a fresh challenge.
 * - Correct response but expired nonce, or a nonce-count not above the highest
 *   seen for that nonce (replay or out-of-order): `401` with `stale=true`.
 *
 * Nonces are `timestamp | random | HMAC(secret)` in base64url, so they are
 * checked without server state; only the highest nonce-count per used nonce
 * is kept, in a bounded map. `userhash=true` and `username*` are understood.
 * On success `req.user` is set.
 *
 * @param options Realm, users, nonce lifetime, algorithms.
 * @returns The middleware.
 * @throws {TypeError} If `users` is not a `UserStore`, `realm` is not printable
 * ASCII, `algorithms` is empty or unknown, `secret` is shorter than 16 bytes
 * or `now` is not a function.
 * @throws {RangeError} If `nonceTtlMs` or `maxNonces` is not a positive integer.
 * @example
 * ```ts
 * import { digestAuth } from "./auth_digest.ts";
 * import { UserStore } from "./users.ts";
 * const auth = digestAuth({ realm: "sluice", users: new UserStore().addPassword("admin", "admin") });
 * ```
 */
export function digestAuth(options: DigestAuthOptions): Middleware {
  const { realm, users, nonceTtlMs, maxNonces, algorithms, secret, now } = validateOptions(
    options,
  );
  const opaque = toBase64Url(
    createHmac("sha256", secret).update(`sluice-opaque:${realm}`).digest().subarray(0, 16),
  );
  /** nonce → highest nonce-count seen and issue time; insertion order = first use. */
  const seen = new Map<string, { nc: number; issued: number }>();
  /** Nonces issued at or before this time and not in `seen` were forgotten. */
  let forgottenUpTo = -Infinity;
  let offeredVersion = -1;
  let offered: DigestAlgorithm[] = algorithms;

  const mac = (data: Uint8Array): Uint8Array =>
    createHmac("sha256", secret).update(data).digest().subarray(0, MAC_BYTES);

  const newNonce = (): string => {
    const bytes = new Uint8Array(NONCE_BYTES);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(Math.max(0, Math.floor(now()))));
    bytes.set(randomBytes(RANDOM_BYTES), TS_BYTES);
    bytes.set(mac(bytes.subarray(0, TS_BYTES + RANDOM_BYTES)), TS_BYTES + RANDOM_BYTES);
    return toBase64Url(bytes);
  };

  /** Issue time of a nonce we signed, or `undefined` if it is not ours. */
  const nonceIssued = (nonce: string): number | undefined => {
    const bytes = fromBase64Url(nonce);
    // Only the canonical encoding: no two nonce strings may share one nonce.
    if (bytes === undefined || bytes.length !== NONCE_BYTES || toBase64Url(bytes) !== nonce) {
      return undefined;
    }
    const expected = mac(bytes.subarray(0, TS_BYTES + RANDOM_BYTES));
    if (!timingSafeEqual(expected, bytes.subarray(TS_BYTES + RANDOM_BYTES))) return undefined;
    return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0));
  };

  const offeredAlgorithms = (): DigestAlgorithm[] => {
    if (users.version !== offeredVersion) {
      offeredVersion = users.version;
      const capable = algorithms.filter((a) => users.allSupport(realm, a));
      offered = capable.length > 0 ? capable : algorithms;
    }
    return offered;
  };

  const unauthorized = (stale: boolean): HttpResponse => {
    const nonce = newNonce();
    const headers: [string, string][] = offeredAlgorithms().map((algorithm) => [
      "WWW-Authenticate",
      `Digest realm=${quote(realm)}, qop="auth", algorithm=${algorithm}, nonce="${nonce}", ` +
      `opaque="${opaque}", charset=UTF-8${stale ? ", stale=true" : ""}`,
    ]);
    headers.push(["Content-Type", TEXT]);
    return { status: 401, headers, body: "401 Unauthorized\n" };
  };
  const badRequest = (): HttpResponse => ({
    status: 400,
    headers: [["Content-Type", TEXT]],
    body: "400 Bad Request\n",
  });

  const remember = (nonce: string, nc: number, issued: number): void => {
    const entry = seen.get(nonce);
    if (entry !== undefined) {
      entry.nc = nc;
      return;
    }
    const t = now();
    for (const [key, value] of seen) {
      if (seen.size < maxNonces && t - value.issued <= nonceTtlMs) break;
      seen.delete(key);
      // Expired entries need no watermark: their nonces are refused as stale anyway.
      if (t - value.issued <= nonceTtlMs) forgottenUpTo = Math.max(forgottenUpTo, value.issued);
    }
    seen.set(nonce, { nc, issued });
  };

  return (req: HttpRequest) => {
    const header = req.headers.get("authorization");
    if (header === undefined) return unauthorized(false);
    let params: Map<string, string>;
    try {
      const creds = parseAuthorization(header);
      if (creds.scheme !== "digest") return unauthorized(false);
      if (creds.token68 !== undefined) return badRequest();
      params = creds.params;
    } catch (err) {
      if (err instanceof AuthHeaderError) return badRequest();
      throw err;
    }
    for (const name of REQUIRED) if (!params.has(name)) return badRequest();
    let username = params.get("username");
    const extUsername = params.get("username*");
    if (extUsername !== undefined) {
      if (username !== undefined) return badRequest();
      username = decodeExtValue(extUsername);
      if (username === undefined) return badRequest();
    }
    if (username === undefined) return badRequest();
    const ncText = params.get("nc")!;
    if (!/^[0-9a-fA-F]{8}$/.test(ncText)) return badRequest();
    const nc = parseInt(ncText, 16);
    if (params.get("qop")!.toLowerCase() !== "auth") return badRequest();
    const uri = params.get("uri")!;
    if (uri !== req.target) return badRequest();

    if (params.get("realm") !== realm) return unauthorized(false);
    const algorithmText = (params.get("algorithm") ?? "MD5").toUpperCase();
    const algorithm = algorithms.find((a) => a === algorithmText);
    if (algorithm === undefined) return unauthorized(false);
    if (params.get("opaque") !== opaque) return unauthorized(false);
    const nonce = params.get("nonce")!;
    const issued = nonceIssued(nonce);
    if (issued === undefined) return unauthorized(false);

    const userhash = (params.get("userhash") ?? "false").toLowerCase() === "true";
    const user = userhash ? users.findByUserhash(username, realm, algorithm) : username;
    const ha1 = user === undefined ? undefined : users.ha1(user, realm, algorithm);
    const expected = computeDigestResponse({
      algorithm,
      // Unknown users cost the same work as known ones.
      ha1: ha1 ?? digestHex(algorithm, `${username}:${realm}:`),
      method: req.method,
      uri,
      nonce,
      nc: ncText,
      cnonce: params.get("cnonce")!,
      qop: "auth",
    });
    const match = timingSafeEqual(
      sha256(expected),
      sha256(params.get("response")!.toLowerCase()),
    );
    if (!match || ha1 === undefined || user === undefined) return unauthorized(false);

    const age = now() - issued;
    if (age < 0 || age > nonceTtlMs) return unauthorized(true);
    const entry = seen.get(nonce);
    if (entry === undefined && issued <= forgottenUpTo) return unauthorized(true);
    if (entry !== undefined && nc <= entry.nc) return unauthorized(true);
    remember(nonce, nc, issued);
    req.user = user;
    return undefined;
  };
}

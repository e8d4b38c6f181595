/**
 * Credentials for the Basic and Digest middleware: a {@linkcode UserStore}
 * holding plain passwords or pre-hashed HA1 values (as in Apache `htdigest`
 * files and ESPAsyncWebServer's `generateHash()`), plus helpers to fill it.
 *
 * What each kind of user can do:
 *
 * | stored material          | Basic | Digest MD5 | Digest SHA-256 |
 * | ------------------------ | ----- | ---------- | -------------- |
 * | plain password           | yes   | yes        | yes            |
 * | MD5 HA1 for the realm    | yes   | yes        | no             |
 * | SHA-256 HA1 for the realm| yes   | no         | yes            |
 *
 * An HA1 is bound to its realm: a hash made for realm `a` never matches in
 * realm `b`.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { hasControlChar } from "./auth_header.ts";

/** Digest algorithms Sluice implements (RFC 7616), without the `-sess` variants. */
export type DigestAlgorithm = "MD5" | "SHA-256";

/** Every supported digest algorithm, strongest first. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = Object.freeze(["SHA-256", "MD5"]);

const NODE_HASH: Record<DigestAlgorithm, string> = { "MD5": "md5", "SHA-256": "sha256" };
const HEX_LENGTH: Record<DigestAlgorithm, number> = { "MD5": 32, "SHA-256": 64 };

/**
 * Thrown for a malformed user flag or `htdigest` line. Messages never contain
 * passwords or hashes.
 */
export class UserFormatError extends Error {
  /** 1-based line number in the `htdigest` text, when the error came from one. */
  readonly line?: number;

  /**
   * Creates the error.
   *
   * @param message What was wrong.
   * @param line 1-based line number, if parsing a file.
   */
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `htdigest line ${line}: ${message}`);
    this.name = "UserFormatError";
    if (line !== undefined) this.line = line;
  }
}

/**
 * Hex digest of `text` with the given algorithm.
 *
 * @param algorithm `MD5` or `SHA-256`.
 * @param text UTF-8 text to hash.
 * @returns Lower-case hex digest.
 * @example
 * ```ts
 * import { digestHex } from "./users.ts";
 * digestHex("MD5", ""); // "d41d8cd98f00b204e9800998ecf8427e"
 * ```
 */
export function digestHex(algorithm: DigestAlgorithm, text: string): string {
  return createHash(NODE_HASH[algorithm]).update(text, "utf8").digest("hex");
}

/**
 * Computes the Digest HA1 `H(user:realm:password)`, the value stored in
 * `htdigest` files (the analogue of ESPAsyncWebServer's `generateHash()`).
 *
 * @param user User name.
 * @param realm Realm the hash is bound to.
 * @param password Plain password.
 * @param algorithm Hash algorithm.
 * @default algorithm `"MD5"`
 * @returns Lower-case hex HA1.
 * @throws {TypeError} If `algorithm` is not supported.
 * @example
 * ```ts
 * import { hashPassword } from "./users.ts";
 * hashPassword("Mufasa", "http-auth@example.org", "Circle of Life");
 * // "3d78807defe7de2157e2b0b6573a855f"
 * ```
 */
export function hashPassword(
  user: string,
  realm: string,
  password: string,
  algorithm: DigestAlgorithm = "MD5",
): string {
  if (!(algorithm in NODE_HASH)) {
    throw new TypeError(`algorithm must be "MD5" or "SHA-256": received ${String(algorithm)}`);
  }
  return digestHex(algorithm, `${user}:${realm}:${password}`);
}

function checkUser(user: unknown): string {
  if (typeof user !== "string" || user.length === 0 || user.includes(":") || hasControlChar(user)) {
    throw new UserFormatError(
      "user name must be a non-empty string without ':' or control characters",
    );
  }
  return user;
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text, "utf8").digest();
}

function equalHex(a: string, b: string): boolean {
  const ab = new TextEncoder().encode(a);
  const bb = new TextEncoder().encode(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

interface UserEntry {
  password?: string;
  /** realm → algorithm → lower-case hex HA1 */
  hashes: Map<string, Partial<Record<DigestAlgorithm, string>>>;
}

/**
 * Users known to the Basic and Digest middleware. A user has a plain password,
 * or HA1 hashes per realm and algorithm, or both (the password then wins).
 * Mutations bump {@linkcode UserStore.version} so middleware can cache what
 * the whole store supports.
 *
 * @example
 * ```ts
 * import { hashPassword, UserStore } from "./users.ts";
 * const users = new UserStore()
 *   .addPassword("admin", "s3cret")
 *   .addHash("viewer", "sluice", hashPassword("viewer", "sluice", "pw"));
 * users.verifyPassword("viewer", "sluice", "pw"); // true
 * ```
 */
export class UserStore {
  #users = new Map<string, UserEntry>();
  #version = 0;

  /** Number of users. */
  get size(): number {
    return this.#users.size;
  }

  /** Incremented on every change; lets callers cache derived facts. */
  get version(): number {
    return this.#version;
  }

  /**
   * Adds a user with a plain password, or sets the password of an existing one.
   *
   * @param user Name, non-empty, no `:` or control characters.
   * @param password Non-empty password.
   * @returns This store.
   * @throws {UserFormatError} If the name or password is invalid.
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().addPassword("admin", "admin").has("admin"); // true
   * ```
   */
  addPassword(user: string, password: string): this {
    checkUser(user);
    if (typeof password !== "string" || password.length === 0) {
      throw new UserFormatError(`password of user ${user} must be a non-empty string`);
    }
    this.#entry(user).password = password;
    this.#version++;
    return this;
  }

  /**
   * Adds a pre-computed HA1 (`H(user:realm:password)`) for one realm.
   *
   * @param user Name, non-empty, no `:` or control characters.
   * @param realm The realm the hash was made for.
   * @param ha1 Hex digest: 32 digits for MD5, 64 for SHA-256.
   * @param algorithm Algorithm of the hash.
   * @default algorithm `"MD5"`
   * @returns This store.
   * @throws {UserFormatError} If the name, realm or hash is invalid.
   * @example
   * ```ts
   * import { hashPassword, UserStore } from "./users.ts";
   * const ha1 = hashPassword("bob", "sluice", "pw", "SHA-256");
   * new UserStore().addHash("bob", "sluice", ha1, "SHA-256");
   * ```
   */
  addHash(user: string, realm: string, ha1: string, algorithm: DigestAlgorithm = "MD5"): this {
    checkUser(user);
    if (typeof realm !== "string" || hasControlChar(realm)) {
      throw new UserFormatError("realm must be a string without control characters");
    }
    if (!(algorithm in HEX_LENGTH)) {
      throw new UserFormatError(`algorithm must be "MD5" or "SHA-256": received ${algorithm}`);
    }
    const len = HEX_LENGTH[algorithm];
    if (typeof ha1 !== "string" || ha1.length !== len || !/^[0-9a-fA-F]+$/.test(ha1)) {
      throw new UserFormatError(`${algorithm} hash of user ${user} must be ${len} hex digits`);
    }
    const entry = this.#entry(user);
    const forRealm = entry.hashes.get(realm) ?? {};
    forRealm[algorithm] = ha1.toLowerCase();
    entry.hashes.set(realm, forRealm);
    this.#version++;
    return this;
  }

  /**
   * Removes a user.
   *
   * @param user Name.
   * @returns Whether the user existed.
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().delete("nobody"); // false
   * ```
   */
  delete(user: string): boolean {
    const existed = this.#users.delete(user);
    if (existed) this.#version++;
    return existed;
  }

  /**
   * Whether a user exists.
   *
   * @param user Name.
   * @returns `true` if known.
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().has("admin"); // false
   * ```
   */
  has(user: string): boolean {
    return this.#users.has(user);
  }

  /**
   * The HA1 of a user for a realm and algorithm: computed from the plain
   * password, or the stored hash.
   *
   * @param user Name.
   * @param realm Realm.
   * @param algorithm Digest algorithm.
   * @returns Lower-case hex HA1, or `undefined` if the user is unknown or has
   * no material for that realm and algorithm (e.g. SHA-256 for an MD5-only user).
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().addPassword("a", "b").ha1("a", "r", "SHA-256")?.length; // 64
   * ```
   */
  ha1(user: string, realm: string, algorithm: DigestAlgorithm): string | undefined {
    const entry = this.#users.get(user);
    if (entry === undefined) return undefined;
    if (entry.password !== undefined) return hashPassword(user, realm, entry.password, algorithm);
    return entry.hashes.get(realm)?.[algorithm];
  }

  /**
   * Whether every user can authenticate in `realm` with `algorithm` (true for
   * an empty store).
   *
   * @param realm Realm.
   * @param algorithm Digest algorithm.
   * @returns `true` if no user lacks material for it.
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().addPassword("a", "b").allSupport("r", "SHA-256"); // true
   * ```
   */
  allSupport(realm: string, algorithm: DigestAlgorithm): boolean {
    for (const entry of this.#users.values()) {
      if (entry.password === undefined && entry.hashes.get(realm)?.[algorithm] === undefined) {
        return false;
      }
    }
    return true;
  }

  /**
   * Finds the user whose hashed name `H(user:realm)` equals `hashed` (Digest
   * `userhash=true`).
   *
   * @param hashed Hex digest sent as the user name.
   * @param realm Realm.
   * @param algorithm Digest algorithm.
   * @returns The user name, or `undefined`.
   * @example
   * ```ts
   * import { digestHex, UserStore } from "./users.ts";
   * const s = new UserStore().addPassword("a", "b");
   * s.findByUserhash(digestHex("MD5", "a:r"), "r", "MD5"); // "a"
   * ```
   */
  findByUserhash(hashed: string, realm: string, algorithm: DigestAlgorithm): string | undefined {
    const wanted = hashed.toLowerCase();
    let found: string | undefined;
    for (const user of this.#users.keys()) {
      if (equalHex(digestHex(algorithm, `${user}:${realm}`), wanted)) found ??= user;
    }
    return found;
  }

  /**
   * Checks a plain password (Basic auth) in constant time. A user stored only
   * as an HA1 is checked by hashing `user:realm:password` and comparing with
   * the stored hash for `realm`.
   *
   * @param user Name.
   * @param realm Realm (matters for hash-only users).
   * @param password Candidate password.
   * @returns `true` if it matches.
   * @example
   * ```ts
   * import { UserStore } from "./users.ts";
   * new UserStore().addPassword("a", "b").verifyPassword("a", "any", "b"); // true
   * ```
   */
  verifyPassword(user: string, realm: string, password: string): boolean {
    const entry = this.#users.get(user);
    if (entry?.password !== undefined) {
      return timingSafeEqual(sha256(password), sha256(entry.password));
    }
    const hashes = entry?.hashes.get(realm);
    const algorithm: DigestAlgorithm = hashes?.["SHA-256"] !== undefined ? "SHA-256" : "MD5";
    const stored = hashes?.[algorithm];
    const computed = hashPassword(user, realm, password, algorithm);
    if (stored === undefined) {
      // Same work for unknown users, so timing does not reveal which names exist.
      equalHex(computed, computed);
      return false;
    }
    return equalHex(computed, stored);
  }

  #entry(user: string): UserEntry {
    let entry = this.#users.get(user);
    if (entry === undefined) {
      entry = { hashes: new Map() };
      this.#users.set(user, entry);
    }
    return entry;
  }
}

/**
 * Parses a `--user name:password` command-line value. The password is
 * everything after the first `:` and may itself contain `:`.
 *
 * @param flag The flag value.
 * @returns The user name and password.
 * @throws {UserFormatError} If there is no `:`, the name is empty or invalid,
 * or the password is empty. The message never repeats the value.
 * @example
 * ```ts
 * import { parseUserFlag } from "./users.ts";
 * parseUserFlag("admin:a:b"); // { user: "admin", password: "a:b" }
 * ```
 */
export function parseUserFlag(flag: string): { user: string; password: string } {
  if (typeof flag !== "string") throw new UserFormatError("user must be given as name:password");
  const colon = flag.indexOf(":");
  if (colon < 0) throw new UserFormatError("user must be given as name:password (no ':' found)");
  const user = flag.slice(0, colon);
  const password = flag.slice(colon + 1);
  checkUser(user);
  if (password.length === 0) throw new UserFormatError(`password of user ${user} is empty`);
  return { user, password };
}

/**
 * Loads `htdigest`-format text (`user:realm:ha1` per line, as written by
 * Apache's `htdigest`) into a store. Blank lines and lines starting with `#`
 * are ignored. A 32-hex-digit hash is MD5; as an extension, a 64-hex-digit
 * hash is taken as SHA-256. The realm is everything between the first and
 * the last `:`.
 *
 * @param text File contents (LF or CRLF line ends).
 * @param store Store to add to.
 * @default store a new `UserStore`
 * @returns The store.
 * @throws {UserFormatError} For a bad line; `error.line` is its 1-based number.
 * @example
 * ```ts
 * import { loadHtdigest } from "./users.ts";
 * const users = loadHtdigest("# users\nbob:sluice:0123456789abcdef0123456789abcdef\n");
 * users.has("bob"); // true
 * ```
 */
export function loadHtdigest(text: string, store: UserStore = new UserStore()): UserStore {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const first = line.indexOf(":");
    const last = line.lastIndexOf(":");
    if (first < 0 || first === last) {
      throw new UserFormatError("expected user:realm:hash", i + 1);
    }
    const user = line.slice(0, first);
    const realm = line.slice(first + 1, last);
    const hash = line.slice(last + 1);
    const algorithm: DigestAlgorithm | undefined = hash.length === 32
      ? "MD5"
      : hash.length === 64
      ? "SHA-256"
      : undefined;
    if (algorithm === undefined || !/^[0-9a-fA-F]+$/.test(hash)) {
      throw new UserFormatError(
        "hash must be 32 (MD5) or 64 (SHA-256) hex digits",
        i + 1,
      );
    }
    try {
      store.addHash(user, realm, hash, algorithm);
    } catch (err) {
      if (err instanceof UserFormatError) throw new UserFormatError(err.message, i + 1);
      throw err;
    }
  }
  return store;
}

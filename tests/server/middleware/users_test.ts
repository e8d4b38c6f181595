import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  digestHex,
  hashPassword,
  loadHtdigest,
  parseUserFlag,
  UserFormatError,
  UserStore,
} from "../../../server/middleware/users.ts";

const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

Deno.test("hashPassword computes MD5(user:realm:pass) like htdigest by default", () => {
  assert.equal(hashPassword("admin", "sluice", "admin"), md5("admin:sluice:admin"));
  assert.equal(
    hashPassword("Mufasa", "http-auth@example.org", "Circle of Life"),
    "3d78807defe7de2157e2b0b6573a855f",
  );
});

Deno.test("hashPassword computes SHA-256 when asked and rejects unknown algorithms", () => {
  assert.equal(hashPassword("a", "r", "p", "SHA-256"), sha256("a:r:p"));
  // deno-lint-ignore no-explicit-any
  assert.throws(() => hashPassword("a", "r", "p", "SHA-1" as any), TypeError);
});

Deno.test("hashPassword hashes non-ASCII input as UTF-8", () => {
  assert.equal(hashPassword("Jäsøn", "r", "pä"), md5("Jäsøn:r:pä"));
  assert.equal(
    digestHex("MD5", "é"),
    createHash("md5").update(new TextEncoder().encode("é")).digest("hex"),
  );
});

Deno.test("parseUserFlag splits at the first colon so passwords may contain colons", () => {
  assert.deepEqual(parseUserFlag("admin:admin"), { user: "admin", password: "admin" });
  assert.deepEqual(parseUserFlag("bob:a:b:c"), { user: "bob", password: "a:b:c" });
});

Deno.test("parseUserFlag rejects missing colon, empty name and empty password without echoing", () => {
  for (const bad of ["adminsecret", ":secret", "admin:"]) {
    assert.throws(() => parseUserFlag(bad), (err: unknown) => {
      assert.ok(err instanceof UserFormatError);
      assert.ok(!err.message.includes("secret"), "message must not contain the password");
      return true;
    });
  }
});

Deno.test("UserStore verifies plain passwords and refuses wrong ones and unknown users", () => {
  const users = new UserStore().addPassword("admin", "admin");
  assert.equal(users.verifyPassword("admin", "any", "admin"), true);
  assert.equal(users.verifyPassword("admin", "any", "Admin"), false);
  assert.equal(users.verifyPassword("nobody", "any", "admin"), false);
  assert.equal(users.size, 1);
});

Deno.test("UserStore verifies a plain password against a stored MD5 HA1 of the same realm", () => {
  const users = new UserStore().addHash("bob", "sluice", hashPassword("bob", "sluice", "pw"));
  assert.equal(users.verifyPassword("bob", "sluice", "pw"), true);
  assert.equal(users.verifyPassword("bob", "sluice", "nope"), false);
  assert.equal(users.verifyPassword("bob", "other-realm", "pw"), false);
});

Deno.test("UserStore verifies against a stored SHA-256 HA1", () => {
  const ha1 = hashPassword("bob", "sluice", "pw", "SHA-256");
  const users = new UserStore().addHash("bob", "sluice", ha1.toUpperCase(), "SHA-256");
  assert.equal(users.verifyPassword("bob", "sluice", "pw"), true);
  assert.equal(users.verifyPassword("bob", "sluice", "px"), false);
});

Deno.test("UserStore.ha1 gives MD5 and SHA-256 for password users, only stored ones for hash users", () => {
  const users = new UserStore()
    .addPassword("a", "pw")
    .addHash("h", "r", hashPassword("h", "r", "pw"));
  assert.equal(users.ha1("a", "r", "MD5"), md5("a:r:pw"));
  assert.equal(users.ha1("a", "r", "SHA-256"), sha256("a:r:pw"));
  assert.equal(users.ha1("h", "r", "MD5"), md5("h:r:pw"));
  assert.equal(users.ha1("h", "r", "SHA-256"), undefined);
  assert.equal(users.ha1("h", "other", "MD5"), undefined);
  assert.equal(users.ha1("nobody", "r", "MD5"), undefined);
  assert.equal(users.allSupport("r", "MD5"), true);
  assert.equal(users.allSupport("r", "SHA-256"), false);
});

Deno.test("UserStore rejects bad names and hashes and bumps version on change", () => {
  const users = new UserStore();
  const v0 = users.version;
  assert.throws(() => users.addPassword("a:b", "pw"), UserFormatError);
  assert.throws(() => users.addPassword("", "pw"), UserFormatError);
  assert.throws(() => users.addPassword("a\nb", "pw"), UserFormatError);
  assert.throws(() => users.addPassword("a", ""), UserFormatError);
  assert.throws(() => users.addHash("a", "r", "abc"), UserFormatError);
  assert.throws(() => users.addHash("a", "r", md5("x"), "SHA-256"), UserFormatError);
  assert.throws(() => users.addHash("a", "r", "z".repeat(32)), UserFormatError);
  assert.equal(users.version, v0);
  users.addPassword("a", "pw");
  assert.ok(users.version > v0);
  assert.equal(users.delete("a"), true);
  assert.equal(users.has("a"), false);
});

Deno.test("UserStore.findByUserhash finds the user whose H(user:realm) matches", () => {
  const users = new UserStore().addPassword("alice", "x").addPassword("bob", "y");
  assert.equal(users.findByUserhash(sha256("bob:r"), "r", "SHA-256"), "bob");
  assert.equal(users.findByUserhash(md5("alice:r").toUpperCase(), "r", "MD5"), "alice");
  assert.equal(users.findByUserhash(md5("carol:r"), "r", "MD5"), undefined);
});

Deno.test("loadHtdigest reads user:realm:hash lines, skipping comments and blank lines", () => {
  const text = [
    "# generated by htdigest",
    "",
    `bob:sluice:${md5("bob:sluice:pw")}`,
    `   `,
    `carol:sluice:${sha256("carol:sluice:pw2")}\r`,
    `dave:realm:with:colons:${md5("dave:realm:with:colons:pw3")}`,
  ].join("\n");
  const users = loadHtdigest(text);
  assert.equal(users.size, 3);
  assert.equal(users.verifyPassword("bob", "sluice", "pw"), true);
  assert.equal(users.ha1("carol", "sluice", "SHA-256"), sha256("carol:sluice:pw2"));
  assert.equal(users.verifyPassword("dave", "realm:with:colons", "pw3"), true);
});

Deno.test("loadHtdigest adds to a given store", () => {
  const store = new UserStore().addPassword("admin", "admin");
  const out = loadHtdigest(`bob:r:${md5("bob:r:pw")}`, store);
  assert.equal(out, store);
  assert.equal(store.size, 2);
});

Deno.test("loadHtdigest reports the 1-based line number of a bad line without its content", () => {
  const secretHash = md5("bob:r:pw");
  const cases: [string, number][] = [
    [`# ok\nbob:r:${secretHash}\nnocolons\n`, 3],
    [`only:onecolon`, 1],
    [`\n\nbob:r:${secretHash}x`, 3],
    [`:r:${secretHash}`, 1],
  ];
  for (const [text, line] of cases) {
    assert.throws(() => loadHtdigest(text), (err: unknown) => {
      assert.ok(err instanceof UserFormatError);
      assert.equal(err.line, line);
      assert.match(err.message, new RegExp(`line ${line}`));
      assert.ok(!err.message.includes(secretHash));
      return true;
    });
  }
});

import assert from "node:assert/strict";
import {
  AuthHeaderError,
  hasControlChar,
  parseAuthorization,
  quote,
  validateRealm,
} from "../../../server/middleware/auth_header.ts";

Deno.test("parseAuthorization reads a token68", () => {
  const c = parseAuthorization("Basic YWxhZGRpbjpvcGVuc2VzYW1l");
  assert.equal(c.scheme, "basic");
  assert.equal(c.token68, "YWxhZGRpbjpvcGVuc2VzYW1l");
  assert.equal(c.params.size, 0);
  assert.equal(parseAuthorization("Basic  Zm9v== ").token68, "Zm9v==");
});

Deno.test("parseAuthorization reads quoted, escaped and unquoted auth-params", () => {
  const c = parseAuthorization(
    'Digest username="a\\"b\\\\c", Realm = "r, x" ,nc=00000001,, uri=/p?q=1, qop=auth',
  );
  assert.equal(c.scheme, "digest");
  assert.equal(c.token68, undefined);
  assert.deepEqual(Object.fromEntries(c.params), {
    username: 'a"b\\c',
    realm: "r, x",
    nc: "00000001",
    uri: "/p?q=1",
    qop: "auth",
  });
});

Deno.test("parseAuthorization takes a lone name or name= as a token68, per the grammar", () => {
  assert.equal(parseAuthorization("Digest a=").token68, "a=");
  assert.equal(parseAuthorization("Digest a").token68, "a");
});

Deno.test("parseAuthorization reads a bare scheme", () => {
  const c = parseAuthorization("Negotiate");
  assert.equal(c.scheme, "negotiate");
  assert.equal(c.token68, undefined);
  assert.equal(c.params.size, 0);
});

Deno.test("parseAuthorization rejects malformed credentials", () => {
  const bad = [
    "",
    "   ",
    '"Basic" x',
    "Basic@ x",
    'Digest a="unterminated',
    'Digest a="x\\',
    "Digest a=, b=1",
    "Digest a, b=1",
    'Digest a="1" b="2"',
    "Digest a=1, a=2",
    'Digest a="x\u0001"',
    'Digest a=1 "x"',
  ];
  for (const value of bad) assert.throws(() => parseAuthorization(value), AuthHeaderError, value);
});

Deno.test("quote escapes quotes and backslashes", () => {
  assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(parseAuthorization(`X r=${quote('a"b\\c')}`).params.get("r"), 'a"b\\c');
});

Deno.test("validateRealm accepts printable ASCII only", () => {
  assert.equal(validateRealm("sluice @ example"), "sluice @ example");
  for (const bad of ["", "a\nb", "é", 5]) assert.throws(() => validateRealm(bad), TypeError);
});

Deno.test("hasControlChar finds C0 controls and DEL", () => {
  assert.equal(hasControlChar("plain text"), false);
  assert.equal(hasControlChar("a\tb"), true);
  assert.equal(hasControlChar("a\x7f"), true);
});

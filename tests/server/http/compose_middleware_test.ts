import assert from "node:assert/strict";
import { composeMiddleware } from "../../../server/http/compose_middleware.ts";
import type { Middleware } from "../../../server/http/types.ts";
import { makeRequest } from "../middleware/_auth_request.ts";

Deno.test("composeMiddleware runs middleware in order and stops at the first response", async () => {
  const calls: string[] = [];
  const mw = composeMiddleware([
    (_req, headers) => {
      calls.push("a");
      headers.push(["X-A", "1"]);
      return undefined;
    },
    () => {
      calls.push("b");
      return { status: 401 };
    },
    () => {
      calls.push("c");
      return undefined;
    },
  ]);
  const headers: [string, string][] = [];
  const res = await mw(makeRequest(), headers);
  assert.equal(res?.status, 401);
  assert.deepEqual(calls, ["a", "b"]);
  assert.deepEqual(headers, [["X-A", "1"]]);
});

Deno.test("composeMiddleware passes when every middleware passes and shares the request", async () => {
  const mw = composeMiddleware([
    (req) => {
      req.user = "u";
      return undefined;
    },
    (req) => (req.user === "u" ? undefined : { status: 500 }),
  ]);
  const req = makeRequest();
  assert.equal(await mw(req, []), undefined);
  assert.equal(req.user, "u");
});

Deno.test("composeMiddleware stays synchronous for synchronous middleware", () => {
  const mw = composeMiddleware([() => undefined, () => ({ status: 204 })]);
  const res = mw(makeRequest(), []);
  assert.ok(!(res instanceof Promise));
  assert.equal((res as { status: number }).status, 204);
});

Deno.test("composeMiddleware awaits async middleware before running the next", async () => {
  const calls: string[] = [];
  const slow: Middleware = async () => {
    await Promise.resolve();
    calls.push("slow");
    return undefined;
  };
  const stop: Middleware = () => {
    calls.push("stop");
    return { status: 403 };
  };
  const after: Middleware = () => {
    calls.push("after");
    return undefined;
  };
  const res = await composeMiddleware([slow, stop, after])(makeRequest(), []);
  assert.equal(res?.status, 403);
  assert.deepEqual(calls, ["slow", "stop"]);
  const stopped = await composeMiddleware([() => Promise.resolve({ status: 401 }), after])(
    makeRequest(),
    [],
  );
  assert.equal(stopped?.status, 401);
  assert.deepEqual(calls, ["slow", "stop"]);
});

Deno.test("composeMiddleware of an empty list always passes", async () => {
  assert.equal(await composeMiddleware([])(makeRequest(), []), undefined);
});

Deno.test("composeMiddleware rejects a list that is not all functions", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => composeMiddleware([() => undefined, "x" as any]), /middleware\[1\]/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => composeMiddleware(undefined as any), TypeError);
});

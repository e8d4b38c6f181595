/**
 * The hub's security flags through the CLI: bad combinations are refused with
 * exit code 2 and a message, and a hub configured only through environment
 * variables (publish tokens, Digest users from an htdigest file, metrics
 * auth, CORS) behaves as configured.
 */

import assert from "node:assert/strict";
import { main } from "../../main.ts";
import { hashPassword } from "../../server/middleware/users.ts";
import { curl, hasCommand, publish, request, startCli } from "./_hub.ts";

/** Runs `main(args)` in-process and returns its exit code and what it printed to stderr. */
async function runMain(args: string[]): Promise<{ code: number; stderr: string }> {
  const original = console.error;
  let stderr = "";
  console.error = (...parts: unknown[]) => stderr += parts.join(" ") + "\n";
  try {
    return { code: await main(args), stderr };
  } finally {
    console.error = original;
  }
}

Deno.test("CLI refuses inconsistent auth, CORS and TLS flags with exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--auth", "kerberos"], /--auth must be one of none, basic, digest, bearer/],
    [["--auth", "basic"], /--auth basic: basic auth needs at least one user/],
    [["--auth", "bearer"], /bearer auth needs at least one token/],
    [["--user", "bob:pw"], /--user and --users-file need --auth basic or --auth digest/],
    [["--auth", "digest", "--user", "bob"], /--user: user must be given as name:password/],
    [
      ["--auth", "none", "--subscribe-token", "t0k"],
      /--subscribe-token conflicts with --auth none/,
    ],
    [["--auth", "bearer", "--subscribe-token", "has space"], /b64token/],
    [["--metrics-auth"], /--metrics-auth needs --auth/],
    [["--cors-credentials"], /--cors-credentials needs --cors-origin/],
    [["--cors-origin", "*", "--cors-credentials"], /cannot be combined with credentials/],
    [["--cors-origin", "not an origin"], /--cors-origin: origins\[0\]/],
    [["--publish-token", "a b"], /--publish-token: /],
    [["--cert", "/tmp/x.pem"], /--cert and --key must be given together/],
    [["--auth", "digest", "--users-file", "/nonexistent/htdigest"], /cannot read --users-file/],
    [["--max-event-bytes", "0"], /--max-event-bytes must be an integer >= 1/],
    [["--max-channels", "x"], /--max-channels must be an integer >= 1/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runMain(["--port", "0", "--hostname", "127.0.0.1", ...args]);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, message, args.join(" "));
  }
});

Deno.test({
  name: "CLI configured by environment: publish tokens, htdigest users, metrics auth, CORS",
  ignore: !hasCommand("curl"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sluice-cli-" });
    try {
      const usersFile = `${dir}/htdigest`;
      await Deno.writeTextFile(
        usersFile,
        `# made by htdigest\nann:hub:${hashPassword("ann", "hub", "pw-ann")}\n`,
      );
      await using cli = await startCli([], {
        SLUICE_PUBLISH_TOKEN: "pub-one, pub-two",
        SLUICE_AUTH: "digest",
        SLUICE_REALM: "hub",
        SLUICE_USERS_FILE: usersFile,
        SLUICE_METRICS_AUTH: "1",
        SLUICE_CORS_ORIGIN: "http://app.example",
      });
      const port = cli.port;
      assert.equal((await publish(port, "/events/news", "x")).status, 401);
      const ok = await publish(port, "/events/news", "x", "text/plain", {
        Authorization: "Bearer pub-two",
      });
      assert.equal(ok.status, 202, "the second comma-separated token");

      const status = `http://127.0.0.1:${port}/status`;
      const code = async (user: string) =>
        (await curl(["--digest", "-u", user, "-o", "/dev/null", "-w", "%{http_code}", status]))
          .stdout;
      assert.equal(await code("ann:pw-ann"), "200", "user from the htdigest file, realm hub");
      assert.equal(await code("ann:wrong"), "401");

      const stream = await request(port, "GET", "/events/news", {
        headers: { Origin: "http://app.example" },
      });
      assert.equal(stream.status, 401);
      assert.equal(stream.headers.get("access-control-allow-origin"), "http://app.example");
      assert.match(stream.headers.get("www-authenticate")!, /^Digest realm="hub"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

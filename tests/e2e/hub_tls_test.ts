/**
 * TLS end to end with a self-signed certificate made by the test (openssl):
 * `startHub({ cert, key })` and the CLI's `--cert` / `--key`, checked with
 * `curl --cacert` and `Deno.connectTls({ caCerts })`.
 */

import assert from "node:assert/strict";
import { SseParser } from "../_util/sse_parser.ts";
import { curl, hasCommand, startCli, testHub, until, within } from "./_hub.ts";

const hasCurl = hasCommand("curl");
// openssl has no --version flag.
const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** Makes a P-256 self-signed (leaf) certificate for localhost and 127.0.0.1 in a temp dir. */
async function makeCertificate(): Promise<{ dir: string; certFile: string; keyFile: string }> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-tls-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // A leaf, not a CA: rustls (Deno.connectTls) refuses a CA certificate as the server's.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return { dir, certFile, keyFile };
}

Deno.test({
  name: "hub over TLS: curl --cacert publishes, Deno.connectTls subscribes, metrics answer",
  ignore: !hasCurl || !hasOpenssl,
  async fn() {
    const { dir, certFile, keyFile } = await makeCertificate();
    try {
      const cert = await Deno.readTextFile(certFile);
      await using hub = testHub({ cert, key: await Deno.readTextFile(keyFile) });
      const port = hub.server.addr.port;
      const base = `https://localhost:${port}`;
      const pin = ["--cacert", certFile, "--resolve", `localhost:${port}:127.0.0.1`];

      const untrusted = await curl(["-o", "/dev/null", `${base}/status`, "--resolve", pin[3]]);
      assert.equal(untrusted.code, 60, "without --cacert the self-signed certificate is refused");

      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [cert] });
      const parser = new SseParser();
      try {
        await conn.write(
          new TextEncoder().encode(
            `GET /events/news HTTP/1.1\r\nHost: localhost:${port}\r\nAccept: text/event-stream\r\n\r\n`,
          ),
        );
        await until(() => hub.events.count() === 1, "TLS subscriber attached");
        const posted = await curl([
          ...pin,
          "-H",
          "Content-Type: application/json",
          "--data-binary",
          '{"data":"over tls","event":"secure"}',
          `${base}/events/news`,
        ]);
        assert.equal(posted.code, 0, posted.stderr);
        assert.match(posted.stdout, /^\{"id":"\S+"\}\n$/);

        let text = "";
        const buf = new Uint8Array(16 * 1024);
        await within(
          (async () => {
            while (parser.events.length === 0) {
              const n = await conn.read(buf);
              if (n === null) throw new Error(`stream ended: ${text}`);
              const chunk = new TextDecoder().decode(buf.subarray(0, n));
              text += chunk;
              const body = text.indexOf("\r\n\r\n");
              if (body >= 0) {
                parser.feed(text.slice(body + 4));
                text = text.slice(0, body + 4);
              }
            }
          })(),
          "event over TLS",
        );
        assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
        assert.deepEqual(parser.events.map((e) => [e.type, e.data]), [["secure", "over tls"]]);
      } finally {
        conn.close();
      }

      const metrics = await curl([...pin, `${base}/metrics`]);
      assert.equal(metrics.code, 0, metrics.stderr);
      assert.match(metrics.stdout, /^sluice_events_delivered_total 1$/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "CLI --cert/--key serves https; an unreadable or invalid certificate is a clear error",
  ignore: !hasCurl || !hasOpenssl,
  async fn() {
    const { dir, certFile, keyFile } = await makeCertificate();
    try {
      {
        await using cli = await startCli(["--cert", certFile, "--key", keyFile]);
        assert.equal(cli.url, `https://127.0.0.1:${cli.port}/`);
        const status = await curl(["--cacert", certFile, `https://127.0.0.1:${cli.port}/status`]);
        assert.equal(status.code, 0, status.stderr);
        assert.equal(JSON.parse(status.stdout).sessions.open, 0);
        assert.equal(await cli.stop(), 0, "SIGTERM stops it cleanly");
      }
      const run = async (args: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname, ...args],
          stdout: "null",
          stderr: "piped",
        }).output();
        return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      };
      const missing = await run(["--port", "0", "--cert", `${dir}/nope.pem`, "--key", keyFile]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read --cert file ".*nope\.pem"/);
      const swapped = await run(["--port", "0", "--cert", keyFile, "--key", certFile]);
      assert.equal(swapped.code, 2);
      assert.match(swapped.stderr, /cannot use --cert \/ --key/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * A free TCP port on 127.0.0.1, for a service a test starts (redis-server,
 * mosquitto, a hub that must keep its port across a restart).
 *
 * @module
 */

/** Binds port 0, reads the port the kernel gave, and lets it go. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

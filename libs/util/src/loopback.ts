import { isIP } from 'node:net';

/**
 * True when a server bound to `host` accepts connections from this machine
 * only: `localhost`, 127.0.0.0/8, `::1` (any spelling, brackets allowed) and
 * IPv4-mapped 127.x. Everything else — the wildcards `0.0.0.0` and `::`, a
 * LAN address, any other host name — is reachable from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const family = isIP(h);
  if (family === 4) return h.startsWith('127.');
  if (family !== 6) return false;
  // The URL parser prints the canonical compressed form (0:0:0:0:0:0:0:1 → ::1,
  // ::ffff:127.0.0.1 → ::ffff:7f00:1), so one comparison covers every spelling.
  const canonical = new URL(`http://[${h}]`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

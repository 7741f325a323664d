import type { ChannelOptions } from '@grpc/grpc-js';

/** A peer address turned into what grpc-js needs: the channel target and the options that balance it. */
export interface ChannelTarget {
  target: string;
  channelOptions: ChannelOptions;
}

/**
 * Every call picks the next READY replica: a replica that died is skipped as
 * soon as its connection drops, so a retried call lands on a live one (with
 * grpc-js's default pick_first every call would stay on the first address).
 */
const ROUND_ROBIN_SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

const GRPC_SCHEME = /^(?:dns|ipv4|ipv6|unix|unix-abstract|vsock):/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

function hostAndPort(entry: string, address: string): { host: string; port: string } {
  const at = entry.lastIndexOf(':');
  const host = entry.slice(0, at);
  const port = entry.slice(at + 1);
  if (at <= 0 || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
    throw new Error(`address "${address}": entry "${entry}" is not host:port with a port 1-65535`);
  }
  return { host, port };
}

/**
 * Parses a peer address: one `host:port` (a DNS name that resolves to every
 * replica spreads the calls over all of them), any grpc-js target such as
 * `dns:///budget:50054`, or a comma-separated list of `ip:port` replicas
 * (`localhost` allowed; all IPv4 or all `[IPv6]`). Every form is balanced
 * round-robin. A list of other host names is refused: grpc-js resolves lists
 * only of IP literals, so give one DNS name for the whole set instead.
 */
export function channelTarget(address: string): ChannelTarget {
  const trimmed = address.trim();
  if (!trimmed) throw new Error('address: required, e.g. "127.0.0.1:50051", "10.0.0.1:50051,10.0.0.2:50051" or "dns:///budget:50054"');
  const channelOptions: ChannelOptions = { 'grpc.service_config': ROUND_ROBIN_SERVICE_CONFIG };
  // A grpc-js target with its scheme (ipv4:a:1,b:2, dns:///name:port) is taken as written.
  if (!trimmed.includes(',') || GRPC_SCHEME.test(trimmed)) return { target: trimmed, channelOptions };

  const entries = trimmed.split(',').map((e) => e.trim());
  if (entries.some((e) => e === '')) throw new Error(`address "${address}": empty entry in the list`);
  const families = new Set<'ipv4' | 'ipv6'>();
  const normalized = entries.map((entry) => {
    const { host, port } = hostAndPort(entry, address);
    if (host === 'localhost' || IPV4.test(host)) {
      families.add('ipv4');
      return `${host === 'localhost' ? '127.0.0.1' : host}:${port}`;
    }
    if (IPV6.test(host)) {
      families.add('ipv6');
      return `${host}:${port}`;
    }
    throw new Error(
      `address "${address}": list entry "${entry}" is not an IP literal; a list takes ip:port entries, ` +
        'for host names give one DNS name that resolves to every replica (e.g. "dns:///budget:50054")',
    );
  });
  if (families.size > 1) throw new Error(`address "${address}": a list must be all IPv4 or all IPv6 entries`);
  return { target: `${[...families][0]}:${normalized.join(',')}`, channelOptions };
}

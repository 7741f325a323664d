import { parseGrpcError, status } from '@switchyard/grpc';
import type { Peers } from './peers';
import type { PeerName, RouterMetrics } from './router-metrics';

/** Failures after which a peer adapter applies its fallback (the peer is dead or slow); any other status is the peer's answer. */
const UNREACHABLE = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.INTERNAL, status.UNKNOWN]);

function timed<C extends object>(client: C, peer: PeerName, metrics: RouterMetrics, now: () => number): C {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function' || key === 'close') return value;
      return (...args: unknown[]) => {
        const started = now();
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        // Unary calls return a promise; anything else (streams) passes through untimed.
        if (!(result instanceof Promise)) return result;
        const method = String(key);
        return result.then(
          (answer) => {
            metrics.peerCall(peer, method, (now() - started) / 1000);
            return answer;
          },
          (err: unknown) => {
            const code = parseGrpcError(err).code;
            metrics.peerCall(peer, method, (now() - started) / 1000, UNREACHABLE.has(code) ? (status[code] ?? String(code)) : undefined);
            throw err;
          },
        );
      };
    },
  });
}

/**
 * The four peer clients, each call timed into the peer-hop histogram and each
 * unreachable-peer failure counted as a fallback of that peer (the adapters
 * apply their fallback on exactly these). Wall time, not the injected clock:
 * it measures the network, not the call's logic.
 */
export function timedPeers(peers: Peers, metrics: RouterMetrics, now: () => number = () => performance.now()): Peers {
  return {
    limiter: timed(peers.limiter, 'limiter', metrics, now),
    breaker: timed(peers.breaker, 'breaker', metrics, now),
    budget: timed(peers.budget, 'budget', metrics, now),
    cache: timed(peers.cache, 'cache', metrics, now),
    close: () => peers.close(),
  };
}

import type { SwitchyardConfig } from '@switchyard/config';
import { MAX_LIMIT } from './sliding-window';
import type { KeyKind, KeyLimits, LimitedKey } from './quota-store';

export interface ResolvedKey extends LimitedKey {
  /** Provider kind of a deployment key (NATS subjects, KV keys); undefined for tenants. */
  provider?: string;
}

const effective = (limit: number | undefined, factor: number): number | undefined =>
  limit === undefined ? undefined : Math.min(MAX_LIMIT, Math.max(1, Math.floor(limit * factor)));

/**
 * Effective limits from the config file. Deployment limits are the provider's
 * published ones, so they are scaled by `defaults.headroom` (admit 80 % by
 * default, DESIGN "Defaults"); tenant limits are ours and apply as written.
 * A dimension without a configured limit is unlimited.
 */
export function createLimitResolver(config: SwitchyardConfig) {
  const headroom = config.defaults.headroom;
  return {
    resolve(kind: KeyKind, id: string): ResolvedKey | undefined {
      if (kind === 'deployment') {
        const d = Object.hasOwn(config.deployments, id) ? config.deployments[id] : undefined;
        if (!d) return undefined;
        const limits: KeyLimits = {
          rpm: effective(d.limits.rpm, headroom),
          tpm: effective(d.limits.tpm, headroom),
          tpd: effective(d.limits.tpd, headroom),
          concurrency: effective(d.limits.concurrency, headroom),
        };
        return { kind, id, limits: prune(limits), provider: d.provider };
      }
      const t = Object.hasOwn(config.tenants, id) ? config.tenants[id] : undefined;
      if (!t) return undefined;
      return { kind, id, limits: prune({ rpm: effective(t.limits.rpm, 1), tpm: effective(t.limits.tpm, 1) }) };
    },
  };
}

export type LimitResolver = ReturnType<typeof createLimitResolver>;

function prune(limits: KeyLimits): KeyLimits {
  const out: KeyLimits = {};
  for (const [k, v] of Object.entries(limits) as Array<[keyof KeyLimits, number | undefined]>) if (v !== undefined) out[k] = v;
  return out;
}

import type { Clock } from '@switchyard/util';
import type { LimiterInput } from './limiter-input';
import { type ObservedResponse, decideObserve } from './observe-policy';
import type { Announce } from './quota-changes';
import type { QuotaStore } from './quota-store';
import type { RecoveryWatch } from './recovery-watch';

export interface ObserveRequest extends ObservedResponse {
  provider: string;
  deployment: string;
}

export interface ObserveOutcome {
  cooldownUntilMs: number;
  unavailable: boolean;
  /** Our view of remaining quota was lowered to what the provider reported. */
  tightened: { rpm: boolean; tpm: boolean };
}

export interface ObserveDeps {
  input: LimiterInput;
  store: QuotaStore;
  announce: Announce;
  recovery: RecoveryWatch;
  clock: Clock;
  /** Cooldown after a 429 that carried no usable Retry-After. */
  defaultCooldownMs: number;
}

/**
 * Observe (a provider's answer changes a deployment's quota state, see
 * observe-policy.ts for what it means) and ClearUnavailable (an operator lifts
 * the unavailable mark): each applies the change to the store and announces it.
 */
export function createObserve(deps: ObserveDeps) {
  const { input, store, announce, recovery } = deps;
  const noTightening = { rpm: false, tpm: false };

  async function observe(req: ObserveRequest): Promise<ObserveOutcome> {
    const key = input.deployment(req.provider, req.deployment);
    input.httpStatus(req.httpStatus);
    const ref = { kind: key.kind, id: key.id };
    const decision = decideObserve(req, deps.clock.now(), deps.defaultCooldownMs);
    switch (decision.kind) {
      case 'unavailable': {
        const r = await store.setUnavailable(ref, true);
        if (r.changed) await announce(key, 'unavailable', r, 0, decision.reason);
        const state = await store.state(key);
        return { cooldownUntilMs: state.cooldownUntilMs, unavailable: true, tightened: noTightening };
      }
      case 'cooldown': {
        const r = await store.cooldown(ref, decision.ms);
        if (r.changed) await announce(key, 'cooldown_started', r, r.cooldownUntilMs, decision.reason);
        recovery.watch(key.id, r.cooldownUntilMs);
        const state = await store.state(key);
        return { cooldownUntilMs: r.cooldownUntilMs, unavailable: state.unavailable, tightened: noTightening };
      }
      case 'tighten': {
        const t = await store.tighten(key, decision.caps);
        if (decision.cooldownMs !== undefined) {
          const r = await store.cooldown(ref, decision.cooldownMs);
          if (r.changed) await announce(key, 'cooldown_started', r, r.cooldownUntilMs, `provider reports no quota left until its reset`);
          recovery.watch(key.id, r.cooldownUntilMs);
        }
        const state = await store.state(key);
        return { cooldownUntilMs: state.cooldownUntilMs, unavailable: state.unavailable, tightened: { rpm: t.rpm, tpm: t.tpm } };
      }
      case 'none': {
        const state = await store.state(key);
        return { cooldownUntilMs: state.cooldownUntilMs, unavailable: state.unavailable, tightened: noTightening };
      }
    }
  }

  async function clearUnavailable(provider: string, deployment: string): Promise<{ cleared: boolean; epoch: number }> {
    const key = input.deployment(provider, deployment);
    const r = await store.setUnavailable({ kind: key.kind, id: key.id }, false);
    if (r.changed) await announce(key, 'recovered', r, 0, 'unavailable mark cleared by an operator');
    return { cleared: r.changed, epoch: r.epoch };
  }

  return { observe, clearUnavailable };
}

import type { BudgetHold, BudgetPeer } from '../adapters/budget-peer';
import type { CacheLookup, CachePeer } from '../adapters/cache-peer';
import type { Admission } from '../domain/run-attempts';
import type { AttemptAdmission } from './admission';
import type { PreparedCall } from './prepare-call';

/** What step 3 found out, in parallel: the cache, the budget, and the first candidate's admission. */
export interface FanOut {
  cache: CacheLookup;
  budget: BudgetHold;
  firstAdmission?: Admission;
}

/** Step 3: cache Lookup, budget Reserve and the first admission, in parallel, each bounded by the per-hop deadline. Never throws. */
export type RunFanOut = (p: PreparedCall, signal?: AbortSignal) => Promise<FanOut>;

export function createFanOut(deps: { cache: CachePeer; budget: BudgetPeer; admission: AttemptAdmission }): RunFanOut {
  const { cache, budget, admission } = deps;
  const lookup = (p: PreparedCall): Promise<CacheLookup> =>
    p.call.cache.read
      ? cache.lookup({
          tenant: p.owner.tenantId,
          key: p.cacheKey,
          allowStale: p.call.cache.staleOnError,
          // Identical concurrent calls make one upstream call: only a call that will store its answer can lead.
          coalesce: p.call.cache.write,
          requestId: p.requestId,
          deadlineAt: p.deadlineAt,
        })
      : Promise.resolve({ kind: 'bypass' });
  const reserve = (p: PreparedCall): Promise<BudgetHold> =>
    budget.reserve({
      tenant: p.owner.tenantId,
      feature: p.call.feature,
      apiKeyId: p.owner.apiKeyId,
      hardCapped: p.owner.tenant.budgets.some((b) => b.hard),
      amountMicros: p.reserveMicros,
      requestId: p.requestId,
      deadlineAt: p.deadlineAt,
    });
  return async (p) => {
    const first = p.plan.usable[0];
    const nothingToTry = first === undefined;
    const [cached, hold, firstAdmission] = await Promise.all([
      lookup(p),
      nothingToTry ? Promise.resolve<BudgetHold>({ kind: 'unrecorded' }) : reserve(p),
      nothingToTry ? Promise.resolve(undefined) : admission.admit(p, first),
    ]);
    return { cache: cached, budget: hold, firstAdmission };
  };
}

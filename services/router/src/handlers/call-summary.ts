import { randomUUID } from 'node:crypto';
import { CacheStatus, ErrorClass as ErrorClassEnum, type CompleteResponse } from '@switchyard/contracts';
import type { SwitchyardConfig } from '@switchyard/config';
import { isAppError, status } from '@switchyard/grpc';
import { isFieldError, type Clock } from '@switchyard/util';
import type { RouterMetrics } from '../adapters/router-metrics';
import type { LoopResult } from '../domain/run-attempts';
import { logsInfo, type RouterLogger } from '../router-context';
import type { FanOut } from './fan-out';
import type { PreparedCall } from './prepare-call';

/** What a call answered with: a CompleteResponse, or a stream's Final (same fields). */
export type CallAnswer = Pick<CompleteResponse, 'costMicros' | 'cacheStatus' | 'degraded' | 'degradedReason'> & {
  usage?: { inputTokens: number; outputTokens: number };
  servedBy?: { provider: string; deployment: string; model: string };
  attempts: readonly unknown[];
  errorClass?: ErrorClassEnum;
};

/** What a handler tells the summary as the call goes; every method may be skipped (a call can end at any step). */
export interface CallObservation {
  prepared(p: PreparedCall): void;
  fanOut(fan: FanOut): void;
  replayed(): void;
  loop(result: LoopResult<unknown>): void;
  answered(answer: CallAnswer): void;
}

export interface CallSummary {
  /** Runs one RPC's handler body and, however it ends, records the call's metrics and writes its one summary line. */
  run<T>(rpc: 'Complete' | 'StreamComplete', req: { route: string }, fn: (obs: CallObservation) => Promise<T>): Promise<T>;
}

const CACHE_STATUS: Record<number, string> = {
  [CacheStatus.MISS]: 'miss',
  [CacheStatus.HIT]: 'hit',
  [CacheStatus.STALE]: 'stale',
  [CacheStatus.BYPASS]: 'bypass',
  [CacheStatus.UNAVAILABLE]: 'unavailable',
};

/** Longest error message kept on the summary line (messages name fields and causes, never prompt text). */
const MAX_MESSAGE_CHARS = 300;

function statusName(err: unknown): string {
  if (isFieldError(err)) return 'INVALID_ARGUMENT';
  if (isAppError(err)) return status[err.code] ?? String(err.code);
  return 'INTERNAL';
}

/**
 * One summary line per call, whatever its outcome (cache hits, denials,
 * validation errors, final failures), with the fields an operator searches
 * by (README "Observability"), and the call-level metrics from the same
 * figures, so the line and the counters never disagree.
 */
export function createCallSummary(deps: { metrics: RouterMetrics; logger: RouterLogger; clock: Clock; gateway: Pick<SwitchyardConfig, 'deployments'> }): CallSummary {
  const { metrics, logger, clock, gateway } = deps;
  return {
    async run(rpc, req, fn) {
      const startedAt = clock.now();
      let p: PreparedCall | undefined;
      let fan: FanOut | undefined;
      let replayed = false;
      let loop: LoopResult<unknown> | undefined;
      let answer: CallAnswer | undefined;
      const obs: CallObservation = {
        prepared: (x) => (p = x),
        fanOut: (x) => (fan = x),
        replayed: () => (replayed = true),
        loop: (x) => (loop = x),
        answered: (x) => (answer = x),
      };
      const finish = (err: unknown) => {
        try {
          record(err);
        } catch (recordErr) {
          logger.warn({ err: { message: (recordErr as Error).message } }, 'call summary not recorded');
        }
      };
      const record = (err: unknown) => {
        const route = p?.call.routeName ?? req.route;
        const tenant = p?.owner.tenantId ?? '';
        const grpcStatus = err !== undefined ? statusName(err) : answer ? 'OK' : 'CANCELLED';
        const cacheStatus = answer ? (CACHE_STATUS[answer.cacheStatus] ?? 'none') : fan?.cache.kind === 'bypass' ? 'bypass' : 'none';
        const attempts = loop?.attempts ?? [];
        const lastClass = attempts.at(-1)?.errorClass;
        const errorClass = answer?.errorClass ? ErrorClassEnum[answer.errorClass] : err !== undefined || !answer ? lastClass : undefined;
        const latencyMs = clock.now() - startedAt;
        metrics.call({ route, tenant, grpcStatus, cacheStatus, degraded: answer?.degraded ?? false, seconds: latencyMs / 1000 });
        for (let i = 1; i < attempts.length; i++) {
          const prev = attempts[i - 1]!;
          if (attempts[i]!.deployment === prev.deployment) metrics.retry(prev.deployment);
          else metrics.fallback(prev.errorClass ?? 'unknown');
        }
        for (const s of loop?.skipped ?? []) metrics.fallback(s.quota ? 'quota' : 'unavailable');
        const budgetRefused = (loop && !loop.ok && loop.reason.startsWith('retry budget exhausted')) || attempts.some((a) => a.note?.includes('retry budget spent'));
        if (budgetRefused) metrics.retryBudgetExhausted();
        if (replayed) metrics.idempotentReplay(route);
        if (fan?.cache.kind === 'hit' && fan.cache.coalesced) metrics.coalesced(route);
        const served = answer?.servedBy;
        const usage = answer?.usage;
        if (answer && (answer.cacheStatus === CacheStatus.HIT || answer.cacheStatus === CacheStatus.STALE) && served && usage) {
          const price = gateway.deployments[served.deployment]?.price;
          if (price) metrics.cacheSaved(tenant, (usage.inputTokens * price.inputPerMillionUsd + usage.outputTokens * price.outputPerMillionUsd) / 1_000_000);
        }
        if (!logsInfo(logger)) return;
        logger.info(
          {
            event: 'call',
            rpc,
            request_id: p?.requestId ?? randomUUID(),
            tenant: tenant || undefined,
            api_key_id: p?.owner.apiKeyId,
            feature: p?.call.feature || undefined,
            user_id: p?.call.userId || undefined,
            route,
            provider: served?.provider || undefined,
            model: served?.model || undefined,
            deployment: served?.deployment || undefined,
            status: grpcStatus,
            error_class: errorClass,
            error_message: err !== undefined ? String((err as Error)?.message ?? err).slice(0, MAX_MESSAGE_CHARS) : undefined,
            attempts: answer ? answer.attempts.length : attempts.length,
            prompt_tokens: usage?.inputTokens,
            completion_tokens: usage?.outputTokens,
            latency_ms: latencyMs,
            estimated_cost_micros: p?.reserveMicros,
            cost_micros: answer ? Number(answer.costMicros) : 0,
            cache_status: cacheStatus,
            degraded: answer?.degraded ?? false,
            degraded_reason: answer?.degradedReason || undefined,
            idempotent_replay: replayed || undefined,
          },
          'call',
        );
      };
      try {
        const result = await fn(obs);
        finish(undefined);
        return result;
      } catch (err) {
        finish(err);
        throw err;
      }
    },
  };
}

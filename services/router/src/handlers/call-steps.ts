import type { CallRequest } from '../domain/validate-request';
import type { AttemptPorts, LoopOptions } from '../domain/run-attempts';
import type { RouterContext } from '../router-context';
import { createAttemptAdmission } from './admission';
import { createAnswerStep, type AnswerStep } from './answer';
import { createAttemptReport, type AttemptReport } from './attempt-report';
import { createCallSummary, type CallSummary } from './call-summary';
import { dispatchAllowed, expectedAttemptMs } from './deployment-view';
import { createFanOut, type FanOut, type RunFanOut } from './fan-out';
import { createIdempotency, type ClaimIdempotency } from './idempotency';
import { loopDelayFor } from './loop-delay';
import { prepareCall, type PreparedCall } from './prepare-call';
import type { Metadata } from '@switchyard/grpc';

/** Ports of the attempt loop that do not depend on what an attempt returns: admission, health, latency. */
export type SharedPorts = Pick<AttemptPorts<unknown>, 'clock' | 'rng' | 'sleep' | 'admit' | 'unused' | 'mayDispatch' | 'knownHealthy' | 'expectedLatencyMs'>;

/**
 * The steps of "the life of one call", each bound to the adapters it needs,
 * built once by start(). Both RPC handlers are these steps in order; only
 * what an attempt returns (a whole answer or a stream) differs between them.
 */
export interface CallSteps {
  /** 1-2: authenticate, validate, resolve the route, estimate, plan candidates. */
  prepare(req: CallRequest, metadata: Metadata, deadline: Date | undefined): PreparedCall;
  /** At most once per idempotency key. */
  claimIdempotency: ClaimIdempotency;
  /** 3: cache, budget and first admission in parallel. */
  fanOut: RunFanOut;
  /** 4-6: what the attempt loop needs besides the call to the provider. */
  loop(p: PreparedCall, fan: FanOut, signal: AbortSignal, streaming: boolean): { ports: SharedPorts; options: LoopOptions };
  /** 7, per attempt: settle, observe, outcome, log. */
  reportAttempt: AttemptReport;
  /** 7-8: the answer (or the error). */
  answer: AnswerStep;
  /** 5: the provider adapter of each deployment. */
  providers: RouterContext['adapters'];
  /** Successful attempts' latency feeds the estimate step 6 uses to decide whether an attempt still fits. */
  latency: RouterContext['latency'];
  clock: RouterContext['clock'];
  /** Every call, however it ends: its metrics and its one summary log line. */
  summary: CallSummary;
  /** Waits for the call's next turn of the CPU (RouterContext.turn): where a provider's answer resumes the call. */
  turn(): Promise<void>;
}

const atOnce = () => Promise.resolve();

export function createCallSteps(ctx: RouterContext): CallSteps {
  const admission = createAttemptAdmission({ limiter: ctx.limiter, breaker: ctx.breaker, local: ctx, probesInFlight: ctx.probesInFlight });
  return {
    prepare: (req, metadata, deadline) => prepareCall(ctx, req, metadata, deadline),
    claimIdempotency: createIdempotency(ctx.cache),
    fanOut: createFanOut({ cache: ctx.cache, budget: ctx.budget, admission }),
    loop: (p, fan, signal, streaming) => ({
      ports: {
        clock: ctx.clock,
        rng: ctx.rng,
        sleep: ctx.sleep,
        admit: (c, maxWaitMs) => admission.admit(p, c, maxWaitMs, signal),
        unused: (a) => admission.settle(p, a, 'cancelled'),
        mayDispatch: (c) => dispatchAllowed(ctx, c),
        knownHealthy: (c) => !ctx.localBreaker.failing(c.name),
        expectedLatencyMs: (c) => expectedAttemptMs(ctx, c, streaming),
      },
      options: {
        retry: ctx.gateway.defaults.retry,
        deadlineAt: p.deadlineAt,
        fallbackOnContentFilter: p.call.route.fallbackOnContentFilter,
        contextFallback: p.call.route.contextOverflow !== 'fail',
        signal,
        retryBudget: ctx.retryBudget,
        maxAdmissionWaitMs: ctx.admissionMaxWaitMs,
        answerDelayMs: () => loopDelayFor(ctx.loopDelay, p.callMs),
        ...(fan.firstAdmission ? { firstAdmission: fan.firstAdmission } : {}),
      },
    }),
    reportAttempt: createAttemptReport({ admission, limiter: ctx.limiter, outcomes: ctx.outcomes, clock: ctx.clock, logger: ctx.logger, metrics: ctx.metrics }),
    answer: createAnswerStep({ budget: ctx.budget, cache: ctx.cache, admission, clock: ctx.clock, gateway: ctx.gateway }),
    providers: ctx.adapters,
    latency: ctx.latency,
    clock: ctx.clock,
    summary: createCallSummary({ metrics: ctx.metrics, logger: ctx.logger, clock: ctx.clock, gateway: ctx.gateway }),
    turn: ctx.turn ?? atOnce,
  };
}

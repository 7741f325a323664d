import type { CompleteRequest, CompleteResponse } from '@switchyard/contracts';
import type { CallContext } from '@switchyard/grpc';
import type { ChatResponse } from '@switchyard/providers';
import { runAttempts, type AttemptPorts } from '../domain/run-attempts';
import { firstWave, openCall } from './call-opening';
import type { CallSteps } from './call-steps';
import { leaderWork } from './leader-work';
import { requestFor } from './prepare-call';
import { inCallSpan, tagAttemptAnswer, withAttemptSpan } from './tracing';

/** RouterService.Complete: the life of one call (README "Architecture"), one whole answer. */
export function createCompleteHandler(steps: CallSteps) {
  return (req: CompleteRequest, call: CallContext): Promise<CompleteResponse> =>
    inCallSpan('router.Complete', call, (span) => steps.summary.run('Complete', req, async (obs) => {
      // 1-2. Who is calling, what they asked for, where it may go.
      const { p, idempotency } = await openCall(steps, req, call, span, obs);
      if (idempotency.replay) {
        obs.replayed();
        obs.answered(idempotency.replay);
        return idempotency.replay;
      }
      // The leader of an idempotency key finishes its work even when its caller
      // leaves (a crashed jobs worker, a dropped connection) once its request is
      // upstream: the duplicate that follows must get this answer, not make the
      // call a second time. Until then its caller's cancel stops it (leader-work.ts).
      const leader = idempotency.leader ? leaderWork(call.signal, call.deadline) : undefined;
      const work = leader?.signal ?? call.signal;
      try {
        // 3. Cache, budget and the first admission in parallel; a hit or a denial ends the call here.
        const { fan, early } = await firstWave(steps, p, idempotency, obs);
        if (early) {
          obs.answered(early);
          return early;
        }
        // 4-6. Pick, dispatch, classify, retry or fall back.
        const loop = steps.loop(p, fan, work, false);
        const ports: AttemptPorts<ChatResponse> = {
          ...loop.ports,
          call: (c, timeoutMs) =>
            withAttemptSpan(c, requestFor(p, c.name).maxTokens, async (attemptSpan) => {
              leader?.dispatched();
              const res = await steps.providers.get(c.name)!.complete(requestFor(p, c.name), { signal: work, timeoutMs });
              await steps.turn();
              tagAttemptAnswer(attemptSpan, res);
              return res;
            }),
          afterAttempt: (e) => {
            if (e.value) steps.latency.observe(e.candidate.name, e.record.latencyMs);
            steps.reportAttempt(p, e, e.value ? { usage: e.value.usage, ...(e.value.rateLimit ? { rateLimit: e.value.rateLimit } : {}) } : {});
          },
          upstreamRequestIdOf: (res) => res.upstreamRequestId,
        };
        const result = await runAttempts(p.plan.usable, ports, loop.options);
        obs.loop(result);
        // 7-8. Account, store, answer; or a stale answer; or the error listing every attempt.
        const answer = steps.answer.afterAttempts(p, fan, result, (v) => v, idempotency.degraded);
        if (answer.replayable) idempotency.keep(answer.response);
        obs.answered(answer.response);
        return answer.response;
      } finally {
        idempotency.finish();
      }
    }));
}

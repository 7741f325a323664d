import { Health, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from '@switchyard/contracts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { HealthCheckResponseSchema } from '@switchyard/contracts';
import { notFound } from './app-error';
import { serviceRegistration, type CallContext, type ServiceRegistration } from './types';

/** Serving status of the server ("" key) and of each named service. */
export interface HealthRegistry {
  /** Sets one service's status, or every status (including "") when service is omitted. */
  setServing(serving: boolean, service?: string): void;
  /** Current status of a service, undefined if unknown. */
  status(service: string): ServingStatus | undefined;
  /** Ends every Watch stream (after they have sent the latest status) so a graceful shutdown is not held open by them. */
  closeWatchers(): void;
  registration: ServiceRegistration;
}

/**
 * grpc.health.v1 implementation (Check and Watch). The overall status is
 * registered under "" as the protocol requires; every served service under its
 * full name. Watch streams push each change and end when the server shuts down.
 */
export function createHealthRegistry(serviceNames: string[]): HealthRegistry {
  const statuses = new Map<string, ServingStatus>([['', ServingStatus.SERVING]]);
  for (const name of serviceNames) statuses.set(name, ServingStatus.SERVING);
  let version = 0;
  let closed = false;
  const waiters = new Set<() => void>();

  const notify = () => {
    version++;
    for (const wake of [...waiters]) wake();
  };

  /** Resolves once the version moved past `seen`, the registry closed or the signal aborted. */
  const changedSince = (seen: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (version !== seen || closed || signal.aborted) return resolve();
      const wake = () => {
        waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });

  const check = (request: { service: string }): MessageInitShape<typeof HealthCheckResponseSchema> => {
    const current = statuses.get(request.service);
    if (current === undefined) throw notFound('service', request.service);
    return { status: current };
  };

  async function* watch(request: { service: string }, ctx: CallContext): AsyncGenerator<MessageInitShape<typeof HealthCheckResponseSchema>> {
    let last: ServingStatus | undefined;
    for (;;) {
      const seen = version;
      const current = statuses.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (current !== last) {
        last = current;
        yield { status: current } satisfies Partial<HealthCheckResponse>;
      }
      // Checked after sending, so the final NOT_SERVING always reaches watchers before the stream ends.
      if (closed || ctx.signal.aborted) return;
      await changedSince(seen, ctx.signal);
    }
  }

  return {
    setServing(serving, service) {
      const next = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
      if (service === undefined) {
        for (const key of statuses.keys()) statuses.set(key, next);
      } else {
        statuses.set(service, next);
      }
      notify();
    },
    status: (service) => statuses.get(service),
    closeWatchers() {
      closed = true;
      notify();
    },
    registration: serviceRegistration(Health, { check, watch }),
  };
}

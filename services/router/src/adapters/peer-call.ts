import { parseGrpcError, status } from '@switchyard/grpc';
import type { Clock } from '@switchyard/util';
import type { BackgroundTasks } from '../background-tasks';

/** Time kept back from a peer hop for the router to still answer before the caller's deadline. */
const HOP_RESERVE_MS = 10;

/** Beyond a queued wait, how long the limiter's answer may take to arrive. */
const WAIT_HOP_SLACK_MS = 50;

/**
 * Per-hop deadline of a peer call: the configured one, shortened so a slow
 * peer cannot eat into the caller's own deadline (a little is kept back for
 * answering). Never below 1 ms: an expired hop fails at once into its fallback.
 * `waitMs` is time the peer was asked to wait on purpose (a limiter queue).
 */
export function hopDeadline(hop: { now: number; deadlineAt: number; peerDeadlineMs: number; waitMs?: number }): { deadlineMs: number } {
  const left = hop.deadlineAt - hop.now - HOP_RESERVE_MS;
  const waitMs = hop.waitMs ?? 0;
  // A queued wait already keeps its margins (run-attempts admissionWaitMs):
  // its hop gets the wait plus a little, not a whole peer deadline more, so a
  // limiter slow to answer cannot spend the time the caller's answer needs.
  const allowed = waitMs > 0 ? waitMs + WAIT_HOP_SLACK_MS : hop.peerDeadlineMs;
  return { deadlineMs: Math.max(1, Math.min(allowed, left)) };
}

/** A peer call's failure as one line for logs and notes ("UNAVAILABLE: No connection established"), via the typed parser. */
export function peerErrorText(err: unknown): string {
  const { code, message } = parseGrpcError(err);
  return `${status[code] ?? code}: ${message}`;
}

/** The gRPC status a peer call failed with (UNKNOWN for a non-gRPC error). */
export function peerErrorCode(err: unknown): status {
  return parseGrpcError(err).code;
}

/** pino-compatible subset the peer adapters log through. */
export interface PeerLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What every peer adapter is built from (start.ts): its gRPC client, the clock, the logger, the background tasks, the per-hop deadline. */
export interface PeerDeps<Client> {
  client: Client;
  clock: Clock;
  logger: PeerLogger;
  tasks: BackgroundTasks;
  /** Per-hop deadline: a dead or slow peer costs at most this much of the caller's time, then its fallback applies. */
  peerDeadlineMs: number;
}

/**
 * A lease's hop serves many calls, so no one caller's deadline cuts it; a call
 * waits on it for at most half its own time left ('late' then), keeping the
 * rest for its own per-call hop and its attempt. `lease` must not reject.
 */
export function withinHalfTimeLeft<T>(lease: Promise<T>, deadlineAt: number, clock: Clock): Promise<T | 'late'> {
  if (!Number.isFinite(deadlineAt)) return lease;
  const waitMs = (deadlineAt - clock.now()) / 2;
  if (waitMs <= 0) return Promise.resolve('late');
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('late'), waitMs);
    void lease.then((out) => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

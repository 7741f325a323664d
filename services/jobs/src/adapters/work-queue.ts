import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { JOBS_QUEUE_SUBJECTS, JOBS_STREAM, subjects } from '@switchyard/nats';
import type { LanePriority } from '../domain/lanes';

/** One job handed to this worker; it stays ours while we heartbeat it. */
export interface QueuedJob {
  jobId: string;
  tenant: string;
  priority: LanePriority;
  /** 1 on first delivery, higher after a requeue, a crash (ack wait) or a NATS restart. */
  deliveryCount: number;
  /** Done with it: the result is stored. */
  ack(): void;
  /** Back into its lane, deliverable again after `delayMs`. */
  requeue(delayMs: number): void;
  /** Still working on it: resets the server's ack-wait timer. */
  heartbeat(): void;
}

export interface LaneStats {
  /** Unfinished jobs (queued or held by a worker). */
  depth: number;
  /** Publish time of the lane's oldest unfinished job, 0 when empty. */
  oldestUnixMs: number;
}

/**
 * The jobs work queue over JetStream, driven by the JetStream API directly
 * rather than the EventBus `consume` (whose one-handler-at-a-time push loop
 * and fixed nak delay cannot express it): a work-queue stream with one
 * subject and one durable pull consumer per priority and tenant; a worker
 * asks one lane for ONE job only when it has a free slot (no_wait pull), so
 * nothing waits in a client buffer and fairness is decided per job.
 */
export interface WorkQueue {
  enqueue(priority: LanePriority, tenant: string, jobId: string): Promise<void>;
  /** One deliverable job from the lane, or undefined when none is (empty, all held, or delayed). */
  take(priority: LanePriority, tenant: string): Promise<QueuedJob | undefined>;
  /** Depth and oldest job per lane, keyed `<priority>.<tenant>`. */
  stats(): Promise<Map<string, LaneStats>>;
}

export function laneKey(priority: LanePriority, tenant: string): string {
  return `${priority}.${tenant}`;
}

function durableName(priority: LanePriority, tenant: string): string {
  return `jobs-${priority}-${tenant}`;
}

/** Delivery count from the ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>…` (or with domain and account hash). */
function deliveryCountOf(reply: string): number {
  const tokens = reply.split('.');
  const index = tokens.length >= 12 ? 6 : 4;
  const n = Number(tokens[index]);
  return Number.isFinite(n) && n > 0 ? n : 1;
}

export async function createWorkQueue(
  nc: NatsConnection,
  options: { tenants: readonly string[]; ackWaitMs: number; maxAgeMs: number; requestTimeoutMs?: number },
): Promise<WorkQueue> {
  const timeout = options.requestTimeoutMs ?? 5_000;
  const jsm: JetStreamManager = await jetstreamManager(nc, { timeout });
  const js = jetstream(nc, { timeout });
  const streamConfig = {
    name: JOBS_STREAM,
    subjects: [JOBS_QUEUE_SUBJECTS],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    max_age: nanos(options.maxAgeMs),
    duplicate_window: nanos(2 * 60_000),
  };
  try {
    await jsm.streams.info(JOBS_STREAM);
  } catch {
    await jsm.streams.add(streamConfig).catch(async (err) => {
      // Another replica created it meanwhile.
      if (!(await jsm.streams.info(JOBS_STREAM).catch(() => undefined))) throw err;
    });
  }
  for (const tenant of options.tenants) {
    for (const priority of ['interactive', 'batch'] as const) {
      const config = {
        durable_name: durableName(priority, tenant),
        filter_subject: subjects.jobQueue(priority, tenant),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(options.ackWaitMs),
        // A job is retried until it is final or expired; the worker decides, not a delivery count.
        max_deliver: -1,
        max_ack_pending: -1,
      };
      const existing = await jsm.consumers.info(JOBS_STREAM, config.durable_name).catch(() => undefined);
      if (!existing) await jsm.consumers.add(JOBS_STREAM, config);
      else if (existing.config.ack_wait !== config.ack_wait) await jsm.consumers.update(JOBS_STREAM, config.durable_name, { ack_wait: config.ack_wait });
    }
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const pullRequest = encoder.encode(JSON.stringify({ batch: 1, no_wait: true }));

  return {
    async enqueue(priority, tenant, jobId) {
      // msgID: a retried enqueue of the same job (within the duplicate window) is stored once.
      await js.publish(subjects.jobQueue(priority, tenant), encoder.encode(jobId), { msgID: jobId, timeout });
    },

    async take(priority, tenant) {
      let msg: Msg;
      try {
        // noMux: the delivered job arrives under its own subject, which a muxed inbox would not match.
        msg = await nc.request(`$JS.API.CONSUMER.MSG.NEXT.${JOBS_STREAM}.${durableName(priority, tenant)}`, pullRequest, { timeout, noMux: true });
      } catch (err) {
        if (/timeout/i.test(String((err as Error)?.message))) return undefined;
        throw err;
      }
      // A status reply (404 no messages, 408 request expired, 409…) carries no job.
      if (!msg.reply || msg.headers?.hasError || (msg.headers?.code ?? 0) >= 300 || msg.data.length === 0) return undefined;
      const reply = msg.reply;
      // A reply that cannot be sent (connection closed at shutdown) is harmless: the job is redelivered after the ack wait.
      const send = (body: string) => {
        try {
          nc.publish(reply, encoder.encode(body));
        } catch {
          // See above.
        }
      };
      return {
        jobId: decoder.decode(msg.data),
        tenant,
        priority,
        deliveryCount: deliveryCountOf(reply),
        ack: () => send('+ACK'),
        requeue: (delayMs) => send(`-NAK ${JSON.stringify({ delay: nanos(Math.max(0, Math.round(delayMs))) })}`),
        heartbeat: () => send('+WPI'),
      };
    },

    async stats() {
      const info = await jsm.streams.info(JOBS_STREAM, { subjects_filter: JOBS_QUEUE_SUBJECTS });
      const out = new Map<string, LaneStats>();
      const perSubject = info.state.subjects ?? {};
      for (const [subject, count] of Object.entries(perSubject)) {
        const [, , priority, tenant] = subject.split('.');
        if (!priority || !tenant || count <= 0) continue;
        let oldestUnixMs = 0;
        try {
          const reply = await nc.request(`$JS.API.STREAM.MSG.GET.${JOBS_STREAM}`, encoder.encode(JSON.stringify({ seq: 0, next_by_subj: subject })), { timeout });
          const first = JSON.parse(decoder.decode(reply.data)) as { message?: { time?: string } };
          if (first.message?.time) oldestUnixMs = Date.parse(first.message.time);
        } catch {
          // Depth alone still serves; the age check just skips this lane this round.
        }
        out.set(laneKey(priority as LanePriority, tenant), { depth: count, oldestUnixMs });
      }
      return out;
    },
  };
}

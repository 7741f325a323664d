import { fromBinary } from '@bufbuild/protobuf';
import { JobEventSchema, JobsService, JobState, Priority, Role, type Job } from '@switchyard/contracts';
import { parseGrpcError, status, type Client } from '@switchyard/grpc';
import { createNatsEventBus, subjects } from '@switchyard/nats';
import { sleep } from '@switchyard/util';
import { auth, drainUtilisation, startJobsStack, type JobsStack, type Tenant } from '../../services/jobs/test/stack';

/**
 * Issue 16's proof, time-scaled: the provider's "minute" is WINDOW_MS for the
 * simulator's token buckets and the limiter's sliding window alike. The
 * simulator enforces RPM per window; the limiter admits HEADROOM of it.
 * Router and peers run in-process (production start()), each jobs replica is
 * its own process, NATS runs with file storage so it can be killed and
 * restarted with its state.
 */
const WINDOW_MS = 1000;
const RPM = 20;
const HEADROOM = 0.8;
const PER_WINDOW = RPM * HEADROOM;
/** Slots per jobs replica: a window and a half of admissions, so quota never idles while jobs wait. */
const CONCURRENCY = 24;
/** Per-tenant limit on unfinished jobs: above the surge, below the flood plus a little. */
const MAX_QUEUED = 20 * PER_WINDOW + 5;

type JobsClient = Client<typeof JobsService.method>;

function request(marker: string) {
  return { route: 'jobs', messages: [{ role: Role.USER, content: marker }], params: { maxTokens: 8 } };
}

async function submitMany(client: JobsClient, tenant: Tenant, count: number, priority: Priority, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  // A few at a time: Submit latency is not this test's subject, the queue is.
  for (let i = 0; i < count; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, (_, k) =>
        client.submit({ request: request(`${prefix}-${i + k}`), priority, expiresInMs: 60_000n }, auth(tenant)),
      ),
    );
    ids.push(...batch.map((r) => r.job!.jobId));
  }
  return ids;
}

/** Polls ListJobs until every one of `ids` is final; returns them. */
async function waitFinal(client: JobsClient, tenant: Tenant, ids: string[], timeoutMs: number): Promise<Job[]> {
  const wanted = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs: Job[] = [];
    let pageToken = '';
    try {
      do {
        const page = await client.listJobs({ pageSize: 500, pageToken }, auth(tenant));
        jobs.push(...page.jobs.filter((j) => wanted.has(j.jobId)));
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (err) {
      // While NATS restarts the service answers UNAVAILABLE: ask again.
      if (parseGrpcError(err).code !== status.UNAVAILABLE || Date.now() > deadline) throw err;
      await sleep(300);
      continue;
    }
    const final = jobs.filter((j) => [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED].includes(j.state));
    if (final.length === wanted.size) return final;
    if (Date.now() > deadline) {
      const states = jobs.reduce<Record<string, number>>((acc, j) => ({ ...acc, [JobState[j.state]]: (acc[JobState[j.state]] ?? 0) + 1 }), {});
      throw new Error(`${final.length}/${wanted.size} jobs final after ${timeoutMs} ms: ${JSON.stringify(states)} (of ${jobs.length} listed)`);
    }
    await sleep(300);
  }
}

const ms = (v: bigint) => Number(v);

describe('jobs: a durable queue drained at the providers\' pace (simulator enforcing the limit)', () => {
  let stack: JobsStack;
  let client: JobsClient;

  beforeAll(async () => {
    stack = await startJobsStack({
      rpm: RPM,
      windowMs: WINDOW_MS,
      headroom: HEADROOM,
      latencyMs: 0,
      jobsEnv: { JOBS_CONCURRENCY: String(CONCURRENCY), JOBS_POLL_MS: '100', JOBS_ACK_WAIT_MS: '2000', JOBS_MAX_QUEUED_PER_TENANT: String(MAX_QUEUED) },
    });
    ({ client } = await stack.spawnJobs());
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  beforeEach(async () => {
    await stack.sim.reset();
  });

  it('a surge of 10× the limit: every job succeeds, zero upstream 429s, drained at ≥ 95 % of the limit, interactive jobs do not wait behind batch', async () => {
    const total = 10 * PER_WINDOW;
    // Subscribers learn of every success without polling.
    const succeededEvents = new Set<string>();
    const events = await createNatsEventBus({ url: stack.nats.url, name: 'jobs-test' });
    await events.subscribe(subjects.job('acme', 'succeeded'), (msg) => {
      succeededEvents.add(fromBinary(JobEventSchema, msg.data).jobId);
    });
    const batch = await submitMany(client, 'acme', total, Priority.BATCH, 'surge');
    // While the surge waits: a queued batch job knows it is behind the others.
    const probe = await client.getJob({ jobId: batch[batch.length - 1]! }, auth('acme'));
    expect(probe.job!.state).toBe(JobState.QUEUED);
    expect(Number(probe.job!.positionEstimate)).toBeGreaterThan(PER_WINDOW);
    expect(Number(probe.depth!.batch)).toBeGreaterThan(PER_WINDOW);

    // Interactive jobs arrive one per window into the backlog; the first is watched.
    const interactive: string[] = [];
    let watched: Promise<JobState[]> | undefined;
    for (let i = 0; i < 5; i++) {
      await sleep(WINDOW_MS);
      interactive.push(...(await submitMany(client, 'acme', 1, Priority.INTERACTIVE, `interactive-${i}`)));
      watched ??= (async () => {
        const states: JobState[] = [];
        for await (const change of client.watchJob({ jobId: interactive[0]! }, { ...auth('acme'), deadlineMs: 30_000 })) states.push(change.job!.state);
        return states;
      })();
    }
    const jobs = await waitFinal(client, 'acme', [...batch, ...interactive], 60_000);
    const counters = (await stack.sim.counters())[stack.model];
    await sleep(200);
    await events.close();
    expect([...batch, ...interactive].filter((id) => !succeededEvents.has(id))).toEqual([]);

    expect(jobs.filter((j) => j.state !== JobState.SUCCEEDED).map((j) => `${j.jobId}: ${JobState[j.state]} ${j.error?.message}`)).toEqual([]);
    expect(counters?.byStatus['429'] ?? 0).toBe(0);
    // Each job's provider call was made exactly once.
    expect(counters?.received).toBe(total + interactive.length);

    // Utilisation: each admission one window after the one PER_WINDOW before it.
    const utilisation = drainUtilisation(jobs.map((j) => ms(j.finishedUnixMs)), PER_WINDOW, WINDOW_MS);
    const drainedPerWindow = utilisation * PER_WINDOW;

    const queueTime = (j: Job) => ms(j.finishedUnixMs) - ms(j.createdUnixMs);
    const byId = new Map(jobs.map((j) => [j.jobId, j]));
    const interactiveTimes = interactive.map((id) => queueTime(byId.get(id)!));
    const batchWorst = Math.max(...batch.map((id) => queueTime(byId.get(id)!)));
    // An interactive job waits for one slot to free, then behind at most the
    // slots already waiting in the limiter's queue: CONCURRENCY / PER_WINDOW windows.
    const interactiveBound = (CONCURRENCY / PER_WINDOW + 1) * WINDOW_MS;
    console.log(
      `surge: ${total} batch + ${interactive.length} interactive jobs, drained ${drainedPerWindow.toFixed(2)}/window against ${PER_WINDOW} admitted ` +
        `(utilisation ${(utilisation * 100).toFixed(1)} %), interactive finished after ${interactiveTimes.join(', ')} ms (bound ${interactiveBound}), ` +
        `worst batch ${batchWorst} ms, upstream 429s ${counters?.byStatus['429'] ?? 0}`,
    );
    expect(utilisation).toBeGreaterThanOrEqual(0.95);
    expect(Math.max(...interactiveTimes)).toBeLessThanOrEqual(interactiveBound);
    expect(batchWorst).toBeGreaterThan(2 * interactiveBound);
    // WatchJob streamed its changes and ended once it was final.
    const states = await watched!;
    expect(states.at(-1)).toBe(JobState.SUCCEEDED);
    expect(states).toContain(JobState.RUNNING);
  }, 90_000);

  it('two tenants, one flooding: the other\'s jobs finish within a bound; cancelled and expired jobs are never sent upstream', async () => {
    const flood = await submitMany(client, 'flood', 20 * PER_WINDOW, Priority.BATCH, 'flood');
    // Behind the flood in its own lane: cancelled at once.
    const cancelled = (await client.submit({ request: request('never-cancelled'), expiresInMs: 60_000n }, auth('flood'))).job!.jobId;
    const cancel = await client.cancelJob({ jobId: cancelled }, auth('flood'));
    expect(cancel.job!.state).toBe(JobState.CANCELLED);
    // Also behind the flood, and expired long before its lane reaches it.
    const expiring = (await client.submit({ request: request('never-expired'), expiresInMs: 500n }, auth('flood'))).job!.jobId;

    // Backpressure: past MAX_QUEUED unfinished jobs the flood is told to come back later.
    let refused: ReturnType<typeof parseGrpcError> | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        flood.push((await client.submit({ request: request(`flood-extra-${i}`), expiresInMs: 60_000n }, auth('flood'))).job!.jobId);
      } catch (err) {
        refused = parseGrpcError(err);
      }
    }
    expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: { errorInfo: { reason: 'JOBS_QUEUE_FULL' } } });
    expect(refused!.details.retryDelayMs).toBeGreaterThan(0);

    const started = Date.now();
    const small = await submitMany(client, 'small', 10, Priority.BATCH, 'small');
    const smallJobs = await waitFinal(client, 'small', small, 30_000);
    const smallTook = Date.now() - started;
    const floodQueued = (await client.listJobs({ state: JobState.QUEUED, pageSize: 500 }, auth('flood'))).jobs;

    expect(smallJobs.every((j) => j.state === JobState.SUCCEEDED)).toBe(true);
    // Round-robin: the ten take two slot turns each, so about 20 admissions,
    // plus the slots already waiting in the limiter when they arrived.
    const bound = ((2 * small.length + CONCURRENCY) / PER_WINDOW + 1) * WINDOW_MS;
    console.log(`fairness: small tenant's ${small.length} jobs done in ${smallTook} ms (bound ${bound}) with ${floodQueued.length} of the flood's jobs still queued`);
    expect(smallTook).toBeLessThanOrEqual(bound);
    expect(floodQueued.length).toBeGreaterThan(PER_WINDOW);

    // End the flood early: cancel what is still queued (also exercises ListJobs
    // + CancelJob), all but the expiring job, which its lane then reaches.
    await Promise.all(floodQueued.filter((j) => j.jobId !== expiring).map((j) => client.cancelJob({ jobId: j.jobId }, auth('flood'))));
    const floodJobs = await waitFinal(client, 'flood', [...flood, cancelled, expiring], 30_000);
    expect(floodJobs.find((j) => j.jobId === expiring)!.state).toBe(JobState.EXPIRED);
    expect(floodJobs.find((j) => j.jobId === cancelled)!.state).toBe(JobState.CANCELLED);

    const sent = (await stack.sim.requests(stack.model)).map((r) => JSON.stringify(r.body));
    expect(sent.filter((b) => b.includes('never-cancelled') || b.includes('never-expired'))).toEqual([]);
    // Every cancelled flood job stayed away from the provider too.
    const counters = (await stack.sim.counters())[stack.model];
    const ran = floodJobs.filter((j) => j.state === JobState.SUCCEEDED).length + small.length;
    expect(counters?.received).toBe(ran);
    expect(counters?.byStatus['429'] ?? 0).toBe(0);
  }, 90_000);

  it('a job cancelled while its router call waits for quota is never sent upstream', async () => {
    const ids = await submitMany(client, 'acme', CONCURRENCY, Priority.BATCH, 'waiting');
    // All start at once (one slot each); the last waits about CONCURRENCY / PER_WINDOW windows for its quota in the router.
    const target = ids[ids.length - 1]!;
    const marker = JSON.stringify({ content: `waiting-${ids.length - 1}` }).slice(1, -1);
    const sentBodies = async () => (await stack.sim.requests(stack.model)).map((r) => JSON.stringify(r.body));
    while ((await client.getJob({ jobId: target }, auth('acme'))).job!.state !== JobState.RUNNING) await sleep(20);
    expect((await sentBodies()).filter((b) => b.includes(marker))).toEqual([]);
    expect((await client.cancelJob({ jobId: target }, auth('acme'))).job!.state).toBe(JobState.CANCELLED);

    const jobs = await waitFinal(client, 'acme', ids, 30_000);
    expect(jobs.find((j) => j.jobId === target)!.state).toBe(JobState.CANCELLED);
    expect((await sentBodies()).filter((b) => b.includes(marker))).toEqual([]);
    expect((await stack.sim.counters())[stack.model]?.received).toBe(jobs.filter((j) => j.state === JobState.SUCCEEDED).length);
  }, 60_000);

  it('answers bad input with the field, isolates tenants, and fails a job whose budget ran out with the budget\'s error', async () => {
    const refuse = async (call: Promise<unknown>) => parseGrpcError(await call.then(() => new Error('accepted'), (err: unknown) => err));
    expect(await refuse(client.submit({ request: request('x') }, { metadata: { 'x-api-key': 'sk-nobody' } }))).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(await refuse(client.submit({ request: { messages: [] } }, auth('acme')))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining('request.route') });
    expect(await refuse(client.submit({ request: request('x'), expiresInMs: 10n ** 12n }, auth('acme')))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: expect.stringContaining('expires_in_ms'),
    });
    expect(await refuse(client.submit({ request: request('x'), notifySubject: 'switchyard.budget.acme' }, auth('acme')))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: expect.stringContaining('notify_subject'),
    });

    const broke = (await client.submit({ request: request('over-budget'), expiresInMs: 30_000n }, auth('broke'))).job!.jobId;
    // Another tenant cannot see it.
    expect(await refuse(client.getJob({ jobId: broke }, auth('acme')))).toMatchObject({ code: status.NOT_FOUND });
    const [failed] = await waitFinal(client, 'broke', [broke], 20_000);
    expect(failed!.state).toBe(JobState.FAILED);
    expect(failed!.error).toMatchObject({ code: status.RESOURCE_EXHAUSTED, message: expect.stringContaining('budget exceeded') });
    expect((await stack.sim.counters())[stack.model]?.received ?? 0).toBe(0);
  }, 60_000);

  it('the router down for 5 s mid-drain (a restart): the jobs wait for it and all succeed, none sent twice', async () => {
    // More jobs than the worker runs at once (JOBS_CONCURRENCY): some are sent while the router is down.
    const total = 4 * PER_WINDOW;
    const ids = await submitMany(client, 'acme', total, Priority.BATCH, 'router-restart');
    await sleep(300);
    // Longer than the transient-failure budget (3 × JOBS_RETRY_DELAY_MS), which used to fail every job sent meanwhile.
    await stack.restartRouter(5_000);
    const jobs = await waitFinal(client, 'acme', ids, 60_000);
    expect(jobs.filter((j) => j.state !== JobState.SUCCEEDED).map((j) => `${JobState[j.state]}: ${j.error?.message}`)).toEqual([]);
    expect((await stack.sim.counters())[stack.model]?.received).toBe(total);
  }, 90_000);

  it('a worker SIGKILLed and NATS restarted mid-drain: no job lost, none sent twice, every job final', async () => {
    const second = await stack.spawnJobs();
    const total = 5 * PER_WINDOW;
    const ids = await submitMany(client, 'acme', total - 1, Priority.BATCH, 'crash');
    const keyed = { request: request('crash-keyed'), expiresInMs: 60_000n, idempotencyKey: 'crash-keyed-1' };
    const first = await client.submit(keyed, auth('acme'));
    ids.push(first.job!.jobId);
    // Mid-drain: some done, most still queued or waiting for quota in a worker.
    await sleep(1.5 * WINDOW_MS);
    await second.process.kill();
    await stack.nats.kill();
    await sleep(500);
    await stack.nats.restart();
    const jobs = await waitFinal(client, 'acme', ids, 60_000);
    // The idempotency key survived the restart: submitting again returns the same, finished job.
    const again = await client.submit(keyed, auth('acme'));
    expect(again).toMatchObject({ created: false, job: { jobId: first.job!.jobId, state: JobState.SUCCEEDED } });
    const counters = (await stack.sim.counters())[stack.model];
    console.log(`crash: ${jobs.length} jobs final, provider received ${counters?.received}, attempts ${jobs.reduce((n, j) => n + j.attempts, 0)}`);
    expect(jobs.filter((j) => j.state !== JobState.SUCCEEDED).map((j) => `${JobState[j.state]}: ${j.error?.message}`)).toEqual([]);
    expect(counters?.received).toBe(total);
    expect(counters?.byStatus['429'] ?? 0).toBe(0);
  }, 90_000);
});

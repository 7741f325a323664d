/**
 * `npm run bench -- jobs [--jobs 800] [--rpm 100] [--window-ms 1000] [--concurrency 96] [--submitters 16]`
 *
 * The jobs service as deployed (its own process) in front of the router and
 * its peers (in this process, production start()), NATS with JetStream and
 * the simulator enforcing `--rpm` per `--window-ms` (time-scaled minutes).
 * Submits `--jobs` batch jobs as fast as `--submitters` concurrent callers
 * can (at the default, 10× what the limiter admits per window), then waits
 * for the queue to drain. Reports:
 * - Submit latency p50/p99 (while the queue drains),
 * - jobs/s drained against the admitted rate (rpm × headroom per window):
 *   one window over the mean gap between each finish and the one a window's
 *   worth of jobs before it (see drainUtilisation),
 * - the queue's CPU per job: user+system time of the jobs process and of
 *   nats-server over the run (from /proc), divided by the jobs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fromBinary } from '@bufbuild/protobuf';
import { JobEventSchema, JobState, Priority, Role, type Job } from '@switchyard/contracts';
import { createNatsEventBus } from '@switchyard/nats';
import { sleep } from '@switchyard/util';
import { auth, drainUtilisation, startJobsStack } from '../test/stack';

const arg = (flag: string, fallback: number) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const JOBS = arg('--jobs', 800);
const RPM = arg('--rpm', 100);
const WINDOW_MS = arg('--window-ms', 1000);
const CONCURRENCY = arg('--concurrency', 96);
const SUBMITTERS = arg('--submitters', 16);
const HEADROOM = 0.8;
const PER_WINDOW = RPM * HEADROOM;
const TICKS_PER_SECOND = 100;

/** user+system CPU ms of a process, from /proc/<pid>/stat. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000;
}

/** The nats-server listening on `port` (the test helper does not expose its pid). */
function natsPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('nats-server') && argv.includes(String(port))) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

async function main(): Promise<void> {
  const stack = await startJobsStack({
    rpm: RPM,
    windowMs: WINDOW_MS,
    headroom: HEADROOM,
    latencyMs: 0,
    jobsEnv: { JOBS_CONCURRENCY: String(CONCURRENCY), JOBS_POLL_MS: '100', JOBS_MAX_QUEUED_PER_TENANT: String(JOBS * 2), LOG_LEVEL: 'warn' },
  });
  try {
    const { client, process: jobsProcess } = await stack.spawnJobs();
    const nats = natsPid(stack.nats.port);
    const finals = new Set<string>();
    const events = await createNatsEventBus({ url: stack.nats.url, name: 'jobs-bench' });
    await events.subscribe('switchyard.job.acme.*', (msg) => {
      const event = fromBinary(JobEventSchema, msg.data);
      if (event.state !== JobState.QUEUED && event.state !== JobState.RUNNING) finals.add(event.jobId);
    });
    const cpu0 = { jobs: cpuMs(jobsProcess.pid), nats: nats ? cpuMs(nats) : NaN };
    const latencies: number[] = [];
    const ids: string[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SUBMITTERS }, async () => {
        while (next < JOBS) {
          const i = next++;
          const start = performance.now();
          const res = await client.submit(
            { request: { route: 'jobs', messages: [{ role: Role.USER, content: `bench ${i}` }], params: { maxTokens: 8 } }, priority: Priority.BATCH, expiresInMs: 600_000n },
            auth('acme'),
          );
          latencies.push(performance.now() - start);
          ids.push(res.job!.jobId);
        }
      }),
    );
    const submitMs = performance.now() - t0;

    // Wait on the job events (no polling load on the service while it drains).
    while (finals.size < JOBS) await sleep(100);
    const cpu1 = { jobs: cpuMs(jobsProcess.pid), nats: nats ? cpuMs(nats) : NaN };
    await events.close();
    const wanted = new Set(ids);
    const jobs: Job[] = [];
    let pageToken = '';
    do {
      const page = await client.listJobs({ pageSize: 500, pageToken }, auth('acme'));
      jobs.push(...page.jobs.filter((j) => wanted.has(j.jobId)));
      pageToken = page.nextPageToken;
    } while (pageToken);
    const counters = (await stack.sim.counters())[stack.model];

    const utilisation = drainUtilisation(jobs.map((j) => Number(j.finishedUnixMs)), PER_WINDOW, WINDOW_MS);
    const drainedPerSecond = ((utilisation * PER_WINDOW) / WINDOW_MS) * 1000;
    const admittedPerSecond = (PER_WINDOW / WINDOW_MS) * 1000;
    const sorted = [...latencies].sort((a, b) => a - b);
    const failed = jobs.filter((j) => j.state !== JobState.SUCCEEDED).length;
    console.log(`\njobs bench: ${JOBS} batch jobs, provider limit ${RPM} per ${WINDOW_MS} ms window, headroom ${HEADROOM}, JOBS_CONCURRENCY ${CONCURRENCY}, ${SUBMITTERS} submitters\n`);
    console.log('| measure | value |');
    console.log('|---|---|');
    console.log(`| Submit latency p50 / p99 | ${quantile(sorted, 0.5).toFixed(2)} ms / ${quantile(sorted, 0.99).toFixed(2)} ms |`);
    console.log(`| Submit throughput | ${((JOBS / submitMs) * 1000).toFixed(0)} jobs/s |`);
    console.log(`| drained | ${drainedPerSecond.toFixed(1)} jobs/s against ${admittedPerSecond.toFixed(1)} admitted/s (utilisation ${((drainedPerSecond / admittedPerSecond) * 100).toFixed(1)} %) |`);
    console.log(`| jobs not succeeded | ${failed} |`);
    console.log(`| upstream calls / 429s | ${counters?.received ?? 0} / ${counters?.byStatus['429'] ?? 0} |`);
    console.log(`| CPU per job: jobs process | ${((cpu1.jobs - cpu0.jobs) / JOBS).toFixed(2)} ms |`);
    console.log(`| CPU per job: nats-server | ${((cpu1.nats - cpu0.nats) / JOBS).toFixed(2)} ms |`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);

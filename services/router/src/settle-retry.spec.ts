import { status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import { createSettleRetry } from './settle-retry';

const unavailable = () => Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: status.UNAVAILABLE });

/** A sleep that only advances the manual clock, recording each backoff. */
function harness(windowMs: number, rng = () => 1) {
  const clock = new ManualClock(0);
  const sleeps: number[] = [];
  const retry = createSettleRetry({
    clock,
    rng,
    windowMs,
    baseDelayMs: 50,
    maxDelayMs: 2_000,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
    },
  });
  return { clock, sleeps, retry };
}

/** An attempt that fails `failures` times (UNAVAILABLE), then answers. */
function flaky(failures: number) {
  let calls = 0;
  const attempt = async () => {
    calls++;
    if (calls <= failures) throw unavailable();
    return 'committed';
  };
  return { attempt, calls: () => calls };
}

describe('settle retry', () => {
  it('retries a failed commit with doubling backoff until a replica answers', async () => {
    const { retry, sleeps } = harness(60_000);
    const peer = flaky(4);
    await expect(retry.run(peer.attempt)).resolves.toBe('committed');
    expect(peer.calls()).toBe(5);
    expect(sleeps).toEqual([50, 100, 200, 400]);
  });

  it('caps the backoff and jitters it over [half, whole] of it, so even an rng stuck at 0 cannot make it spin', async () => {
    const half = harness(600_000, () => 0.5);
    await half.retry.run(flaky(8).attempt);
    expect(half.sleeps).toEqual([38, 75, 150, 300, 600, 1_200, 1_500, 1_500]);
    const zero = harness(600_000, () => 0);
    await zero.retry.run(flaky(8).attempt);
    expect(zero.sleeps).toEqual([25, 50, 100, 200, 400, 800, 1_000, 1_000]);
  });

  it('gives up with the last error once the next try would fall past the window (the reservation has expired by then)', async () => {
    const { retry, sleeps, clock } = harness(1_000);
    const peer = flaky(Number.POSITIVE_INFINITY);
    await expect(retry.run(peer.attempt)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // 50 + 100 + 200 + 400 = 750 ms slept; the next 800 ms backoff would end past 1 000.
    expect(sleeps).toEqual([50, 100, 200, 400]);
    expect(peer.calls()).toBe(5);
    expect(clock.now()).toBe(750);
  });

  it('does not retry what no replica can accept (a bad request, an unknown tenant)', async () => {
    const { retry, sleeps } = harness(60_000);
    let calls = 0;
    const invalid = async () => {
      calls++;
      throw Object.assign(new Error('3 INVALID_ARGUMENT: reservation_id: is required'), { code: status.INVALID_ARGUMENT });
    };
    await expect(retry.run(invalid)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('retries a deadline (the commit may have landed; a repeat is idempotent by reservation id)', async () => {
    const { retry } = harness(60_000);
    let calls = 0;
    const slow = async () => {
      if (++calls === 1) throw Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: status.DEADLINE_EXCEEDED });
      return 'ok';
    };
    await expect(retry.run(slow)).resolves.toBe('ok');
    expect(calls).toBe(2);
  });

  it('stops retrying at shutdown: a backoff in progress ends and the last error is returned', async () => {
    const clock = new ManualClock(0);
    let wake: () => void = () => {};
    const retry = createSettleRetry({
      clock,
      rng: () => 1,
      windowMs: 60_000,
      sleep: (_ms, signal) => new Promise<void>((resolve, reject) => {
        wake = resolve;
        signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      }),
    });
    const peer = flaky(Number.POSITIVE_INFINITY);
    const running = retry.run(peer.attempt);
    await new Promise((r) => setImmediate(r));
    expect(peer.calls()).toBe(1);
    retry.stop();
    await expect(running).rejects.toMatchObject({ code: status.UNAVAILABLE });
    wake();
    expect(peer.calls()).toBe(1);
  });
});

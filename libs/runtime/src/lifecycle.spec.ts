import { createLifecycle } from './lifecycle';

describe('createLifecycle', () => {
  it('runs cleanups once, last registered first, however often stop is called', async () => {
    const ran: string[] = [];
    const life = createLifecycle();
    life.onStop('redis', () => void ran.push('redis'));
    life.onStop('bus', async () => void ran.push('bus'));
    life.onStop('server', () => void ran.push('server'));
    const [a, b] = [life.stop(), life.stop()];
    expect(a).toBe(b);
    await a;
    await life.stop();
    expect(ran).toEqual(['server', 'bus', 'redis']);
  });

  it('logs a failing cleanup and still runs the rest', async () => {
    const ran: string[] = [];
    const warned: object[] = [];
    const life = createLifecycle({ warn: (obj) => void warned.push(obj) });
    life.onStop('store', () => void ran.push('store'));
    life.onStop('bus', () => Promise.reject(new Error('drain timed out')));
    await life.stop();
    expect(ran).toEqual(['store']);
    expect(warned).toEqual([expect.objectContaining({ step: 'bus' })]);
  });

  it('stops what a failed start-up had started, then rethrows its error', async () => {
    const ran: string[] = [];
    const life = createLifecycle();
    const failure = new Error('grpc port in use');
    await expect(
      life.starting(async () => {
        life.onStop('redis', () => void ran.push('redis'));
        life.onStop('bus', () => void ran.push('bus'));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(ran).toEqual(['bus', 'redis']);
  });

  it('refuses a cleanup registered after stop began', async () => {
    const life = createLifecycle();
    await life.stop();
    expect(() => life.onStop('late', () => undefined)).toThrow('"late" registered after stop');
  });
});

import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { counter, gauge, serveMetrics, startWithMetrics } from './metrics';

const spec = { name: 'demo_calls_total', help: 'calls', labels: ['route'] as const };

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

describe('serveMetrics', () => {
  it('serves the registry in the Prometheus text format on the bound port (0 = any free port)', async () => {
    const registry = new Registry();
    counter(registry, spec).inc({ route: 'chat' }, 3);
    gauge(registry, { name: 'demo_open', help: 'open', labels: [] }, (g) => g.set(1));
    const endpoint = await serveMetrics({ port: 0, host: '127.0.0.1', registry });
    try {
      expect(endpoint.port).toBeGreaterThan(0);
      const { status, text } = await scrape(endpoint.port);
      expect(status).toBe(200);
      expect(text).toContain('demo_calls_total{route="chat"} 3');
      expect(text).toContain('demo_open 1');
      expect((await scrape(endpoint.port, '/other')).status).toBe(404);
    } finally {
      await endpoint.close();
    }
  });

  it('refuses to start on a taken port with an error naming the variable and the port', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as AddressInfo).port;
    try {
      await expect(serveMetrics({ port: taken, host: '127.0.0.1', registry: new Registry() })).rejects.toThrow(
        `METRICS_PORT ${taken}: cannot serve /metrics on 127.0.0.1:${taken}: the port is already in use`,
      );
      const started = jest.fn();
      await expect(startWithMetrics({ port: taken, host: '127.0.0.1', registry: new Registry() }, started)).rejects.toThrow('METRICS_PORT');
      expect(started).not.toHaveBeenCalled();
    } finally {
      squatter.close();
    }
  });

  it('startWithMetrics closes the endpoint when the service stops or fails to start', async () => {
    const registry = new Registry();
    const stop = jest.fn(async () => undefined);
    const service = await startWithMetrics({ port: 0, host: '127.0.0.1', registry }, async () => ({ port: 1, stop }));
    expect((await scrape(service.metricsPort)).status).toBe(200);
    await service.stop();
    expect(stop).toHaveBeenCalled();
    await expect(scrape(service.metricsPort)).rejects.toThrow();
    await expect(
      startWithMetrics({ port: 0, host: '127.0.0.1', registry }, async () => {
        throw new Error('config broke');
      }),
    ).rejects.toThrow('config broke');
  });
});

describe('metric helpers', () => {
  it('return the instrument already registered under a name, and refuse other labels', () => {
    const registry = new Registry();
    expect(counter(registry, spec)).toBe(counter(registry, spec));
    expect(() => counter(registry, { ...spec, labels: ['tenant'] })).toThrow('metric demo_calls_total: already registered with labels [route]');
  });
});

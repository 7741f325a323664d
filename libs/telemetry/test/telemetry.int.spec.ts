import { spawnProcess, startOtlpReceiver, startRedis, type OtlpReceiver, type ServerHandle } from '@switchyard/testing';
import { join } from 'node:path';

describe('startTelemetry in a real process', () => {
  let receiver: OtlpReceiver;
  let redis: ServerHandle;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis({ reuseExternal: true });
  });
  afterAll(async () => {
    await receiver?.stop();
    await redis?.stop();
  });

  it('exports gRPC client + server, Redis and provider fetch spans of one call in one trace', async () => {
    const child = await spawnProcess({
      entry: join(__dirname, 'fixtures/traced-service.ts'),
      env: { ...receiver.env, REDIS_URL: redis.url, FIXTURE_SERVICE: 'fixture-svc' },
    });
    expect(await child.exited).toBe(0);
    expect(child.lines.join('\n')).toContain('"reply":"ping:');

    const spans = await receiver.waitForSpans(
      (all) =>
        ['CLIENT', 'SERVER'].every((kind) => all.some((s) => s.kind === kind && s.name.includes('Echo/Ping'))) &&
        all.some((s) => s.scope.includes('undici')),
      10_000,
    );
    const client = spans.find((s) => s.kind === 'CLIENT' && s.name.includes('Echo/Ping'))!;
    const server = spans.find((s) => s.kind === 'SERVER' && s.name.includes('Echo/Ping'))!;
    const redisSpan = spans.find((s) => s.scope.includes('ioredis') && s.name === 'incr');
    expect(redisSpan).toBeDefined();
    expect(server.traceId).toBe(client.traceId);
    expect(server.parentSpanId).toBe(client.spanId);
    expect(redisSpan!.traceId).toBe(client.traceId);
    expect(redisSpan!.parentSpanId).toBe(server.spanId);
    expect(redisSpan!.kind).toBe('CLIENT');
    // Only the command and key: values may hold completions.
    expect(redisSpan!.attributes['db.statement'] ?? redisSpan!.attributes['db.query.text']).toBe('incr fixture:pings');
    expect(server.serviceName).toBe('fixture-svc');
    const fetchSpan = spans.find((s) => s.scope.includes('undici') && s.kind === 'CLIENT');
    expect(fetchSpan).toMatchObject({ traceId: client.traceId, parentSpanId: server.spanId });
  }, 30_000);

  it('exports only the call: probes, unparented Redis reads, heartbeat publishes and /metrics scrapes start no trace', async () => {
    receiver.clear();
    const child = await spawnProcess({
      entry: join(__dirname, 'fixtures/traced-service.ts'),
      env: { ...receiver.env, REDIS_URL: redis.url, FIXTURE_SERVICE: 'fixture-quiet', FIXTURE_HOUSEKEEPING: '1' },
    });
    expect(await child.exited).toBe(0);
    // The process flushed on shutdown, so everything it would ever export has arrived once its call's spans have.
    const spans = await receiver.waitForSpans((all) => all.some((s) => s.name === 'fixture call'), 10_000);
    const root = spans.find((s) => s.name === 'fixture call')!;
    expect(root.parentSpanId).toBe('');
    expect([...new Set(spans.map((s) => s.traceId))]).toEqual([root.traceId]);
    // The call itself is whole: gRPC client and server, Redis, and fetch with the provider's HTTP server span, under the marked root.
    expect(spans.map((s) => s.kind).sort()).toEqual(['CLIENT', 'CLIENT', 'CLIENT', 'INTERNAL', 'SERVER', 'SERVER']);
  }, 30_000);

  /** The OpenTelemetry packages the fixture process reported having loaded. */
  const otelPackages = (lines: string[]): string[] =>
    (JSON.parse(lines.find((l) => l.includes('"otel-packages"'))!) as { packages: string[] }).packages;

  it('loads only the exporter the environment chooses, and no NodeSDK', async () => {
    receiver.clear();
    const child = await spawnProcess({
      entry: join(__dirname, 'fixtures/traced-service.ts'),
      env: { ...receiver.env, REDIS_URL: redis.url, FIXTURE_SERVICE: 'fixture-lean' },
    });
    expect(await child.exited).toBe(0);
    await receiver.waitForSpans((all) => all.some((s) => s.name === 'fixture call'), 10_000);
    const loaded = otelPackages(child.lines);
    // The receiver speaks OTLP/HTTP JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json).
    expect(loaded).toContain('@opentelemetry/exporter-trace-otlp-http');
    for (const unused of ['@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/exporter-trace-otlp-grpc', '@opentelemetry/sdk-node']) {
      expect(loaded).not.toContain(unused);
    }
  }, 30_000);

  it('patches nothing and exports nothing when OTEL_SDK_DISABLED=true, and the call still works', async () => {
    receiver.clear();
    const child = await spawnProcess({
      entry: join(__dirname, 'fixtures/traced-service.ts'),
      env: { ...receiver.env, OTEL_SDK_DISABLED: 'true', REDIS_URL: redis.url },
    });
    expect(await child.exited).toBe(0);
    expect(child.lines.join('\n')).toContain('"reply":"ping:');
    expect(receiver.spans()).toEqual([]);
    expect(otelPackages(child.lines).filter((p) => p.startsWith('@opentelemetry/exporter-'))).toEqual([]);
  }, 30_000);

  it('exports nothing when OTEL_TRACES_EXPORTER=none', async () => {
    receiver.clear();
    const child = await spawnProcess({
      entry: join(__dirname, 'fixtures/traced-service.ts'),
      env: { ...receiver.env, OTEL_TRACES_EXPORTER: 'none', REDIS_URL: redis.url },
    });
    expect(await child.exited).toBe(0);
    expect(receiver.spans()).toEqual([]);
  }, 30_000);
});

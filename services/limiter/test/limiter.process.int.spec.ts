import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyKind, LimiterService } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { type ServerHandle, spawnProcess, startNats, startRedis } from '@switchyard/testing';

const CONFIG = `
deployments:
  d1:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 10 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  d2:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { tpm: 1000 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes: {}
tenants: {}
`;

/** The production entry point: readiness line even at LOG_LEVEL=warn, serves, exits 0 on SIGTERM. */
describe('limiter process (main.ts)', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let dir: string;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    dir = mkdtempSync(join(tmpdir(), 'limiter-proc-'));
    writeFileSync(join(dir, 'switchyard.yaml'), CONFIG);
  });
  afterAll(async () => {
    await Promise.all([nats?.stop(), redis?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('announces its port, admits with headroom 0.8 (RPM 10 → 8), and stops cleanly on SIGTERM', async () => {
    const proc = await spawnProcess({
      entry: join(__dirname, '../src/main.ts'),
      env: {
        SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        GRPC_HOST: '127.0.0.1',
        GRPC_PORT: '0',
        LOG_LEVEL: 'warn',
        OTEL_SDK_DISABLED: 'true',
      },
    });
    const client = createClient(LimiterService, `127.0.0.1:${proc.port}`, { defaultDeadlineMs: 5_000 });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () => client.acquire({ keys: [{ kind: KeyKind.DEPLOYMENT, id: 'd1' }] })),
      );
      expect(results.filter((r) => r.granted)).toHaveLength(8);
    } finally {
      client.close();
    }
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('keeps the tokens of a reservation charged after the replica that granted it is killed and the reservation expires unsettled', async () => {
    const env = {
      SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
    };
    const spawnReplica = () => spawnProcess({ entry: join(__dirname, '../src/main.ts'), env, readyTimeoutMs: 60_000 });
    const [a, b] = await Promise.all([spawnReplica(), spawnReplica()]);
    const viaA = createClient(LimiterService, `127.0.0.1:${a.port}`, { defaultDeadlineMs: 5_000 });
    const viaB = createClient(LimiterService, `127.0.0.1:${b.port}`, { defaultDeadlineMs: 5_000 });
    const key = [{ kind: KeyKind.DEPLOYMENT, id: 'd2' }];
    try {
      // TPM 1000 with headroom 0.8: 800 tokens a minute. The call that took 500 may have run upstream.
      expect((await viaA.acquire({ keys: key, tokens: 500, reservationTtlMs: 300 })).granted).toBe(true);
      await a.kill();
      viaA.close();
      // Its Settle died with replica A; past the reservation's ttl the tokens still count.
      await new Promise((r) => setTimeout(r, 600));
      expect(await viaB.acquire({ keys: key, tokens: 301 })).toMatchObject({ granted: false });
      expect((await viaB.acquire({ keys: key, tokens: 300 })).granted).toBe(true);
    } finally {
      viaB.close();
      await Promise.all([a.stop('SIGKILL', 0), b.stop('SIGTERM')]);
    }
  }, 120_000);
});

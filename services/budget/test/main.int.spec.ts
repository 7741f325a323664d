import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { BudgetService } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { spawnProcess, startNats, startRedis, type ServerHandle } from '@switchyard/testing';

/** The process entry point: reads env + config file, announces readiness, serves, stops on SIGTERM. */
describe('budget main.ts as a process', () => {
  let redis: ServerHandle;
  let nats: ServerHandle;
  beforeAll(async () => {
    [redis, nats] = await Promise.all([startRedis(), startNats()]);
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), nats?.stop()]);
  });

  it('starts from SWITCHYARD_CONFIG, serves GetBudget and exits cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-budget-'));
    const path = join(dir, 'switchyard.yaml');
    writeFileSync(
      path,
      `deployments:
  d1: { provider: openai, baseUrl: "http://127.0.0.1:9/v1", model: m, apiKey: "env:X", price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 } }
routes:
  chat: { candidates: [{ deployment: d1 }] }
tenants:
  acme: { apiKeys: [{ id: a, sha256: "${hashApiKey('k')}" }], budgets: [{ period: month, limitUsd: 5 }] }
`,
    );
    const proc = await spawnProcess({
      entry: join(__dirname, '../src/main.ts'),
      env: { SWITCHYARD_CONFIG: path, REDIS_URL: redis.url, NATS_URL: nats.url, GRPC_PORT: '0', GRPC_HOST: '127.0.0.1', OTEL_SDK_DISABLED: 'true' },
      readyTimeoutMs: 60_000,
    });
    const client = createClient(BudgetService, `127.0.0.1:${proc.port}`, { defaultDeadlineMs: 5_000 });
    try {
      const { caps } = await client.getBudget({ tenant: 'acme' });
      expect(caps.map((c) => c.limitMicros)).toEqual([5_000_000n]);
    } finally {
      client.close();
      expect(await proc.stop()).toBe(0);
    }
  }, 90_000);
});

/**
 * Internal services are reachable by anyone on their network unless they
 * authenticate callers. Each service's production entry point (main.ts, its
 * own process) must refuse to serve the network without the internal token,
 * and with tokens set must tell the router's credential from the operator's:
 * only the operator token may change state by hand.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import {
  BreakerService,
  BudgetService,
  CacheService,
  CircuitState,
  Health,
  HealthCheckResponse_ServingStatus,
  KeyKind,
  LimiterService,
} from '@switchyard/contracts';
import { createClient, INTERNAL_TOKEN_METADATA, parseGrpcError, status } from '@switchyard/grpc';
import { spawnProcess, startNats, startRedis, type ServerHandle, type SpawnedProcess } from '@switchyard/testing';

const ROOT = resolve(__dirname, '../..');
const INTERNAL = randomBytes(24).toString('hex');
const OPERATOR = randomBytes(24).toString('hex');

type Metadata = Record<string, string>;
type Call = (metadata: Metadata) => Promise<unknown>;

/** The calls of one service, grouped by who may make them. */
interface Surface {
  /** Per-call RPCs only the router makes. */
  router: Record<string, Call>;
  /** State-changing operator RPCs: the operator token only. */
  operator: Record<string, Call>;
  /** Read-only views: either token. */
  views: Record<string, Call>;
  close(): void;
}

const DEADLINE = { defaultDeadlineMs: 10_000 };

const SERVICES: Record<'limiter' | 'breaker' | 'budget' | 'cache', (address: string) => Surface> = {
  limiter(address) {
    const c = createClient(LimiterService, address, DEADLINE);
    return {
      router: { Settle: (metadata) => c.settle({ reservationId: 'no-such-reservation' }, { metadata }) },
      operator: { ClearUnavailable: (metadata) => c.clearUnavailable({ deployment: { provider: 'openai', deployment: 'd1' } }, { metadata }) },
      views: { GetQuota: (metadata) => c.getQuota({ key: { kind: KeyKind.DEPLOYMENT, id: 'd1' } }, { metadata }) },
      close: () => c.close(),
    };
  },
  breaker(address) {
    const c = createClient(BreakerService, address, DEADLINE);
    return {
      router: { AcquireProbe: (metadata) => c.acquireProbe({ deployment: 'd1', holderId: 'auth-test' }, { metadata }) },
      operator: {
        ForceState: (metadata) => c.forceState({ deployment: 'd1', state: CircuitState.CLOSED, release: true, reason: 'auth test' }, { metadata }),
      },
      views: {
        GetHealth: (metadata) => c.getHealth({ deployment: 'd1' }, { metadata }),
        ListHealth: (metadata) => c.listHealth({}, { metadata }),
      },
      close: () => c.close(),
    };
  },
  budget(address) {
    const c = createClient(BudgetService, address, DEADLINE);
    return {
      router: { Release: (metadata) => c.release({ reservationId: 'no-such-reservation' }, { metadata }) },
      operator: {},
      views: { GetBudget: (metadata) => c.getBudget({ tenant: 'acme' }, { metadata }) },
      close: () => c.close(),
    };
  },
  cache(address) {
    const c = createClient(CacheService, address, DEADLINE);
    return {
      router: { Lookup: (metadata) => c.lookup({ tenant: 'acme', key: 'k' }, { metadata }) },
      operator: { Invalidate: (metadata) => c.invalidate({ tenant: 'acme', target: { case: 'prefix', value: '' } }, { metadata }) },
      views: {},
      close: () => c.close(),
    };
  },
};

/** OK, or the status code the call failed with. */
async function codeOf(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
    return { code: status.OK, message: '' };
  } catch (err) {
    const { code, message } = parseGrpcError(err);
    return { code, message };
  }
}

const token = (value: string): Metadata => ({ [INTERNAL_TOKEN_METADATA]: value });

describe('internal services: secure by default (each main.ts as its own process)', () => {
  let redis: ServerHandle;
  let nats: ServerHandle;
  let configPath: string;

  beforeAll(async () => {
    [redis, nats] = await Promise.all([startRedis(), startNats({ jetstream: true })]);
    configPath = join(mkdtempSync(join(tmpdir(), 'sy-auth-')), 'switchyard.yaml');
    writeFileSync(
      configPath,
      `deployments:
  d1: { provider: openai, baseUrl: "http://127.0.0.1:9/v1", model: m, apiKey: "env:X", limits: { rpm: 100 }, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 } }
routes:
  chat: { candidates: [{ deployment: d1 }] }
tenants:
  acme: { apiKeys: [{ id: a, sha256: "${hashApiKey('k')}" }], budgets: [{ period: month, limitUsd: 5 }] }
`,
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all([redis?.stop(), nats?.stop()]);
  });

  const baseEnv = () => ({
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    SWITCHYARD_CONFIG: configPath,
    GRPC_PORT: '0',
    LOG_LEVEL: 'warn',
    OTEL_SDK_DISABLED: 'true',
    // Whatever the test runner's own environment holds: this test decides.
    SWITCHYARD_INTERNAL_TOKEN: undefined,
    SWITCHYARD_OPERATOR_TOKEN: undefined,
  });

  describe.each(Object.keys(SERVICES) as (keyof typeof SERVICES)[])('%s', (name) => {
    const entry = join(ROOT, `services/${name}/src/main.ts`);

    it.each(['0.0.0.0', '::'])('refuses to start bound to %s without SWITCHYARD_INTERNAL_TOKEN, and says how to fix it', async (host) => {
      const failure = await spawnProcess({ entry, env: { ...baseEnv(), GRPC_HOST: host }, readyTimeoutMs: 60_000 }).then(
        async (proc) => {
          await proc.stop('SIGKILL');
          return undefined;
        },
        (err: Error) => err.message,
      );
      expect(failure).toMatch(/exited \(code 1, signal null\) before it was ready/);
      expect(failure).toContain(`GRPC_HOST ${host} is not a loopback address`);
      expect(failure).toContain('set SWITCHYARD_INTERNAL_TOKEN');
      expect(failure).toContain('GRPC_HOST=127.0.0.1');
    }, 90_000);

    describe('with both tokens, bound to 0.0.0.0', () => {
      let proc: SpawnedProcess;
      let surface: Surface;
      let health: ReturnType<typeof createClient<typeof Health.method>>;

      beforeAll(async () => {
        proc = await spawnProcess({
          entry,
          env: { ...baseEnv(), GRPC_HOST: '0.0.0.0', SWITCHYARD_INTERNAL_TOKEN: INTERNAL, SWITCHYARD_OPERATOR_TOKEN: OPERATOR },
          readyTimeoutMs: 60_000,
        });
        surface = SERVICES[name](`127.0.0.1:${proc.port}`);
        health = createClient(Health, `127.0.0.1:${proc.port}`, DEADLINE);
      }, 90_000);

      afterAll(async () => {
        surface?.close();
        health?.close();
        expect(await proc?.stop()).toBe(0);
      }, 30_000);

      const all = () => ({ ...surface.router, ...surface.operator, ...surface.views });

      it('answers every call without a token, or with a wrong one, UNAUTHENTICATED', async () => {
        for (const [rpc, call] of Object.entries(all())) {
          for (const metadata of [{}, token('wrong'), token(`${INTERNAL}x`), token(INTERNAL.slice(1))]) {
            expect([rpc, (await codeOf(call(metadata))).code]).toEqual([rpc, status.UNAUTHENTICATED]);
          }
        }
      });

      it("answers a state-changing operator call with the router's token PERMISSION_DENIED, and lets the operator token through", async () => {
        for (const [rpc, call] of Object.entries(surface.operator)) {
          const denied = await codeOf(call(token(INTERNAL)));
          expect([rpc, denied.code]).toEqual([rpc, status.PERMISSION_DENIED]);
          expect(denied.message).toContain('operator token');
          expect([rpc, (await codeOf(call(token(OPERATOR)))).code]).toEqual([rpc, status.OK]);
        }
      });

      it('serves the read-only views to either token', async () => {
        for (const [rpc, call] of Object.entries(surface.views)) {
          expect([rpc, 'router', (await codeOf(call(token(INTERNAL)))).code]).toEqual([rpc, 'router', status.OK]);
          expect([rpc, 'operator', (await codeOf(call(token(OPERATOR)))).code]).toEqual([rpc, 'operator', status.OK]);
        }
      });

      it("keeps the router's per-call RPCs to the router's token", async () => {
        for (const [rpc, call] of Object.entries(surface.router)) {
          expect([rpc, (await codeOf(call(token(OPERATOR)))).code]).toEqual([rpc, status.PERMISSION_DENIED]);
          const { code } = await codeOf(call(token(INTERNAL)));
          expect([rpc, code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED]).toEqual([rpc, false]);
        }
      });

      it('leaves the health service open for probes', async () => {
        expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      });
    });
  });
});

import { create, toBinary } from '@bufbuild/protobuf';
import { CircuitState, DeploymentHealthSchema, KeyKind, LimitKind, QuotaStateSchema } from '@switchyard/contracts';
import { createMemoryEventBus, KV_BUCKETS, type EventBus } from '@switchyard/nats';
import { startHealthReplica } from './health-replica';
import { startQuotaReplica } from './quota-replica';

const quiet = { warn() {} };

function health(deployment: string, state: CircuitState, epoch: number, openUntil = 0) {
  return toBinary(
    DeploymentHealthSchema,
    create(DeploymentHealthSchema, { ref: { provider: 'openai', deployment }, state, epoch: BigInt(epoch), openUntilUnixMs: BigInt(openUntil) }),
  );
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe('health replica', () => {
  let bus: EventBus;
  beforeEach(() => {
    bus = createMemoryEventBus({ name: 'router-test' });
  });
  afterEach(() => bus.close());

  it('starts from the current KV state, then follows every change', async () => {
    const kv = await bus.kv(KV_BUCKETS.health);
    await kv.put('a', health('a', CircuitState.OPEN, 3, 5000));
    const replica = await startHealthReplica(bus, quiet);
    expect(replica.get('a')).toMatchObject({ circuit: 'open', openUntil: 5000 });
    await kv.put('a', health('a', CircuitState.CLOSED, 4));
    await until(() => replica.get('a')?.circuit === 'closed');
    expect(replica.get('a')?.circuit).toBe('closed');
    await replica.stop();
  });

  it('ignores older epochs (reordering) and undecodable values', async () => {
    const kv = await bus.kv(KV_BUCKETS.health);
    const warnings: object[] = [];
    const replica = await startHealthReplica(bus, { warn: (o) => warnings.push(o) });
    await kv.put('openai.b', health('b', CircuitState.OPEN, 7));
    await until(() => replica.get('b') !== undefined);
    await kv.put('openai.b', health('b', CircuitState.CLOSED, 6));
    await kv.put('garbage', new Uint8Array([0xff, 0xff, 0xff]));
    await until(() => warnings.length > 0);
    expect(replica.get('b')?.circuit).toBe('open');
    expect(warnings).toHaveLength(1);
    await replica.stop();
  });
});

describe('quota replica', () => {
  let bus: EventBus;
  beforeEach(() => {
    bus = createMemoryEventBus({ name: 'router-test' });
  });
  afterEach(() => bus.close());

  it('tracks cooldowns, exhausted windows and unavailability of deployment keys only', async () => {
    const kv = await bus.kv(KV_BUCKETS.quota);
    const replica = await startQuotaReplica(bus, quiet);
    await kv.put(
      'openai.a',
      toBinary(QuotaStateSchema, create(QuotaStateSchema, { key: { kind: KeyKind.DEPLOYMENT, id: 'a' }, cooldownUntilUnixMs: 9000n, epoch: 1n })),
    );
    await kv.put(
      'openai.b',
      toBinary(
        QuotaStateSchema,
        create(QuotaStateSchema, {
          key: { kind: KeyKind.DEPLOYMENT, id: 'b' },
          limits: [{ kind: LimitKind.RPM, limit: 10, used: 10, remaining: 0, resetsAtUnixMs: 4000n }],
          unavailable: true,
          epoch: 1n,
        }),
      ),
    );
    await kv.put(
      'openai.c',
      toBinary(
        QuotaStateSchema,
        create(QuotaStateSchema, {
          key: { kind: KeyKind.DEPLOYMENT, id: 'c' },
          limits: [
            { kind: LimitKind.TPM, limit: 100, used: 50, remaining: 50, resetsAtUnixMs: 3000n },
            { kind: LimitKind.TPD, limit: 1000, used: 1000, remaining: 0, resetsAtUnixMs: 7000n },
          ],
          epoch: 1n,
        }),
      ),
    );
    await kv.put('tenant.t', toBinary(QuotaStateSchema, create(QuotaStateSchema, { key: { kind: KeyKind.TENANT, id: 't' }, cooldownUntilUnixMs: 9000n, epoch: 1n })));
    await until(() => replica.get('b') !== undefined);
    expect(replica.get('a')).toMatchObject({ cooldownUntil: 9000, unavailable: false });
    expect(replica.get('b')).toMatchObject({ unavailable: true, exhaustedUntil: 4000, exhaustedLimit: 'RPM' });
    await until(() => replica.get('c') !== undefined);
    expect(replica.get('c')).toMatchObject({ exhaustedUntil: 7000, exhaustedLimit: 'TPD' });
    expect(replica.get('t')).toBeUndefined();
    await kv.delete('openai.a');
    await until(() => replica.get('a') === undefined);
    expect(replica.get('a')).toBeUndefined();
    await replica.stop();
  });
});

import { fromBinary } from '@bufbuild/protobuf';
import { CircuitState, DeploymentHealthSchema, HealthTransitionSchema } from '@switchyard/contracts';
import { KV_BUCKETS, createMemoryEventBus } from '@switchyard/nats';
import { type CircuitRecord, newCircuit } from '../domain/circuit';
import type { StoreStep } from '../domain/health-store';
import { ManualClock } from '@switchyard/util';
import { createHealthPublisher } from './health-publisher';
import { createMemoryHealthStore } from './memory-health-store';

const T = 1_700_000_000_000;
const step = (epoch: number, state: CircuitRecord['state'], withTransition = true): StoreStep => {
  const record: CircuitRecord = { ...newCircuit({ deployment: 'd1', provider: 'azure', model: 'm' }, T), state, epoch, openUntil: state === 'OPEN' ? T + 1000 : 0 };
  return {
    record,
    now: T,
    transition: withTransition
      ? { deployment: 'd1', from: 'CLOSED', to: state, reason: 'r', forced: false, epoch, openUntil: record.openUntil, failureRate: 1, at: T }
      : undefined,
  };
};

describe('health publisher', () => {
  it('publishes the transition on the deployment subject and writes DeploymentHealth to KV under the deployment id', async () => {
    const bus = createMemoryEventBus();
    const kv = await bus.kv(KV_BUCKETS.health);
    const got: { subject: string; data: Uint8Array }[] = [];
    await bus.subscribe('switchyard.health.>', (m) => void got.push(m));
    await createHealthPublisher({ bus, kv, logger: { warn() {} } }).transition(step(1, 'OPEN'));
    await new Promise((r) => setTimeout(r, 10));
    expect(got.map((m) => m.subject)).toEqual(['switchyard.health.azure.d1']);
    expect(fromBinary(HealthTransitionSchema, got[0].data)).toMatchObject({ from: CircuitState.CLOSED, to: CircuitState.OPEN, epoch: 1n });
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.OPEN, epoch: 1n, openUntilUnixMs: BigInt(T + 1000) });
    await bus.close();
  });

  it('never lets an older epoch overwrite a newer one in KV (writers racing out of order)', async () => {
    const bus = createMemoryEventBus();
    const kv = await bus.kv(KV_BUCKETS.health);
    const publisher = createHealthPublisher({ bus, kv, logger: { warn() {} } });
    await publisher.transition(step(3, 'CLOSED'));
    await publisher.transition(step(2, 'HALF_OPEN'));
    await publisher.state(step(1, 'OPEN', false));
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.CLOSED, epoch: 3n });
    await publisher.state(step(4, 'OPEN', false));
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.OPEN, epoch: 4n });
    await bus.close();
  });

  it('a store that lost its records (epochs from 0 again) is lifted above the bucket and heard; a store level with it is not', async () => {
    const bus = createMemoryEventBus();
    const kv = await bus.kv(KV_BUCKETS.health);
    // The bucket outlived the store: it holds CLOSED at epoch 9 from before.
    await createHealthPublisher({ bus, kv, logger: { warn() {} } }).state(step(9, 'CLOSED', false));
    const store = createMemoryHealthStore({ clock: new ManualClock(T) });
    const warnings: object[] = [];
    const publisher = createHealthPublisher({ bus, kv, logger: { warn: (o) => void warnings.push(o) }, raiseEpoch: (d, held) => store.raiseEpoch(d, held) });
    const id = { deployment: 'd1', provider: 'azure', model: 'm' };
    let opened: StoreStep | undefined;
    for (let i = 0; i < 5; i++) opened = await store.record(id, { errorClass: 'OVERLOADED', latencyMs: 5 });
    expect(opened!.transition).toMatchObject({ to: 'OPEN', epoch: 1 });
    await publisher.transition(opened!);
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.OPEN, epoch: 10n });
    expect(warnings).toEqual([expect.objectContaining({ deployment: 'd1', held: '9', epoch: 10 })]);
    // The store's next transition is newer than the bucket: written as it is.
    const forced = await store.force(id, { state: 'CLOSED', release: false, reason: 'test' });
    await publisher.transition(forced);
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.CLOSED, epoch: 11n });
    // An out-of-order older step while the store is level with the bucket: nothing changes.
    await publisher.state(step(10, 'OPEN', false));
    expect(fromBinary(DeploymentHealthSchema, (await kv.get('d1'))!.value)).toMatchObject({ state: CircuitState.CLOSED, epoch: 11n });
    expect((await store.observe('d1'))!.record.epoch).toBe(11);
    await bus.close();
  });
});

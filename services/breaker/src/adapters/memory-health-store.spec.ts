import { ManualClock } from '@switchyard/util';
import { healthStoreContract } from '../../test/health-store.contract';
import { createMemoryHealthStore } from './memory-health-store';

healthStoreContract('memory', async (policy) => {
  const clock = new ManualClock(1_700_000_000_000);
  return { store: createMemoryHealthStore({ policy, clock }), clock, close: async () => {} };
});

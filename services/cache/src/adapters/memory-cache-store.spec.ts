import { ManualClock } from '@switchyard/util';
import { cacheStoreContract } from '../../test/cache-store.contract';
import { createMemoryCacheStore } from './memory-cache-store';

cacheStoreContract('memory', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 21, 8, 30));
  return { store: createMemoryCacheStore({ clock }), advance: (ms) => clock.advance(ms) };
});

import { ManualClock } from '@switchyard/util';
import { quotaStoreContract } from '../../test/quota-store.contract';
import { createMemoryQuotaStore } from './memory-quota-store';

quotaStoreContract('memory', async () => {
  const clock = new ManualClock(1_700_000_000_000);
  return {
    // The real day window (a minute's buckets): the manual clock crosses it at once.
    store: createMemoryQuotaStore({ clock }),
    advance: async (ms) => clock.advance(ms),
    slackMs: 0,
    day: { windowMs: 86_400_000, bucketMs: 60_000 },
    close: async () => {},
  };
});

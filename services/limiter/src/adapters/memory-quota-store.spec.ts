import { ManualClock } from '@switchyard/util';
import { quotaStoreContract } from '../../test/quota-store.contract';
import { createMemoryQuotaStore } from './memory-quota-store';

quotaStoreContract('memory', async () => {
  const clock = new ManualClock(1_700_000_000_000);
  return {
    store: createMemoryQuotaStore({ clock }),
    advance: async (ms) => clock.advance(ms),
    slackMs: 0,
    close: async () => {},
  };
});

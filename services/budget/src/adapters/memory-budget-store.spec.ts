import { ManualClock } from '@switchyard/util';
import { budgetStoreContract } from '../../test/budget-store.contract';
import { createMemoryBudgetStore } from './memory-budget-store';

budgetStoreContract('memory', async () => {
  // 08:30 UTC: far from an hour boundary, so "+1 h" lands in exactly the next hour.
  const clock = new ManualClock(Date.UTC(2026, 10, 21, 8, 30));
  return { store: createMemoryBudgetStore({ clock }), advance: (ms) => clock.advance(ms) };
});

import { createMemoryBroker, createMemoryEventBus } from '../src/index';
import { eventBusContract } from './event-bus.contract';

eventBusContract('memory', async () => {
  const broker = createMemoryBroker();
  return {
    connect: async (name) => createMemoryEventBus({ name, broker }),
    teardown: async () => {},
  };
});

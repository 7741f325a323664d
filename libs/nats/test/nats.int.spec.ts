import { startNats, type ServerHandle } from '@switchyard/testing';
import { createNatsEventBus } from '../src/index';
import { eventBusContract } from './event-bus.contract';

eventBusContract('nats', async () => {
  const nats: ServerHandle = await startNats({ jetstream: true, reuseExternal: true });
  return {
    connect: (name) => createNatsEventBus({ url: nats.url, name }),
    teardown: () => nats.stop(),
  };
});

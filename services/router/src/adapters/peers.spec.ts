import { create } from '@bufbuild/protobuf';
import { BreakerService, GetHealthResponseSchema } from '@switchyard/contracts';
import { createGrpcServer, parseGrpcError, serviceRegistration, status } from '@switchyard/grpc';
import { createPeers } from './peers';

/** The router is a client of the internal token: its peer clients must present it (the peers' guard is createGrpcServer's). */
describe('peer clients and the internal token', () => {
  it('send the token on every call, and a client without it is UNAUTHENTICATED', async () => {
    const server = await createGrpcServer({
      host: '127.0.0.1',
      port: 0,
      auth: { internalToken: 'shh' },
      services: [serviceRegistration(
          BreakerService,
          // Only GetHealth is called; the rest must exist for the adapter.
          Object.fromEntries(BreakerService.methods.map((m) => [m.localName, async () => create(GetHealthResponseSchema, {})])) as never,
        )],
    });
    const addr = `127.0.0.1:${server.port}`;
    const withToken = createPeers({ cacheAddr: addr, budgetAddr: addr, limiterAddr: addr, breakerAddr: addr, peerDeadlineMs: 2000, internalToken: 'shh' });
    const without = createPeers({ cacheAddr: addr, budgetAddr: addr, limiterAddr: addr, breakerAddr: addr, peerDeadlineMs: 2000 });
    try {
      await expect(withToken.breaker.getHealth({ deployment: 'x' })).resolves.toBeDefined();
      const err = await without.breaker.getHealth({ deployment: 'x' }).catch((e: unknown) => e);
      expect(parseGrpcError(err).code).toBe(status.UNAUTHENTICATED);
    } finally {
      withToken.close();
      without.close();
      await server.shutdown(100);
    }
  });
});

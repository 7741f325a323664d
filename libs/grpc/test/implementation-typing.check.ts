/**
 * Compile-time checks (run by `npm run typecheck`, not jest): the service
 * descriptor alone decides the implementation type, so a mismatched
 * implementation fails to compile and inline handlers get typed requests.
 */
import { BudgetService, RouterService } from '@switchyard/contracts';
import { createGrpcServer, serviceRegistration, type ImplementationOf } from '../src';

declare const budget: ImplementationOf<typeof BudgetService>;
declare const router: ImplementationOf<typeof RouterService>;

export function typingChecks() {
  const regs = [serviceRegistration(BudgetService, budget), serviceRegistration(RouterService, router)];
  void createGrpcServer({ port: 0, services: regs });
  void createGrpcServer({ port: 0, services: [{ service: BudgetService, implementation: budget }, { service: RouterService, implementation: router }] });
  // @ts-expect-error the implementation belongs to another service
  void createGrpcServer({ port: 0, services: [{ service: BudgetService, implementation: router }] });
  // @ts-expect-error the implementation belongs to another service
  serviceRegistration(BudgetService, router);
  void createGrpcServer({
    port: 0,
    services: [
      {
        service: RouterService,
        implementation: {
          complete: async (req) => ({ content: req.route }),
          async *streamComplete(req) {
            yield { event: { case: 'delta', value: { text: req.route } } };
          },
        },
      },
    ],
  });
}

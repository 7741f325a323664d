import { createSimulator, type Simulator, type SimulatorOptions } from '../src/index';

/** Starts an in-process simulator on a free port and stops it after the suite. */
export function useSimulator(options: SimulatorOptions = {}): { current: Simulator } {
  const ref = {} as { current: Simulator };
  beforeAll(async () => {
    ref.current = await createSimulator({ port: 0, ...options });
  });
  afterAll(async () => {
    await ref.current?.stop();
  });
  return ref;
}

/** A scenario where deployment `<kind>` always fails with that kind, for table-driven fault tests. */
export function everyFaultScenario(kinds: readonly string[], extra: Record<string, unknown> = {}) {
  return {
    seed: 1,
    deployments: Object.fromEntries(kinds.map((k) => [k, { faults: { [k]: 1 }, ...extra }])),
  };
}

import { LaneSet } from './lanes';

function ready(set: LaneSet, priority: 'interactive' | 'batch', tenant: string, depth: number) {
  const lane = set.get(priority, tenant)!;
  lane.depth = depth;
  lane.ready = depth > 0;
}

describe('LaneSet', () => {
  it('takes interactive lanes before any batch lane', () => {
    const set = new LaneSet(['a', 'b']);
    ready(set, 'batch', 'a', 5);
    ready(set, 'interactive', 'b', 1);
    expect(set.next()).toMatchObject({ priority: 'interactive', tenant: 'b' });
    set.get('interactive', 'b')!.ready = false;
    expect(set.next()).toMatchObject({ priority: 'batch', tenant: 'a' });
  });

  it('alternates between tenants whatever their backlog (a flood does not hold back the other tenant)', () => {
    const set = new LaneSet(['flood', 'small', 'idle']);
    ready(set, 'batch', 'flood', 10_000);
    ready(set, 'batch', 'small', 10);
    const order = Array.from({ length: 6 }, () => set.next()!.tenant);
    expect(order).toEqual(['flood', 'small', 'flood', 'small', 'flood', 'small']);
  });

  it('skips lanes whose jobs are all held (not ready) and answers undefined when nothing is', () => {
    const set = new LaneSet(['a', 'b']);
    ready(set, 'batch', 'a', 3);
    set.get('batch', 'a')!.ready = false;
    expect(set.next()).toBeUndefined();
  });

  it('estimates a position as its lane plus the fair share of the other lanes (and all interactive work for batch)', () => {
    const set = new LaneSet(['a', 'b', 'c']);
    ready(set, 'batch', 'a', 10_000);
    ready(set, 'batch', 'b', 10);
    ready(set, 'interactive', 'c', 4);
    // b's last job: 9 of b's own, 10 of a's (round-robin), 4 interactive.
    expect(set.positionEstimate('batch', 'b')).toBe(9 + 10 + 4);
    expect(set.positionEstimate('interactive', 'c')).toBe(3);
    expect(set.depth('b')).toEqual({ interactive: 4, batch: 10_010, tenant: 10 });
  });
});

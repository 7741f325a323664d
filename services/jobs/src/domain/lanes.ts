/**
 * Fair scheduling over per-tenant lanes. Each tenant has one lane per
 * priority (a JetStream subject with its own durable consumer), so a tenant's
 * backlog never stands in front of another tenant's jobs: a worker with a
 * free slot takes ONE job from the next lane in round-robin order, every
 * interactive lane with work before any batch lane. One tenant's 10,000 queued
 * jobs therefore cost another tenant's ten at most one slot turn each.
 */

export type LanePriority = 'interactive' | 'batch';
export const LANE_PRIORITIES: readonly LanePriority[] = ['interactive', 'batch'];

export interface Lane {
  readonly priority: LanePriority;
  readonly tenant: string;
  /** Unfinished jobs in the lane (queued or held by a worker), from the last depth poll. */
  depth: number;
  /** Publish time of the lane's oldest unfinished job, 0 when empty (queue age backpressure). */
  oldestUnixMs: number;
  /**
   * Worth asking the queue for a job: set by a depth poll that saw jobs or by
   * a local Submit, cleared when the queue answered "nothing deliverable"
   * (every job held by workers or waiting out a requeue delay).
   */
  ready: boolean;
}

export class LaneSet {
  private readonly byPriority = new Map<LanePriority, Lane[]>();
  private readonly cursor = new Map<LanePriority, number>();

  constructor(tenants: readonly string[]) {
    for (const priority of LANE_PRIORITIES) {
      this.byPriority.set(priority, tenants.map((tenant) => ({ priority, tenant, depth: 0, oldestUnixMs: 0, ready: false })));
      this.cursor.set(priority, 0);
    }
  }

  get(priority: LanePriority, tenant: string): Lane | undefined {
    return this.byPriority.get(priority)!.find((l) => l.tenant === tenant);
  }

  all(): Lane[] {
    return LANE_PRIORITIES.flatMap((p) => this.byPriority.get(p)!);
  }

  /** The next lane to take one job from: interactive lanes first, round-robin within a priority. */
  next(): Lane | undefined {
    for (const priority of LANE_PRIORITIES) {
      const lanes = this.byPriority.get(priority)!;
      const start = this.cursor.get(priority)!;
      for (let i = 0; i < lanes.length; i++) {
        const index = (start + i) % lanes.length;
        const lane = lanes[index]!;
        if (!lane.ready) continue;
        this.cursor.set(priority, (index + 1) % lanes.length);
        return lane;
      }
    }
    return undefined;
  }

  /** Unfinished jobs per priority, and one tenant's: the scaling signal. */
  depth(tenant?: string): { interactive: number; batch: number; tenant: number } {
    let interactive = 0;
    let batch = 0;
    let own = 0;
    for (const lane of this.all()) {
      if (lane.priority === 'interactive') interactive += lane.depth;
      else batch += lane.depth;
      if (lane.tenant === tenant) own += lane.depth;
    }
    return { interactive, batch, tenant: own };
  }

  /**
   * Jobs estimated to start before a queued job of `tenant` at `priority`,
   * taking it to be last in its lane (an upper bound): the rest of its lane,
   * plus, per other lane of its priority, as many as round-robin takes from
   * it meanwhile, plus every interactive job when it is a batch job.
   */
  positionEstimate(priority: LanePriority, tenant: string): number {
    const own = this.get(priority, tenant);
    const ahead = Math.max(0, (own?.depth ?? 1) - 1);
    let estimate = ahead;
    for (const lane of this.byPriority.get(priority)!) {
      if (lane.tenant !== tenant) estimate += Math.min(lane.depth, ahead + 1);
    }
    if (priority === 'batch') estimate += this.depth().interactive;
    return estimate;
  }
}

import type { IncomingHttpHeaders } from 'node:http';

/** One request as the simulator received it, for tests that assert exact upstream parameters. */
export interface RecordedRequest {
  at: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface DeploymentCounters {
  received: number;
  /** Answers by HTTP status ("200", "429", …), plus "reset" (socket destroyed before headers) and "hang" (never answered). */
  byStatus: Record<string, number>;
  /** Injected faults by kind, plus stream_cut and stream_error for mid-stream faults. */
  faults: Record<string, number>;
  /** Tokens of every completion answered 200 (a stream counts in full when it starts): what the provider bills. */
  usage: { inputTokens: number; outputTokens: number };
}

const LOG_SIZE = 100;

/** Counters per deployment and the last 100 requests per deployment (what GET /_admin/counters and /_admin/requests show). */
export function createRecorder() {
  let counters = new Map<string, DeploymentCounters>();
  let logs = new Map<string, RecordedRequest[]>();

  function countersFor(deployment: string): DeploymentCounters {
    let c = counters.get(deployment);
    if (!c) counters.set(deployment, (c = { received: 0, byStatus: {}, faults: {}, usage: { inputTokens: 0, outputTokens: 0 } }));
    return c;
  }

  return {
    received(deployment: string, entry: RecordedRequest): void {
      countersFor(deployment).received++;
      let log = logs.get(deployment);
      if (!log) logs.set(deployment, (log = []));
      log.push(entry);
      if (log.length > LOG_SIZE) log.shift();
    },
    answered(deployment: string, status: number | 'reset' | 'hang'): void {
      const by = countersFor(deployment).byStatus;
      by[status] = (by[status] ?? 0) + 1;
    },
    billed(deployment: string, inputTokens: number, outputTokens: number): void {
      const u = countersFor(deployment).usage;
      u.inputTokens += inputTokens;
      u.outputTokens += outputTokens;
    },
    fault(deployment: string, kind: string): void {
      const f = countersFor(deployment).faults;
      f[kind] = (f[kind] ?? 0) + 1;
    },
    counters(): Record<string, DeploymentCounters> {
      return Object.fromEntries(counters);
    },
    requests(deployment: string): RecordedRequest[] {
      return logs.get(deployment)?.slice() ?? [];
    },
    reset(): void {
      counters = new Map();
      logs = new Map();
    },
  };
}
export type Recorder = ReturnType<typeof createRecorder>;

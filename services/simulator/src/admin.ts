import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Recorder } from './recorder';
import { ScenarioError, type Scenario } from './scenario';

export interface AdminTarget {
  recorder: Recorder;
  getScenario(): Scenario;
  /** Validates and installs a scenario given as YAML/JSON text; throws ScenarioError. */
  setScenarioText(text: string): Scenario;
  reset(): void;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The admin API lives under /_admin/ on the same port as the simulated
 * providers, so a test needs one URL. Bodies may be YAML or JSON.
 */
export function handleAdmin(target: AdminTarget, req: IncomingMessage, res: ServerResponse, path: string, query: string): void {
  const route = `${req.method} ${path}`;
  switch (route) {
    case 'GET /_admin/scenario':
      return json(res, 200, target.getScenario());
    case 'PUT /_admin/scenario':
    case 'POST /_admin/scenario': {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          json(res, 200, target.setScenarioText(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          if (err instanceof ScenarioError) return json(res, 400, { error: err.message, problems: err.problems });
          json(res, 500, { error: (err as Error).message });
        }
      });
      return;
    }
    case 'GET /_admin/counters':
      return json(res, 200, target.recorder.counters());
    case 'POST /_admin/reset':
      target.reset();
      return json(res, 200, { reset: true });
    case 'GET /_admin/requests': {
      const deployment = new URLSearchParams(query).get('deployment');
      if (!deployment) return json(res, 400, { error: 'deployment: query parameter required (GET /_admin/requests?deployment=<name>)' });
      return json(res, 200, target.recorder.requests(deployment));
    }
    default:
      return json(res, 404, {
        error: `no admin route ${route}; expected GET/PUT /_admin/scenario, GET /_admin/counters, POST /_admin/reset, GET /_admin/requests?deployment=`,
      });
  }
}

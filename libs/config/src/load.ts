import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodError } from 'zod';
import { ConfigError } from './errors';
import { interpolateEnv } from './interpolate';
import { configSchema, type SwitchyardConfig } from './schema';

type Env = Record<string, string | undefined>;

function formatPath(path: PropertyKey[]): string {
  return path.map((p) => String(p)).join('.') || '(root)';
}

function zodProblems(error: ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

/** Checks that need the whole file: references between sections. */
function crossReferenceProblems(config: SwitchyardConfig): string[] {
  const problems: string[] = [];
  for (const [alias, route] of Object.entries(config.routes)) {
    route.candidates.forEach((candidate, i) => {
      if (!config.deployments[candidate.deployment]) {
        problems.push(`routes.${alias}.candidates.${i}.deployment: unknown deployment "${candidate.deployment}"`);
      }
    });
  }
  const keyOwners = new Map<string, string>();
  for (const [tenantId, tenant] of Object.entries(config.tenants)) {
    tenant.routes?.forEach((alias, i) => {
      if (!config.routes[alias]) problems.push(`tenants.${tenantId}.routes.${i}: unknown route "${alias}"`);
    });
    tenant.apiKeys.forEach((key, i) => {
      const owner = keyOwners.get(key.sha256);
      if (owner) problems.push(`tenants.${tenantId}.apiKeys.${i}.sha256: same key already belongs to ${owner}`);
      keyOwners.set(key.sha256, `tenants.${tenantId}`);
    });
  }
  return problems;
}

/**
 * Parses and validates config text. Throws ConfigError listing every problem
 * by key path; never returns a half-valid config.
 */
export function parseConfig(text: string, options: { env?: Env; source?: string } = {}): SwitchyardConfig {
  const source = options.source ?? '<inline>';
  const interpolated = interpolateEnv(text, options.env ?? {}, source);
  let raw: unknown;
  try {
    raw = parseYaml(interpolated, { prettyErrors: true });
  } catch (err) {
    const message = err instanceof YAMLParseError ? err.message : String(err);
    throw new ConfigError(source, [`(yaml): ${message}`]);
  }
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(source, zodProblems(parsed.error));
  const problems = crossReferenceProblems(parsed.data);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return parsed.data;
}

/** Reads and validates the file at `path` (the value of SWITCHYARD_CONFIG). */
export function loadConfigFile(path: string, env: Env = {}): SwitchyardConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`(file): cannot read: ${(err as Error).message}`]);
  }
  return parseConfig(text, { env, source: path });
}

/**
 * Reading a service's environment. Each service declares its variables once
 * (name, default, description) so the same table feeds validation, `--help`
 * style listings in errors, and the README.
 */
export type Env = Record<string, string | undefined>;

export interface EnvVar<T> {
  name: string;
  description: string;
  /** Shown in docs and errors; undefined means required. */
  defaultText?: string;
  parse(env: Env): T;
}

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid environment:\n  ${problems.join('\n  ')}`);
    this.name = 'EnvError';
  }
}

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function envString(name: string, fallback: string | undefined, description: string): EnvVar<string> {
  return {
    name,
    description,
    defaultText: fallback,
    parse(env) {
      const v = raw(env, name) ?? fallback;
      if (v === undefined) throw new Error(`${name}: is required (${description})`);
      return v;
    },
  };
}

export function envOptional(name: string, description: string): EnvVar<string | undefined> {
  return { name, description, defaultText: '(unset)', parse: (env) => raw(env, name) };
}

export function envInt(
  name: string,
  fallback: number,
  description: string,
  bounds: { min?: number; max?: number } = {},
): EnvVar<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  return {
    name,
    description,
    defaultText: String(fallback),
    parse(env) {
      const v = raw(env, name);
      if (v === undefined) return fallback;
      if (!/^-?\d+$/.test(v)) throw new Error(`${name}: must be an integer, got ${JSON.stringify(v)}`);
      const n = Number(v);
      if (n < min || n > max) throw new Error(`${name}: must be between ${min} and ${max}, got ${n}`);
      return n;
    },
  };
}

/**
 * Parses every declared variable and reports all problems together.
 * `spec` maps config field names to variable declarations.
 */
export function parseEnv<S extends Record<string, EnvVar<unknown>>>(
  spec: S,
  env: Env,
): { [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never } {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [field, variable] of Object.entries(spec)) {
    try {
      out[field] = variable.parse(env);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) throw new EnvError(problems);
  return out as { [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never };
}

/** Markdown rows `| NAME | default | description |` for the README table. */
export function describeEnv(spec: Record<string, EnvVar<unknown>>): string[] {
  return Object.values(spec).map((v) => `| \`${v.name}\` | ${v.defaultText === undefined ? '(required)' : `\`${v.defaultText}\``} | ${v.description} |`);
}

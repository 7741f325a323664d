import { ConfigError } from './errors';

/**
 * Replaces `${VAR}` and `${VAR:-fallback}` in the raw config text, so one file
 * serves the demo, the stack and tests whose upstream ports are only known at
 * run time. An unset variable without a fallback is an error, not an empty string.
 */
export function interpolateEnv(text: string, env: Record<string, string | undefined>, source: string): string {
  const missing = new Set<string>();
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    missing.add(name);
    return '';
  });
  if (missing.size > 0) {
    throw new ConfigError(source, [...missing].map((n) => `\${${n}}: environment variable is not set and has no default`));
  }
  return out;
}

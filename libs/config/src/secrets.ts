import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Resolves a secret reference (`env:NAME` or `file:/path`) at start-up; the value is never logged. */
export function resolveSecret(ref: string, env: Record<string, string | undefined>): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (!value) throw new Error(`environment variable ${name} is not set`);
    return value;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    const value = readFileSync(path, 'utf8').trim();
    if (!value) throw new Error(`secret file ${path} is empty`);
    return value;
  }
  throw new Error(`unsupported secret reference ${JSON.stringify(ref)}`);
}

/** The digest stored in config for a caller API key (tenants[].apiKeys[].sha256). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

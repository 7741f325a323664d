import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Seals the caller's API key kept with a queued job (AES-256-GCM, the job's
 * tenant and id as associated data, so a sealed key cannot be moved to
 * another job). The jobs service calls the router AS the tenant, with the
 * tenant's own key: the router's authentication, routes, budgets and limits
 * apply unchanged and the jobs service holds no credential that could act for
 * every tenant. The key exists in plain text only in memory, during Submit and
 * during the router call; it is removed from the record once the job is final.
 */
export interface KeySeal {
  seal(apiKey: string, context: string): Uint8Array;
  open(sealed: Uint8Array, context: string): string;
}

const IV = 12;
const TAG = 16;

export function createKeySeal(secret: string): KeySeal {
  // The secret is high-entropy (>= 32 characters, checked by config), so a hash is a sound key derivation.
  const key = createHash('sha256').update(`switchyard-jobs-key-seal:${secret}`).digest();
  return {
    seal(apiKey, context) {
      const iv = randomBytes(IV);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(apiKey, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    open(sealed, context) {
      const buf = Buffer.from(sealed);
      if (buf.length < IV + TAG) throw new Error('sealed API key is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(buf.subarray(IV, IV + TAG));
      return Buffer.concat([decipher.update(buf.subarray(IV + TAG)), decipher.final()]).toString('utf8');
    },
  };
}

import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A job id: 10 characters of millisecond time then 16 random ones (Crockford
 * base32, lower case), so ids sort by creation time (ListJobs pages on that)
 * and fit a subject token, a KV key and the router's idempotency key.
 */
export function newJobId(nowMs: number, random: (n: number) => Uint8Array = randomBytes): string {
  let time = '';
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const bytes = random(16);
  let rest = '';
  for (const b of bytes) rest += ALPHABET[b % 32];
  return `j${time}${rest}`;
}

export const JOB_ID_PATTERN = /^j[0-9a-hjkmnp-tv-z]{26}$/;

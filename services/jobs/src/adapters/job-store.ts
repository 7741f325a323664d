import { createHash } from 'node:crypto';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { JobSchema, type Job } from '@switchyard/contracts';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';

/** KV bucket of job records and idempotency keys. */
export const JOBS_BUCKET = 'sy_jobs';

/** A job record as stored: the public Job plus the sealed API key (empty once final). */
export interface StoredJob {
  job: Job;
  sealedKey: Uint8Array;
}

export interface VersionedJob extends StoredJob {
  revision: number;
}

export class JobConflictError extends Error {
  constructor(readonly key: string) {
    super(`job record ${key} changed concurrently`);
    this.name = 'JobConflictError';
  }
}

/**
 * Job records in a JetStream KV bucket (replicated, file storage, survives a
 * NATS restart), every entry kept `ttlMs` after its last write. Writes are
 * compare-and-set on the revision, so a worker, a canceller and a redelivered
 * copy never overwrite each other's transition.
 */
export interface JobStore {
  get(tenant: string, jobId: string): Promise<VersionedJob | null>;
  /** Writes a new record; JobConflictError when the id exists. */
  create(record: StoredJob): Promise<number>;
  /** Compare-and-set; JobConflictError when the record moved on from `revision`. */
  update(record: StoredJob, revision: number): Promise<number>;
  /** Claims an idempotency key for `jobId`; returns the job id that holds it (ours or an earlier one). */
  claimIdempotencyKey(tenant: string, key: string, jobId: string): Promise<string>;
  /** The tenant's job ids, newest first. */
  listIds(tenant: string): Promise<string[]>;
}

export function jobKey(tenant: string, jobId: string): string {
  return `job.${tenant}.${jobId}`;
}

function encode(record: StoredJob): Uint8Array {
  const job = toBinary(JobSchema, record.job);
  const out = new Uint8Array(4 + record.sealedKey.length + job.length);
  new DataView(out.buffer).setUint32(0, record.sealedKey.length);
  out.set(record.sealedKey, 4);
  out.set(job, 4 + record.sealedKey.length);
  return out;
}

function decode(bytes: Uint8Array): StoredJob {
  const keyLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  return { sealedKey: bytes.slice(4, 4 + keyLength), job: fromBinary(JobSchema, bytes.subarray(4 + keyLength)) };
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test(String((err as Error)?.message));
}

export async function createNatsJobStore(nc: NatsConnection, options: { ttlMs: number }): Promise<JobStore> {
  const kv: KV = await new Kvm(jetstream(nc)).create(JOBS_BUCKET, { history: 1, ttl: options.ttlMs });
  const store: JobStore = {
    async get(tenant, jobId) {
      const entry = await kv.get(jobKey(tenant, jobId));
      if (!entry || entry.operation !== 'PUT') return null;
      return { ...decode(entry.value), revision: entry.revision };
    },
    async create(record) {
      const key = jobKey(record.job.tenant, record.job.jobId);
      try {
        return await kv.create(key, encode(record));
      } catch (err) {
        if (isConflict(err)) throw new JobConflictError(key);
        throw err;
      }
    },
    async update(record, revision) {
      const key = jobKey(record.job.tenant, record.job.jobId);
      try {
        return await kv.update(key, encode(record), revision);
      } catch (err) {
        if (isConflict(err)) throw new JobConflictError(key);
        throw err;
      }
    },
    async claimIdempotencyKey(tenant, key, jobId) {
      // Hashed: the caller's key may hold any characters, a KV key may not.
      const idemKey = `idem.${tenant}.${createHash('sha256').update(key).digest('hex')}`;
      try {
        await kv.create(idemKey, new TextEncoder().encode(jobId));
        return jobId;
      } catch (err) {
        if (!isConflict(err)) throw err;
        const held = await kv.get(idemKey);
        if (!held || held.operation !== 'PUT') return store.claimIdempotencyKey(tenant, key, jobId);
        return new TextDecoder().decode(held.value);
      }
    },
    async listIds(tenant) {
      const prefix = `job.${tenant}.`;
      // A Set, not a list: kv.keys() reads until nothing is pending, so a job
      // updated while the keys are read comes back a second time (a ListJobs
      // page then held it twice, and lacked a job its size had room for).
      const ids = new Set<string>();
      for await (const key of await kv.keys(`${prefix}*`)) ids.add(key.slice(prefix.length));
      return [...ids].sort().reverse();
    },
  };
  return store;
}

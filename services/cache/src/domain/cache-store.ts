/** What a lookup found; mirrors LookupStatus of the contract. */
export type LookupStatusName = 'hit' | 'stale' | 'miss' | 'leader' | 'wait';

export interface CacheEntryInfo {
  value: Uint8Array;
  storedAtMs: number;
  /** End of freshness. */
  expiresAtMs: number;
  /** End of the stale-if-error window (the entry is gone after it). */
  staleUntilMs: number;
}

export interface LookupResult {
  status: LookupStatusName;
  /** Set for hit and stale. */
  entry?: CacheEntryInfo;
  /** Set when this caller now holds the single-flight lease (leader, or stale with the refresh lease). */
  leaseId?: string;
  /** The store's clock at lookup time (ages are computed against it, not the replica's clock). */
  nowMs: number;
}

export interface LookupInput {
  tenant: string;
  key: string;
  allowStale: boolean;
  /** 0 = no lease requested. */
  leaseTtlMs: number;
  /** Id to register if the lease is granted (minted by the caller). */
  leaseId: string;
}

export interface StoreInput {
  tenant: string;
  key: string;
  value: Uint8Array;
  ttlMs: number;
  staleTtlMs: number;
  /** Released (waiters wake) if it is still the current lease of the key. */
  leaseId?: string;
}

/** An Invalidate target: one key, or every key with a prefix ("" = the whole tenant). */
export type InvalidateTarget = { key: string } | { prefix: string };

/**
 * Response cache state. Entries and leases live under their tenant, so
 * isolation holds whatever the key says. Each method is one atomic step (one
 * Lua script in Redis); time comes from the store (Redis TIME).
 */
export interface CacheStore {
  lookup(input: LookupInput): Promise<LookupResult>;
  store(input: StoreInput): Promise<Omit<CacheEntryInfo, 'value'>>;
  /** True when `leaseId` was the key's current lease (and is now released). */
  releaseLease(input: { tenant: string; key: string; leaseId: string }): Promise<boolean>;
  /** Number of entries removed. */
  invalidate(input: { tenant: string; target: InvalidateTarget }): Promise<number>;
  close(): Promise<void>;
}

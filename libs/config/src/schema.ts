import { z } from 'zod';

/**
 * The gateway's one config file (SWITCHYARD_CONFIG). Every key is documented in
 * the README's "Config file" section; keep the two in step.
 *
 * Names of deployments, routes and tenants become NATS subject tokens and Redis
 * key parts, so they are restricted to a safe alphabet here rather than escaped
 * everywhere else.
 */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const name = z.string().regex(NAME_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ -');

/** `env:VAR` or `file:/path`: provider keys never live in the config itself. */
const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a reference like env:OPENAI_API_KEY or file:/run/secrets/key');

const positiveInt = z.number().int().positive();

export const providerKinds = ['openai', 'azure', 'anthropic', 'openai-compatible'] as const;

/** Every breaker setting, optional: `defaults.breaker` and a deployment's own `breaker` block. */
const breakerPolicyShape = {
  /** Consecutive breaker failures that open a circuit. */
  consecutiveFailures: positiveInt.optional(),
  /** How long a circuit stays OPEN (the base of the doubling on re-opens). */
  openMs: positiveInt.optional(),
  /** Failure rate (%) over the window that opens a circuit once it holds minimumCalls. */
  failureRatePercent: positiveInt.max(100).optional(),
  /** Sliding window of the failure and slow-call rates. */
  windowMs: z.number().int().min(1_000).max(3_600_000).optional(),
  minimumCalls: positiveInt.optional(),
  /** A counted call slower than this is slow (0 = not tracked). */
  slowCallMs: z.number().int().nonnegative().max(600_000).optional(),
  slowCallRatePercent: positiveInt.max(100).optional(),
  /** Cap of the open interval, which doubles on each consecutive re-open. */
  maxOpenMs: positiveInt.optional(),
  /** Closed this long without re-opening: the next open starts from openMs again. */
  healthyResetMs: positiveInt.optional(),
  /** Probe permits in HALF_OPEN; this many successes close the circuit. */
  halfOpenProbes: positiveInt.max(100).optional(),
  /** Lifetime of a probe permit whose AcquireProbe says ttl_ms = 0. */
  probeTtlMs: positiveInt.max(600_000).optional(),
};

const deploymentSchema = z
  .strictObject({
    provider: z.enum(providerKinds),
    baseUrl: z.url({ message: 'must be an absolute http(s) URL' }),
    /** Upstream model name; for Azure, the deployment name in the URL path. */
    model: z.string().min(1),
    apiKey: secretRef,
    /** Azure only: the api-version query parameter. */
    apiVersion: z.string().min(1).optional(),
    contextWindow: positiveInt.default(128_000),
    /**
     * What the deployment can serve beyond text; unset keys take the
     * provider's defaults (@switchyard/providers DEFAULT_CAPABILITIES). A
     * candidate lacking what a call needs is skipped before sending.
     */
    capabilities: z
      .strictObject({
        tools: z.boolean().optional(),
        images: z.boolean().optional(),
        /** Native JSON-schema output (OpenAI response_format json_schema, Anthropic output_config.format). */
        jsonSchema: z.boolean().optional(),
        /** Largest max_tokens the model accepts; larger requests are clamped to it. */
        maxOutputTokens: positiveInt.optional(),
      })
      .optional(),
    timeoutMs: positiveInt.default(30_000),
    firstTokenTimeoutMs: positiveInt.default(10_000),
    idleTimeoutMs: positiveInt.default(30_000),
    limits: z
      .strictObject({
        rpm: positiveInt.optional(),
        tpm: positiveInt.optional(),
        tpd: positiveInt.optional(),
        concurrency: positiveInt.optional(),
      })
      .default({}),
    /** This deployment's breaker policy, over `defaults.breaker`. */
    breaker: z.strictObject(breakerPolicyShape).optional(),
    price: z.strictObject({
      inputPerMillionUsd: z.number().nonnegative(),
      outputPerMillionUsd: z.number().nonnegative(),
    }),
  })
  .superRefine((d, ctx) => {
    if (d.provider === 'azure' && !d.apiVersion) {
      ctx.addIssue({ code: 'custom', path: ['apiVersion'], message: 'is required when provider is azure' });
    }
  });

const candidateSchema = z.strictObject({
  deployment: name,
  /** Lower runs first; candidates of equal priority share traffic by weight. */
  priority: z.number().int().nonnegative().default(0),
  weight: positiveInt.default(1),
});

const routeSchema = z.strictObject({
  candidates: z.array(candidateSchema).min(1, 'must list at least one candidate'),
  /** Serve a stale cached answer (flagged degraded) when every candidate failed. */
  allowStaleOnError: z.boolean().default(true),
  /** Content-filter refusals normally end the call; set to try the next candidate instead. */
  fallbackOnContentFilter: z.boolean().default(false),
  cacheable: z.boolean().default(true),
  /**
   * Static answer served (flagged degraded, never cached, never charged) when
   * every candidate failed and no stale answer exists; off when unset.
   */
  fallbackAnswer: z.string().min(1, 'must not be empty').max(4000, 'must be at most 4000 characters').optional(),
});

const apiKeySchema = z.strictObject({
  /** A stable, non-secret id for the key (appears in logs, budgets and metrics). */
  id: name,
  /** Hex SHA-256 of the key; the key itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256 digest'),
});

export const budgetPeriods = ['hour', 'day', 'month'] as const;

const budgetSchema = z.strictObject({
  period: z.enum(budgetPeriods),
  limitUsd: z.number().positive(),
  /** Hard caps block calls; soft caps only alert. */
  hard: z.boolean().default(true),
});

const tenantSchema = z.strictObject({
  apiKeys: z.array(apiKeySchema).min(1, 'must list at least one API key'),
  limits: z.strictObject({ rpm: positiveInt.optional(), tpm: positiveInt.optional() }).default({}),
  budgets: z.array(budgetSchema).default([]),
  /** Route aliases this tenant may call; all routes when absent. */
  routes: z.array(name).optional(),
});

const defaultsSchema = z
  .strictObject({
    retry: z
      .strictObject({
        maxAttempts: positiveInt.max(10).default(3),
        baseMs: positiveInt.default(1_000),
        capMs: positiveInt.default(30_000),
      })
      .prefault({}),
    /** Fraction of a provider's published limit the limiter admits proactively. */
    headroom: z.number().gt(0).max(1).default(0.8),
    cache: z
      .strictObject({
        ttlMs: positiveInt.default(86_400_000),
        staleTtlMs: z.number().int().nonnegative().default(86_400_000),
      })
      .prefault({}),
    /**
     * The circuit breaker's policy (README "Config file"). The router's local
     * breaker shares the first two. The breaker service applies the rest and
     * owns their defaults, so its legacy BREAKER_* variables still apply where
     * the file is silent.
     */
    breaker: z
      .strictObject({
        ...breakerPolicyShape,
        consecutiveFailures: positiveInt.default(5),
        openMs: positiveInt.default(30_000),
      })
      .prefault({}),
    /** Bounds on caller input (DESIGN.md "Security"). */
    requestLimits: z
      .strictObject({
        maxMessages: positiveInt.default(256),
        maxPromptChars: positiveInt.default(1_000_000),
        maxTokens: positiveInt.default(32_768),
      })
      .prefault({}),
  })
  .prefault({});

export const configSchema = z.strictObject({
  deployments: z.record(name, deploymentSchema),
  routes: z.record(name, routeSchema),
  tenants: z.record(name, tenantSchema),
  defaults: defaultsSchema,
});

export type SwitchyardConfig = z.infer<typeof configSchema>;
export type DeploymentConfig = SwitchyardConfig['deployments'][string];
export type RouteConfig = SwitchyardConfig['routes'][string];
export type TenantConfig = SwitchyardConfig['tenants'][string];
export type ProviderKind = (typeof providerKinds)[number];
export type BudgetPeriod = (typeof budgetPeriods)[number];

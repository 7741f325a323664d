import type { ChatRequest, DeploymentTarget, ProviderAdapter, ProviderKind, StreamChunk } from '../src';
import { ProviderError } from '../src';

/** Simulator deployment name per provider (faults are keyed by it). */
export const DEPLOYMENT: Record<ProviderKind, string> = {
  openai: 'gpt-4o-mini',
  azure: 'azure-gpt-4o',
  anthropic: 'claude-haiku-4-5',
  'openai-compatible': 'llama-3-8b',
};

export const PROVIDERS: ProviderKind[] = ['openai', 'azure', 'anthropic', 'openai-compatible'];

/** How each provider addresses the simulator (the same shapes as the real endpoints). */
export function deploymentFor(provider: ProviderKind, simUrl: string): DeploymentTarget {
  const base = { name: `${provider}-test`, provider, model: DEPLOYMENT[provider], apiKey: 'sk-test-key-0001' };
  switch (provider) {
    case 'openai':
    case 'openai-compatible':
      return { ...base, baseUrl: `${simUrl}/v1` };
    case 'azure':
      return { ...base, baseUrl: simUrl, apiVersion: '2024-10-21' };
    case 'anthropic':
      return { ...base, baseUrl: simUrl };
  }
}

export const REQUEST: ChatRequest = {
  messages: [
    { role: 'system', content: 'You are a terse assistant.' },
    { role: 'user', content: 'Describe the weather on a quiet morning.' },
  ],
  maxTokens: 40,
};

export interface StreamOutcome {
  deltas: string[];
  /** Tool-call pieces in arrival order; absent when the stream had none. */
  toolDeltas?: Extract<StreamChunk, { type: 'tool_call_delta' }>[];
  end?: Extract<StreamChunk, { type: 'end' }>;
  error?: unknown;
}

export async function drain(iterable: AsyncIterable<StreamChunk>): Promise<StreamOutcome> {
  const out: StreamOutcome = { deltas: [] };
  try {
    for await (const chunk of iterable) {
      if (chunk.type === 'delta') out.deltas.push(chunk.text);
      else if (chunk.type === 'tool_call_delta') (out.toolDeltas ??= []).push(chunk);
      else out.end = chunk;
    }
  } catch (err) {
    out.error = err;
  }
  return out;
}

export async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw new Error(`expected a ProviderError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected the call to fail, it succeeded');
}

export async function streamFailure(adapter: ProviderAdapter, req: ChatRequest, opts = {}): Promise<{ error: ProviderError; deltas: string[] }> {
  const r = await drain(adapter.stream(req, opts));
  if (!(r.error instanceof ProviderError)) throw new Error(`expected a ProviderError from the stream, got ${String(r.error)} (end: ${JSON.stringify(r.end)})`);
  return { error: r.error, deltas: r.deltas };
}

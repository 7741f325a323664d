import { resolveCapabilities } from './capabilities';
import { fitRequest } from './fit-request';
import type { ChatRequest, ProviderKind } from './types';

const base: ChatRequest = { messages: [{ role: 'user', content: 'hi' }], maxTokens: 100 };
const at = (provider: ProviderKind, declared = {}) => ({ provider, capabilities: resolveCapabilities(provider, declared) });

describe('fitRequest', () => {
  it('clamps temperature 1.5 to 1 for Anthropic with a note, and leaves it for OpenAI', () => {
    const req = { ...base, temperature: 1.5 };
    expect(fitRequest(req, at('anthropic'))).toEqual({ ok: true, request: { ...req, temperature: 1 }, notes: ['temperature 1.5 clamped to 1 (anthropic range 0-1)'] });
    expect(fitRequest(req, at('openai'))).toEqual({ ok: true, request: req, notes: [] });
    expect(req.temperature).toBe(1.5);
  });

  it('drops a seed where the provider has none', () => {
    const fit = fitRequest({ ...base, seed: 3 }, at('anthropic'));
    expect(fit.ok && fit.request.seed).toBeUndefined();
    expect(fit.ok && fit.notes).toEqual(['seed dropped (anthropic has none)']);
    expect(fitRequest({ ...base, seed: 3 }, at('azure'))).toMatchObject({ ok: true, request: { seed: 3 }, notes: [] });
  });

  it('clamps maxTokens to the declared maxOutputTokens', () => {
    expect(fitRequest({ ...base, maxTokens: 50_000 }, at('openai', { maxOutputTokens: 16_384 }))).toMatchObject({
      ok: true,
      request: { maxTokens: 16_384 },
      notes: ['maxTokens 50000 clamped to 16384 (deployment maxOutputTokens)'],
    });
  });

  const tool = { name: 't', parameters: { type: 'object' }, strict: true };

  it('reports missing tools and images instead of sending what the deployment cannot take', () => {
    expect(fitRequest({ ...base, tools: [tool] }, at('openai-compatible'))).toMatchObject({ ok: false, missing: 'tools' });
    const history: ChatRequest = {
      ...base,
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 't', arguments: '{}' }] },
        { role: 'tool', toolCallId: 'c', content: 'r' },
      ],
    };
    expect(fitRequest(history, at('openai-compatible'))).toMatchObject({ ok: false, missing: 'tools' });
    const image: ChatRequest = { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { kind: 'url', url: 'https://x/y.png' } }] }] };
    expect(fitRequest(image, at('openai', { images: false }))).toMatchObject({ ok: false, missing: 'images' });
    expect(fitRequest(image, at('openai-compatible', { images: true }))).toMatchObject({ ok: true });
  });

  const structured: ChatRequest = { ...base, responseFormat: { type: 'json_schema', name: 'out', schema: { type: 'object' } } };

  it('serves json_schema on Anthropic natively when declared, else through a forced tool, noted', () => {
    expect(fitRequest(structured, at('anthropic', { jsonSchema: true }))).toEqual({ ok: true, request: structured, notes: [] });
    expect(fitRequest(structured, at('anthropic'))).toEqual({ ok: true, request: structured, notes: ['structured output through forced tool "out"'] });
    expect(fitRequest({ ...structured, tools: [tool] }, at('anthropic'))).toMatchObject({ ok: false, missing: 'jsonSchema' });
    expect(fitRequest(structured, at('openai-compatible'))).toMatchObject({ ok: false, missing: 'jsonSchema' });
  });

  it('drops tool strict on Anthropic without structured output', () => {
    const fit = fitRequest({ ...base, tools: [tool] }, at('anthropic'));
    expect(fit).toMatchObject({ ok: true, request: { tools: [{ name: 't', parameters: { type: 'object' } }] }, notes: ['tool strict dropped (deployment declares no jsonSchema)'] });
    expect(fitRequest({ ...base, tools: [tool] }, at('anthropic', { jsonSchema: true }))).toMatchObject({ ok: true, request: { tools: [tool] }, notes: [] });
  });

  it('reports more than 4 stop sequences as missing on OpenAI-family deployments only', () => {
    const req = { ...base, stop: ['a', 'b', 'c', 'd', 'e'] };
    expect(fitRequest(req, at('azure'))).toMatchObject({ ok: false, missing: 'stopSequences' });
    expect(fitRequest(req, at('anthropic'))).toMatchObject({ ok: true });
  });
});

/* eslint-disable @typescript-eslint/no-require-imports -- each test requires the modules in a fresh registry (jest.isolateModules) */
import type { ProviderAdapter } from './types';

/**
 * The Anthropic SDK is required with the first Anthropic client, not before:
 * here it is replaced by a module that throws when required, in a fresh module
 * registry, so any earlier require would fail the test.
 */
describe('the Anthropic SDK is loaded only for an Anthropic deployment', () => {
  const target = (provider: 'openai' | 'anthropic') => ({ name: `d-${provider}`, provider, baseUrl: 'http://127.0.0.1:9/v1', model: 'm', apiKey: 'k' });

  it('an OpenAI adapter, and classifying what it can throw, never require it; the first Anthropic client does', () => {
    jest.isolateModules(() => {
      jest.doMock('@anthropic-ai/sdk', () => {
        throw new Error('@anthropic-ai/sdk required');
      });
      const providers = require('./index') as typeof import('./index');
      const openai = require('openai') as typeof import('openai');
      const adapter: ProviderAdapter = providers.createProviderAdapter(target('openai'));
      expect(typeof adapter.complete).toBe('function');
      expect(providers.classify(openai.default.APIError.generate(429, { error: { message: 'slow down' } }, undefined, new Headers()))?.errorClass).toBe('RATE_LIMITED');
      expect(providers.classify(new openai.default.APIConnectionTimeoutError())?.errorClass).toBe('TIMEOUT');
      expect(providers.classify(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))?.errorClass).toBeDefined();
      expect(() => providers.createProviderAdapter(target('anthropic'))).toThrow('@anthropic-ai/sdk required');
    });
  });

  it('once loaded, its errors classify like the OpenAI SDK’s', () => {
    jest.dontMock('@anthropic-ai/sdk');
    jest.isolateModules(() => {
      const providers = require('./index') as typeof import('./index');
      providers.createProviderAdapter(target('anthropic'));
      const sdk = require('@anthropic-ai/sdk') as typeof import('@anthropic-ai/sdk');
      expect(providers.classify(new sdk.default.APIConnectionTimeoutError())?.errorClass).toBe('TIMEOUT');
      expect(providers.classify(sdk.default.APIError.generate(529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, undefined, new Headers()))?.errorClass).toBe('OVERLOADED');
    });
  });
});

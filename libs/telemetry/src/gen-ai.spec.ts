import { genAiAttributes } from './gen-ai';

describe('genAiAttributes', () => {
  it('maps to gen_ai.* semantic-convention names and omits unknowns', () => {
    expect(
      genAiAttributes({ providerName: 'openai', requestModel: 'gpt-4o', inputTokens: 12, outputTokens: 34, responseId: 'chatcmpl-1' }),
    ).toEqual({
      'gen_ai.provider.name': 'openai',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 34,
      'gen_ai.response.id': 'chatcmpl-1',
    });
    expect(genAiAttributes({ outputTokens: 0 })).toEqual({ 'gen_ai.usage.output_tokens': 0 });
  });
});

import Anthropic from '@anthropic-ai/sdk';
import type { Clock } from '@switchyard/util';
import { AttemptControl } from './attempt-control';
import { checkCallOptions, contentFilterFailure, invalidRequest, metaFromHeaders } from './adapter-support';
import { fromAnthropicEvent, fromAnthropicResponse, toAnthropicParams } from './anthropic-translate';
import { IncompleteStreamError } from './errors';
import { DEFAULT_SDK_TIMEOUT_MS } from './openai-adapter';
import type { CallOptions, ChatRequest, ChatResponse, DeploymentTarget, FinishReason, ProviderAdapter, StreamChunk } from './types';

export function createAnthropicClient(d: DeploymentTarget): Anthropic {
  return new Anthropic({
    apiKey: d.apiKey,
    baseURL: d.baseUrl,
    maxRetries: 0,
    // Setting it explicitly also stops the SDK from refusing large non-streaming max_tokens.
    timeout: d.sdkTimeoutMs ?? DEFAULT_SDK_TIMEOUT_MS,
    ...(d.fetch ? { fetch: d.fetch } : {}),
  });
}

export function createAnthropicAdapter(d: DeploymentTarget, clock: Clock): ProviderAdapter {
  const client = createAnthropicClient(d);

  async function complete(req: ChatRequest, opts: CallOptions = {}): Promise<ChatResponse> {
    let params;
    try {
      checkCallOptions(opts);
      params = toAnthropicParams(req, { model: d.model, stream: false });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, false);
    try {
      const { data, response } = await client.messages.create(params, { signal: ctl.signal }).withResponse();
      const res = fromAnthropicResponse(data, metaFromHeaders(response.headers, clock.now()));
      const filtered = contentFilterFailure(res, d.name);
      if (filtered) throw filtered;
      return res;
    } catch (err) {
      throw ctl.failure(err, d.name, false);
    } finally {
      ctl.dispose();
    }
  }

  async function* stream(req: ChatRequest, opts: CallOptions = {}): AsyncGenerator<StreamChunk> {
    let params;
    try {
      checkCallOptions(opts);
      params = toAnthropicParams(req, { model: d.model, stream: true });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, true);
    let headers: Headers | undefined;
    let delivered = false;
    try {
      const { data, response } = await client.messages.create(params, { signal: ctl.signal }).withResponse();
      headers = response.headers;
      const meta = metaFromHeaders(headers, clock.now());
      ctl.streamOpened();
      let finishReason: FinishReason | undefined;
      let inputTokens = 0;
      let outputTokens = 0;
      let done = false;
      let text = '';
      for await (const event of data) {
        ctl.upstreamEvent();
        const parts = fromAnthropicEvent(event);
        if (parts.inputTokens !== undefined) inputTokens = parts.inputTokens;
        if (parts.outputTokens !== undefined) outputTokens = parts.outputTokens;
        if (parts.finishReason) finishReason = parts.finishReason;
        if (parts.done) done = true;
        if (parts.text !== undefined) {
          ctl.firstDelta();
          delivered = true;
          text += parts.text;
          yield { type: 'delta', text: parts.text };
        }
        ctl.awaitingUpstream();
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (!done) throw new IncompleteStreamError('upstream closed the stream before message_stop');
      const usage = { inputTokens, outputTokens };
      const reason = finishReason ?? 'other';
      if (reason === 'content_filter') {
        throw contentFilterFailure({ content: text, finishReason: reason, usage, model: d.model, ...meta }, d.name)!;
      }
      yield { type: 'end', finishReason: reason, usage, ...meta };
    } catch (err) {
      throw ctl.failure(err, d.name, delivered, headers);
    } finally {
      ctl.dispose();
    }
  }

  return { name: d.name, provider: d.provider, model: d.model, complete, stream };
}

import OpenAI, { AzureOpenAI } from 'openai';
import { countTextTokens } from '@switchyard/tokens';
import type { Clock } from '@switchyard/util';
import { AttemptControl } from './attempt-control';
import { providerFetch } from './http-fetch';
import { checkCallOptions, contentFilterFailure, invalidRequest, metaFromHeaders, withResponseId } from './adapter-support';
import { IncompleteStreamError } from './errors';
import { countRequestInputTokens } from './estimate';
import { ToolCallAssembler } from './tool-call-assembler';
import { fromOpenAIChunk, fromOpenAIResponse, toOpenAIParams } from './openai-translate';
import type { CallOptions, ChatRequest, ChatResponse, DeploymentTarget, FinishReason, ProviderAdapter, StreamChunk, Usage } from './types';

export const DEFAULT_SDK_TIMEOUT_MS = 600_000;

/** One SDK client per adapter: the client's fetch keeps connections alive across calls. */
export function createOpenAIClient(d: DeploymentTarget): OpenAI {
  const common = {
    apiKey: d.apiKey,
    // Retries are the router's (budgeted, deadline-aware); the SDK must not add its own.
    maxRetries: 0,
    // Our AbortSignal timers bound each attempt; this is only a backstop.
    timeout: d.sdkTimeoutMs ?? DEFAULT_SDK_TIMEOUT_MS,
    // Explicit nulls keep the SDK from reading OPENAI_ORG_ID / OPENAI_PROJECT_ID (libs read no env).
    organization: null,
    project: null,
    fetch: d.fetch ?? providerFetch(),
  };
  if (d.provider === 'azure') {
    const trimmed = d.baseUrl.replace(/\/+$/, '');
    const target = /\/openai$/.test(trimmed) ? { baseURL: trimmed } : { endpoint: trimmed };
    return new AzureOpenAI({ ...common, ...target, apiVersion: d.apiVersion!, deployment: d.model });
  }
  return new OpenAI({ ...common, baseURL: d.baseUrl });
}

export function createOpenAIAdapter(d: DeploymentTarget, clock: Clock): ProviderAdapter {
  const client = createOpenAIClient(d);
  const paramOpts = { model: d.model, provider: d.provider, ...(d.maxTokensParam ? { maxTokensParam: d.maxTokensParam } : {}) };

  async function complete(req: ChatRequest, opts: CallOptions = {}): Promise<ChatResponse> {
    let params;
    try {
      checkCallOptions(opts);
      params = toOpenAIParams(req, { ...paramOpts, stream: false });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, false);
    try {
      const { data, response } = await client.chat.completions.create(params, { signal: ctl.signal }).withResponse();
      const res = fromOpenAIResponse(data, metaFromHeaders(response.headers, clock.now()));
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
      params = toOpenAIParams(req, { ...paramOpts, stream: true });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, true);
    let headers: Headers | undefined;
    let delivered = false;
    let responseId: string | undefined;
    try {
      const { data, response } = await client.chat.completions.create(params, { signal: ctl.signal }).withResponse();
      headers = response.headers;
      const meta = metaFromHeaders(headers, clock.now());
      ctl.streamOpened();
      let finishReason: FinishReason | undefined;
      let usage: Usage | undefined;
      let text = '';
      let refusal = '';
      const calls = new ToolCallAssembler();
      for await (const chunk of data) {
        ctl.upstreamEvent();
        const parts = fromOpenAIChunk(chunk);
        if (parts.finishReason) finishReason = parts.finishReason;
        if (parts.usage) usage = parts.usage;
        responseId ??= parts.responseId;
        if (parts.refusal !== undefined) refusal += parts.refusal;
        if (parts.text !== undefined) {
          ctl.firstDelta();
          delivered = true;
          text += parts.text;
          yield { type: 'delta', text: parts.text };
        }
        // A tool-call piece is a delivered delta like text: after it, a failure is STREAM_INTERRUPTED, never a silent retry.
        for (const d of parts.toolCalls ?? []) {
          ctl.firstDelta();
          delivered = true;
          calls.add(d);
          yield d;
        }
        ctl.awaitingUpstream();
      }
      // The SDK ends iteration quietly when its request is aborted; an abort is never a clean end.
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (finishReason === undefined) throw new IncompleteStreamError('upstream closed the stream before a finish_reason');
      const end: StreamChunk = {
        type: 'end',
        finishReason,
        usage: usage ?? { inputTokens: countRequestInputTokens(req, d.provider), outputTokens: countTextTokens(text + (calls.result()?.map((c) => c.name + c.arguments).join('') ?? '')) },
        ...(usage ? {} : { usageEstimated: true as const }),
        ...(calls.size > 0 ? { toolCalls: calls.result()! } : {}),
        ...(refusal ? { refusal } : {}),
        ...(responseId ? { responseId } : {}),
        ...meta,
      };
      if (finishReason === 'content_filter') {
        throw contentFilterFailure({ content: text, finishReason, usage: end.usage, model: d.model, ...meta }, d.name)!;
      }
      yield end;
    } catch (err) {
      throw withResponseId(ctl.failure(err, d.name, delivered, headers), responseId);
    } finally {
      ctl.dispose();
    }
  }

  return { name: d.name, provider: d.provider, model: d.model, complete, stream };
}

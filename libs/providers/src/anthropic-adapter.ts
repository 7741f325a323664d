import type Anthropic from '@anthropic-ai/sdk';
import { anthropicSdk } from './anthropic-sdk';
import type { Clock } from '@switchyard/util';
import { AttemptControl } from './attempt-control';
import { providerFetch } from './http-fetch';
import { checkCallOptions, contentFilterFailure, invalidRequest, metaFromHeaders, withResponseId } from './adapter-support';
import { fromAnthropicEvent, fromAnthropicResponse, structuredOutputTool, toAnthropicParams } from './anthropic-translate';
import { ToolCallAssembler } from './tool-call-assembler';
import { IncompleteStreamError } from './errors';
import { DEFAULT_SDK_TIMEOUT_MS } from './openai-adapter';
import type { CallOptions, ChatRequest, ChatResponse, DeploymentTarget, FinishReason, ProviderAdapter, StreamChunk, ToolCallDelta } from './types';

export function createAnthropicClient(d: DeploymentTarget): Anthropic {
  return new (anthropicSdk().default)({
    apiKey: d.apiKey,
    baseURL: d.baseUrl,
    maxRetries: 0,
    // Setting it explicitly also stops the SDK from refusing large non-streaming max_tokens.
    timeout: d.sdkTimeoutMs ?? DEFAULT_SDK_TIMEOUT_MS,
    fetch: d.fetch ?? providerFetch(),
  });
}

export function createAnthropicAdapter(d: DeploymentTarget, clock: Clock): ProviderAdapter {
  const client = createAnthropicClient(d);
  const nativeJsonSchema = d.nativeJsonSchema ?? false;

  async function complete(req: ChatRequest, opts: CallOptions = {}): Promise<ChatResponse> {
    let params;
    try {
      checkCallOptions(opts);
      params = toAnthropicParams(req, { model: d.model, nativeJsonSchema, stream: false });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, false);
    try {
      const { data, response } = await client.messages.create(params, { signal: ctl.signal }).withResponse();
      const res = fromAnthropicResponse(data, metaFromHeaders(response.headers, clock.now()), structuredOutputTool(req, nativeJsonSchema)?.name);
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
      params = toAnthropicParams(req, { model: d.model, nativeJsonSchema, stream: true });
    } catch (err) {
      throw invalidRequest(err, d.name);
    }
    const ctl = new AttemptControl(opts, true);
    let headers: Headers | undefined;
    let delivered = false;
    let responseId: string | undefined;
    try {
      const { data, response } = await client.messages.create(params, { signal: ctl.signal }).withResponse();
      headers = response.headers;
      const meta = metaFromHeaders(headers, clock.now());
      ctl.streamOpened();
      let finishReason: FinishReason | undefined;
      let stopSequence: string | undefined;
      let inputTokens = 0;
      let outputTokens = 0;
      let done = false;
      let text = '';
      const forced = structuredOutputTool(req, nativeJsonSchema)?.name;
      // Anthropic indexes content blocks (text included); neutral tool-call indexes count calls only.
      const toolIndexOfBlock = new Map<number, number>();
      let forcedBlock: number | undefined;
      const calls = new ToolCallAssembler();
      for await (const event of data) {
        ctl.upstreamEvent();
        const parts = fromAnthropicEvent(event);
        if (parts.inputTokens !== undefined) inputTokens = parts.inputTokens;
        if (parts.outputTokens !== undefined) outputTokens = parts.outputTokens;
        if (parts.finishReason) finishReason = parts.finishReason;
        if (parts.stopSequence !== undefined) stopSequence = parts.stopSequence;
        if (parts.done) done = true;
        responseId ??= parts.responseId;
        // The forced structured-output tool's argument fragments are the answer's text.
        let piece = parts.text;
        if (parts.toolStart && parts.toolStart.name === forced) forcedBlock = parts.toolStart.block;
        else if (parts.toolArguments && parts.toolArguments.block === forcedBlock) piece = parts.toolArguments.fragment || undefined;
        if (piece !== undefined) {
          ctl.firstDelta();
          delivered = true;
          text += piece;
          yield { type: 'delta', text: piece };
        }
        let delta: ToolCallDelta | undefined;
        if (parts.toolStart && parts.toolStart.block !== forcedBlock) {
          const index = toolIndexOfBlock.size;
          toolIndexOfBlock.set(parts.toolStart.block, index);
          delta = { type: 'tool_call_delta', index, id: parts.toolStart.id, name: parts.toolStart.name, argumentsDelta: '' };
        } else if (parts.toolArguments && toolIndexOfBlock.has(parts.toolArguments.block)) {
          delta = { type: 'tool_call_delta', index: toolIndexOfBlock.get(parts.toolArguments.block)!, argumentsDelta: parts.toolArguments.fragment };
        }
        if (delta) {
          ctl.firstDelta();
          delivered = true;
          calls.add(delta);
          yield delta;
        }
        ctl.awaitingUpstream();
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (!done) throw new IncompleteStreamError('upstream closed the stream before message_stop');
      const usage = { inputTokens, outputTokens };
      const stopped = finishReason ?? 'other';
      const reason = forcedBlock !== undefined && stopped === 'tool_calls' ? 'stop' : stopped;
      if (reason === 'content_filter') {
        throw contentFilterFailure({ content: text, finishReason: reason, usage, model: d.model, ...meta }, d.name)!;
      }
      yield {
        type: 'end',
        finishReason: reason,
        usage,
        ...(calls.size > 0 ? { toolCalls: calls.result()! } : {}),
        ...(stopSequence !== undefined && reason === 'stop' ? { stopSequence } : {}),
        ...(responseId ? { responseId } : {}),
        ...meta,
      };
    } catch (err) {
      throw withResponseId(ctl.failure(err, d.name, delivered, headers), responseId);
    } finally {
      ctl.dispose();
    }
  }

  return { name: d.name, provider: d.provider, model: d.model, complete, stream };
}

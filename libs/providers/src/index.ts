export * from './types';
export { type ErrorClass, ERROR_CLASSES, type Classification, type ClassPolicy, CLASS_POLICY } from './error-class';
export {
  ProviderError,
  isProviderError,
  TimeoutAbort,
  isTimeoutAbort,
  type TimeoutKind,
  CancelledError,
  isCancelledError,
  InvalidChatRequestError,
  IncompleteStreamError,
} from './errors';
export { validateChatRequest } from './validate';
export {
  toOpenAIParams,
  fromOpenAIResponse,
  fromOpenAIChunk,
  fromOpenAIFinishReason,
  defaultMaxTokensParam,
  type OpenAIParamsOptions,
  type OpenAIChunkParts,
  type ResponseMeta,
} from './openai-translate';
export {
  toAnthropicParams,
  fromAnthropicResponse,
  fromAnthropicEvent,
  fromAnthropicStopReason,
  type AnthropicParamsOptions,
  type AnthropicEventParts,
} from './anthropic-translate';
export { classify, networkCode, type ClassifyContext } from './classify';
export {
  parseRateLimitHeaders,
  parseRetryAfter,
  parseGoDuration,
  upstreamRequestIdFrom,
  hasRateLimitInfo,
  rateLimitHeadersOf,
  type HeaderSource,
  type RetryAfterResult,
  MAX_RESET_MS,
  MAX_RETRY_AFTER_MS,
} from './rate-limit-headers';
export { estimateRequestTokens, estimateCost, estimateCostMicros, type Price, type RequestTokenEstimate } from './estimate';
export { createProviderAdapter, validateDeployment, type AdapterOptions } from './create-provider-adapter';

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
  validateChatFeatures,
  checkJsonSchema,
  checkToolDefinitions,
  checkToolChoice,
  checkResponseFormat,
  checkToolArguments,
  checkToolConversation,
  checkImage,
  InvalidJsonSchemaError,
  UnknownToolCallIdError,
  UnknownToolChoiceError,
  ImageTooLargeError,
  InvalidToolArgumentsError,
  MAX_IMAGE_BYTES,
  IMAGE_MEDIA_TYPES,
  TOOL_NAME,
} from './validate-features';
export { type DeploymentCapabilities, DEFAULT_CAPABILITIES, resolveCapabilities } from './capabilities';
export { fitRequest, type FitResult, type FitTarget, type MissingCapability } from './fit-request';
export { toAnthropicToolId, fromAnthropicToolId } from './tool-call-ids';
export { ToolCallAssembler } from './tool-call-assembler';
export { contentParts, messageText, messageImages, dataUrl, parseDataUrl } from './message-content';
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
  structuredOutputTool,
  JSON_OBJECT_TOOL,
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
export { estimateRequestTokens, countRequestInputTokens, imageSize, estimateCost, estimateCostMicros, type Price, type RequestTokenEstimate } from './estimate';
export { createProviderAdapter, validateDeployment, type AdapterOptions } from './create-provider-adapter';

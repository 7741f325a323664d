export { countTextTokens, countChatTokens, loadTokenizer, type TokenMessage, type TokenProvider } from './count';
export { measureTokenizerCost, makeSamplePrompts, measureMegabyteCost, makeMegabyteTexts, type TokenizerCost, type MegabyteCost } from './bench';
export { imageDimensions, type ImageDimensions } from './image-size';
export {
  countToolDefinitionTokens,
  countToolCallTokens,
  countImageTokens,
  type TokenTool,
  type TokenToolCall,
  type ImageDetail,
  TOOL_DEFINITION_OVERHEAD,
  TOOL_CALL_OVERHEAD,
  ANTHROPIC_TOOL_SYSTEM_PROMPT,
  OPENAI_TOOLS_PREAMBLE,
  OPENAI_IMAGE_BASE,
  OPENAI_IMAGE_PER_TILE,
  OPENAI_IMAGE_MAX,
  ANTHROPIC_IMAGE_MAX,
} from './features';

export { countTextTokens, countChatTokens, type TokenMessage, type TokenProvider } from './count';
export { measureTokenizerCost, makeSamplePrompts, type TokenizerCost } from './bench';

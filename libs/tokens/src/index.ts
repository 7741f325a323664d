export { countTextTokens, countChatTokens, loadTokenizer, type TokenMessage, type TokenProvider } from './count';
export { measureTokenizerCost, makeSamplePrompts, measureMegabyteCost, makeMegabyteTexts, type TokenizerCost, type MegabyteCost } from './bench';

import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/** Providers whose chat framing we know how to approximate. */
export type TokenProvider = 'openai' | 'azure' | 'anthropic' | 'openai-compatible';

/** The minimal message shape both the simulator and the gateway can produce. */
export interface TokenMessage {
  role: string;
  content: string;
}

/**
 * Prompt text is user data: it may legitimately contain strings such as
 * `<|endoftext|>`. Counting them as ordinary text (instead of throwing, the
 * library default) is what a provider does when it bills them.
 */
const TEXT_ONLY = { disallowedSpecial: new Set<string>() };

/**
 * OpenAI chat framing (the "cookbook" rule for gpt-3.5-turbo-0613 and later,
 * still accurate to within a token or two for gpt-4o): every message costs
 * `<|start|>{role}\n ... <|end|>` = 3 tokens plus its role and content, and the
 * reply is primed with `<|start|>assistant<|message|>` = 3 tokens. The role is
 * counted with the same BPE, so it is not folded into the constant.
 */
const OPENAI_TOKENS_PER_MESSAGE = 3;
const OPENAI_REPLY_PRIMING = 3;

/**
 * Anthropic does not publish its tokenizer. Measured against the
 * `count_tokens` endpoint, Claude tokenizers produce roughly 5-15 % more tokens
 * than o200k_base for English prose and code, so we take the o200k count of
 * the same framed conversation and add 10 %, rounding up. Rounding up matters:
 * the gateway uses this figure to reserve quota and budget, and an estimate
 * that errs low lets requests through that the provider then rejects.
 */
const ANTHROPIC_FACTOR = 1.1;

/** Tokens in a piece of text under o200k_base (the gpt-4o / gpt-4.1 / o-series encoding). */
export function countTextTokens(text: string): number {
  if (text.length === 0) return 0;
  return countTokens(text, TEXT_ONLY);
}

/**
 * Prompt tokens a provider will bill for `messages`, as closely as can be known
 * without calling the provider. Exact for OpenAI text-only chats up to the
 * framing approximation above; an upper-leaning estimate for Anthropic.
 */
export function countChatTokens(messages: readonly TokenMessage[], provider: TokenProvider): number {
  let framed = OPENAI_REPLY_PRIMING;
  for (const message of messages) {
    framed += OPENAI_TOKENS_PER_MESSAGE + countTextTokens(message.role) + countTextTokens(message.content);
  }
  switch (provider) {
    case 'openai':
    case 'azure':
    case 'openai-compatible':
      return framed;
    case 'anthropic':
      return Math.ceil(framed * ANTHROPIC_FACTOR);
    default: {
      const unknown: never = provider;
      throw new TypeError(`countChatTokens: unknown provider "${String(unknown)}" (expected openai, azure, anthropic or openai-compatible)`);
    }
  }
}

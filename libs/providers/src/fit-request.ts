import { structuredOutputTool } from './anthropic-translate';
import type { DeploymentCapabilities } from './capabilities';
import { messageImages } from './message-content';
import type { ChatRequest, ProviderKind } from './types';

/** A capability a call needs and a candidate lacks. */
export type MissingCapability = 'tools' | 'images' | 'jsonSchema' | 'stopSequences';

export type FitResult =
  | { ok: true; request: ChatRequest; notes: string[] }
  | { ok: false; missing: MissingCapability; reason: string };

export interface FitTarget {
  provider: ProviderKind;
  capabilities: DeploymentCapabilities;
}

const ANTHROPIC_TEMPERATURE_MAX = 1;
const OPENAI_STOP_MAX = 4;

/**
 * Fits one (already validated) neutral request to one candidate, so a call is
 * never rejected as a whole because of one provider's range. Where the meaning
 * survives, the request is adjusted and a note says how (for the attempt's
 * note): temperature above Anthropic's 1 is clamped to 1 (the most random the
 * model goes), max tokens above the model's output bound is clamped (the model
 * could not have produced more), a seed is dropped where the provider has
 * none (best-effort determinism, never a guarantee), `strict` on tools is
 * dropped on an Anthropic deployment without structured output. Where it does
 * not, the candidate is reported as lacking a capability and must be skipped:
 * tools or images it cannot take, JSON-schema output it cannot produce, more
 * stop sequences than it accepts (dropping one would let text through the
 * caller asked to stop at). Pure; the input is not modified.
 */
export function fitRequest(req: ChatRequest, target: FitTarget): FitResult {
  const { provider, capabilities: caps } = target;
  const notes: string[] = [];
  const out: ChatRequest = { ...req };

  const usesTools = !!req.tools?.length || req.messages.some((m) => m.role === 'tool' || !!m.toolCalls?.length);
  if (usesTools && !caps.tools) return { ok: false, missing: 'tools', reason: `${provider} deployment does not declare tools` };
  if (!caps.images && req.messages.some((m) => messageImages(m).length > 0)) {
    return { ok: false, missing: 'images', reason: `${provider} deployment does not declare images` };
  }

  const format = req.responseFormat;
  if (format && format.type !== 'text') {
    if (provider === 'anthropic') {
      const forced = structuredOutputTool(req, caps.jsonSchema);
      if (forced) {
        if (!caps.tools) return { ok: false, missing: 'jsonSchema', reason: 'structured output needs native JSON-schema output or tools' };
        if (req.tools?.length) {
          return { ok: false, missing: 'jsonSchema', reason: 'structured output together with tools needs native JSON-schema output' };
        }
        notes.push(`structured output through forced tool "${forced.name}"`);
      }
    } else if (format.type === 'json_schema' && !caps.jsonSchema) {
      return { ok: false, missing: 'jsonSchema', reason: `${provider} deployment does not declare jsonSchema` };
    }
  }

  if (provider !== 'anthropic' && (req.stop?.length ?? 0) > OPENAI_STOP_MAX) {
    return { ok: false, missing: 'stopSequences', reason: `${provider} accepts at most ${OPENAI_STOP_MAX} stop sequences (got ${req.stop!.length})` };
  }

  if (provider === 'anthropic') {
    if (req.temperature !== undefined && req.temperature > ANTHROPIC_TEMPERATURE_MAX) {
      out.temperature = ANTHROPIC_TEMPERATURE_MAX;
      notes.push(`temperature ${req.temperature} clamped to ${ANTHROPIC_TEMPERATURE_MAX} (anthropic range 0-1)`);
    }
    if (req.seed !== undefined) {
      delete out.seed;
      notes.push('seed dropped (anthropic has none)');
    }
    if (!caps.jsonSchema && req.tools?.some((t) => t.strict !== undefined)) {
      out.tools = req.tools.map(({ strict: _strict, ...t }) => t);
      notes.push('tool strict dropped (deployment declares no jsonSchema)');
    }
  }

  if (caps.maxOutputTokens !== undefined && req.maxTokens > caps.maxOutputTokens) {
    out.maxTokens = caps.maxOutputTokens;
    notes.push(`maxTokens ${req.maxTokens} clamped to ${caps.maxOutputTokens} (deployment maxOutputTokens)`);
  }
  return { ok: true, request: out, notes };
}

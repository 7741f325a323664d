import { metrics, trace, type Attributes, type Meter, type Span, type Tracer } from '@opentelemetry/api';

/** The tracer for a module (instrumentation scope); a no-op until telemetry is started. */
export function getTracer(name: string, version?: string): Tracer {
  return trace.getTracer(name, version);
}

/** The meter for a module; instruments are no-ops until telemetry is started with a metric reader. */
export function getMeter(name: string, version?: string): Meter {
  return metrics.getMeter(name, version);
}

/** GenAI semantic-convention fields of one provider attempt. Never prompt or completion text. */
export interface GenAiAttributes {
  /** `gen_ai.provider.name` (current GenAI conventions; replaces the deprecated `gen_ai.system`): openai | azure.ai.openai | anthropic | ... */
  providerName?: string;
  /** `gen_ai.operation.name`; default `chat`. */
  operation?: string;
  requestModel?: string;
  responseModel?: string;
  maxTokens?: number;
  temperature?: number;
  inputTokens?: number;
  outputTokens?: number;
  /** Upstream response id (`chatcmpl-...`, `msg_...`). */
  responseId?: string;
  finishReasons?: string[];
}

/** Maps `GenAiAttributes` to `gen_ai.*` span attributes, omitting what is unknown. */
export function genAiAttributes(input: GenAiAttributes): Attributes {
  const out: Attributes = {};
  const set = (key: string, value: Attributes[string] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('gen_ai.provider.name', input.providerName);
  set('gen_ai.operation.name', input.operation ?? (input.providerName || input.requestModel ? 'chat' : undefined));
  set('gen_ai.request.model', input.requestModel);
  set('gen_ai.response.model', input.responseModel);
  set('gen_ai.request.max_tokens', input.maxTokens);
  set('gen_ai.request.temperature', input.temperature);
  set('gen_ai.usage.input_tokens', input.inputTokens);
  set('gen_ai.usage.output_tokens', input.outputTokens);
  set('gen_ai.response.id', input.responseId);
  set('gen_ai.response.finish_reasons', input.finishReasons);
  return out;
}

/** Sets GenAI attributes on a provider attempt span (call again when the response/usage is known). */
export function setGenAiAttributes(span: Span, input: GenAiAttributes): void {
  span.setAttributes(genAiAttributes(input));
}

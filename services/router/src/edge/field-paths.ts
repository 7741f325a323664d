/**
 * The router names a bad field by its proto path (`params.tools[0].parameters_json`,
 * `messages[3].parts[1].image.url`); an HTTP caller wrote another body
 * (`tools[0].function.parameters`, `messages[2].content[1].source.url`). A
 * dialect's parse says how its body became the router's request, so a 400's
 * `param` and message point into what the caller sent.
 */

/** Where one router message came from in the caller's body. */
export interface MessageOrigin {
  /** `messages[2]`, `system`, or the block it was made of (`messages[2].content[0]`, an Anthropic tool_result). */
  path: string;
  /** For each of its parts, the caller's content index (parts made of some blocks only). */
  parts?: readonly number[];
  /** For each of its tool calls, the caller's path of it relative to `path` (`.content[1]`). */
  toolCalls?: readonly string[];
}

export interface DialectPaths {
  /** Per router message, when messages do not map one to one (else `messages[i]` stays `messages[i]`). */
  origins?: readonly MessageOrigin[];
  /** Applied in order to the whole path once its message part is placed. */
  renames: readonly (readonly [RegExp, string])[];
}

/** Paths the two dialects spell alike: `route` is `model`, the generation parameters sit at the top level, parts are `content`. */
const COMMON: DialectPaths['renames'] = [
  [/^route$/, 'model'],
  [/^params\./, ''],
  [/^(messages\[\d+\])\.parts\[/, '$1.content['],
];

export const OPENAI_PATHS: DialectPaths = {
  renames: [
    ...COMMON,
    [/^user_id$/, 'user'],
    [/^tools\[(\d+)\]\.parameters_json/, 'tools[$1].function.parameters'],
    [/^tools\[(\d+)\]\.(name|description|strict)$/, 'tools[$1].function.$2'],
    [/^tool_choice\.function_name$/, 'tool_choice.function.name'],
    [/^response_format\.schema_json/, 'response_format.json_schema.schema'],
    [/^response_format\.(name|strict)$/, 'response_format.json_schema.$1'],
    [/^(messages\[\d+\]\.tool_calls\[\d+\])\.(name|arguments)/, '$1.function.$2'],
    // An image is one URL (a data URL for inline bytes): every part of it is that URL.
    [/^(messages\[\d+\]\.content\[\d+\])\.image(\.(url|data|media_type))?$/, '$1.image_url.url'],
    [/^(messages\[\d+\]\.content\[\d+\])\.image\.detail$/, '$1.image_url.detail'],
  ],
};

export const ANTHROPIC_PATHS = (origins: readonly MessageOrigin[]): DialectPaths => ({
  origins,
  renames: [
    ...COMMON,
    [/^user_id$/, 'metadata.user_id'],
    [/^stop(?=\[|$)/, 'stop_sequences'],
    [/^tools\[(\d+)\]\.parameters_json/, 'tools[$1].input_schema'],
    [/^tool_choice\.function_name$/, 'tool_choice.name'],
    [/^response_format\.schema_json/, 'output_config.format.schema'],
    [/^response_format(?=\.|$)/, 'output_config.format'],
    [/^(messages\[\d+\]\.content\[\d+\])\.arguments/, '$1.input'],
    [/^(messages\[\d+\]\.content\[\d+\])\.tool_call_id$/, '$1.tool_use_id'],
    // An image block's `source`: `source.url`, `source.data`, `source.media_type`.
    [/^(messages\[\d+\]\.content\[\d+\])\.image(?=\.|$)/, '$1.source'],
  ],
});

/** A router field path as the caller wrote it. */
export function callerField(field: string, paths: DialectPaths): string {
  let f = field;
  const msg = /^messages\[(\d+)\](.*)$/.exec(f);
  const origin = msg ? paths.origins?.[Number(msg[1])] : undefined;
  if (msg && origin) {
    let rest = msg[2]!;
    const part = /^\.parts\[(\d+)\](.*)$/.exec(rest);
    const call = /^\.tool_calls\[(\d+)\](.*)$/.exec(rest);
    const partAt = part ? origin.parts?.[Number(part[1])] : undefined;
    const callAt = call ? origin.toolCalls?.[Number(call[1])] : undefined;
    if (part && partAt !== undefined) rest = `.content[${partAt}]${part[2]}`;
    else if (call && callAt !== undefined) rest = `${callAt}${call[2]}`;
    // A system prompt is one field of the body, whatever part of it the router names.
    f = origin.path === 'system' ? 'system' : origin.path + rest;
  }
  for (const [pattern, replacement] of paths.renames) f = f.replace(pattern, replacement);
  return f;
}

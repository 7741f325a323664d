import type { ChatMessage, ContentPart, ImagePart } from './types';

/** The message's content as parts (the string shorthand is one text part; an empty string is no parts). */
export function contentParts(m: Pick<ChatMessage, 'content'>): ContentPart[] {
  if (typeof m.content === 'string') return m.content.length > 0 ? [{ type: 'text', text: m.content }] : [];
  return m.content;
}

/**
 * The message's text where a provider takes one string (a system prompt, a
 * tool result, OpenAI's non-user turns): its text parts in order, one per
 * line, so separate blocks ("be brief." + "Answer in French.") do not fuse
 * into one word. Images contribute nothing.
 */
export function messageText(m: Pick<ChatMessage, 'content'>): string {
  if (typeof m.content === 'string') return m.content;
  return m.content
    .filter((p) => p.type === 'text')
    .map((p) => (p as { text: string }).text)
    .join('\n');
}

export function messageImages(m: Pick<ChatMessage, 'content'>): ImagePart[] {
  return typeof m.content === 'string' ? [] : m.content.filter((p): p is ImagePart => p.type === 'image');
}

/** `data:<media type>;base64,<data>`: how OpenAI's image_url carries inline bytes. */
export function dataUrl(mediaType: string, base64: string): string {
  return `data:${mediaType};base64,${base64}`;
}

const DATA_URL = /^data:([a-z]+\/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=_-]*)$/i;

/** Splits a base64 data URL; undefined for anything else (an ordinary URL). */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const m = DATA_URL.exec(url);
  return m ? { mediaType: m[1]!.toLowerCase(), data: m[2]! } : undefined;
}

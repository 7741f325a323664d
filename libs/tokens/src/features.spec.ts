import { countTextTokens } from './count';
import {
  ANTHROPIC_IMAGE_MAX,
  ANTHROPIC_TOOL_SYSTEM_PROMPT,
  countImageTokens,
  countToolCallTokens,
  countToolDefinitionTokens,
  OPENAI_IMAGE_MAX,
  OPENAI_TOOLS_PREAMBLE,
  TOOL_CALL_OVERHEAD,
  TOOL_DEFINITION_OVERHEAD,
} from './features';
import { imageDimensions } from './image-size';

describe('countImageTokens', () => {
  it.each([
    // OpenAI's published examples (vision guide): 1024² high → 4 tiles; 2048×4096 → scaled 768×1536 → 6 tiles; low → base.
    [{ width: 1024, height: 1024 }, 'high', 765],
    [{ width: 2048, height: 4096 }, 'high', 1105],
    [{ width: 4096, height: 8192 }, 'low', 85],
    [{ width: 512, height: 512 }, 'auto', 255],
  ] as const)('OpenAI %j detail %s → %d', (size, detail, tokens) => {
    expect(countImageTokens(size, 'openai', detail)).toBe(tokens);
  });

  it('Anthropic: width×height/750 after scaling, capped', () => {
    expect(countImageTokens({ width: 1000, height: 1000 }, 'anthropic')).toBe(1334);
    expect(countImageTokens({ width: 200, height: 200 }, 'anthropic')).toBe(54);
    expect(countImageTokens({ width: 8000, height: 8000 }, 'anthropic')).toBe(ANTHROPIC_IMAGE_MAX);
  });

  it('counts the documented maximum when the size is unknown, which bounds every known size', () => {
    expect(countImageTokens(undefined, 'openai')).toBe(OPENAI_IMAGE_MAX);
    expect(countImageTokens(undefined, 'anthropic')).toBe(ANTHROPIC_IMAGE_MAX);
    for (const w of [1, 300, 768, 1000, 2048, 5000]) {
      for (const h of [1, 300, 768, 1000, 2048, 5000]) {
        expect(countImageTokens({ width: w, height: h }, 'openai')).toBeLessThanOrEqual(OPENAI_IMAGE_MAX);
        expect(countImageTokens({ width: w, height: h }, 'anthropic')).toBeLessThanOrEqual(ANTHROPIC_IMAGE_MAX);
      }
    }
  });
});

describe('tool token counts', () => {
  const tool = { name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } } };

  it('counts name, description and schema with framing, plus the provider preamble', () => {
    const own = TOOL_DEFINITION_OVERHEAD + countTextTokens('get_weather') + countTextTokens('Weather now') + countTextTokens(JSON.stringify(tool.parameters));
    expect(countToolDefinitionTokens([tool], 'openai')).toBe(OPENAI_TOOLS_PREAMBLE + own);
    expect(countToolDefinitionTokens([tool], 'anthropic')).toBe(ANTHROPIC_TOOL_SYSTEM_PROMPT + own);
    expect(countToolDefinitionTokens([], 'anthropic')).toBe(0);
  });

  it('counts tool calls by name and arguments', () => {
    expect(countToolCallTokens([{ name: 'get_weather', arguments: '{"city":"Paris"}' }])).toBe(TOOL_CALL_OVERHEAD + countTextTokens('get_weather') + countTextTokens('{"city":"Paris"}'));
  });
});

/** Minimal file headers, built byte by byte as each format specifies. */
function png(w: number, h: number): Uint8Array {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'ascii');
  b.writeUInt32BE(w, 16);
  b.writeUInt32BE(h, 20);
  return b;
}
function gif(w: number, h: number): Uint8Array {
  const b = Buffer.alloc(13);
  b.write('GIF89a', 0, 'ascii');
  b.writeUInt16LE(w, 6);
  b.writeUInt16LE(h, 8);
  return b;
}
function jpeg(w: number, h: number): Uint8Array {
  // SOI, an APP0 segment (skipped), then SOF0 with height before width.
  const app0 = [0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof = [0xff, 0xc0, 0x00, 0x11, 0x08, h >> 8, h & 0xff, w >> 8, w & 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return Uint8Array.from([0xff, 0xd8, ...app0, ...sof]);
}
function webp(kind: 'VP8 ' | 'VP8L' | 'VP8X', w: number, h: number): Uint8Array {
  const b = Buffer.alloc(40);
  b.write('RIFF', 0, 'ascii');
  b.write('WEBP', 8, 'ascii');
  b.write(kind, 12, 'ascii');
  if (kind === 'VP8 ') {
    b.writeUInt16LE(w, 26);
    b.writeUInt16LE(h, 28);
  } else if (kind === 'VP8L') {
    b[20] = 0x2f;
    b.writeUInt32LE(((w - 1) & 0x3fff) | (((h - 1) & 0x3fff) << 14), 21);
  } else {
    b.writeUIntLE(w - 1, 24, 3);
    b.writeUIntLE(h - 1, 27, 3);
  }
  return b;
}

describe('imageDimensions', () => {
  it.each([
    ['PNG', png(800, 600)],
    ['GIF', gif(800, 600)],
    ['JPEG', jpeg(800, 600)],
    ['WebP lossy', webp('VP8 ', 800, 600)],
    ['WebP lossless', webp('VP8L', 800, 600)],
    ['WebP extended', webp('VP8X', 800, 600)],
  ])('reads %s headers', (_kind, bytes) => {
    expect(imageDimensions(bytes)).toEqual({ width: 800, height: 600 });
  });

  it('returns undefined for other bytes and cut-short headers', () => {
    expect(imageDimensions(Buffer.from('not an image at all, just text'))).toBeUndefined();
    expect(imageDimensions(png(10, 10).subarray(0, 20))).toBeUndefined();
  });
});

import { status } from '@grpc/grpc-js';
import { AppError, invalidArgument } from './app-error';
import { toServerError } from './error-status';
import { boundText, STATUS_BOUNDS } from './status-bounds';
import { decodeStatusDetails, encodeBoundedStatus, STATUS_DETAILS_KEY } from './status-details';

const quiet = { info() {}, warn() {}, error() {} };
const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** Bytes of the trailers grpc-js sends for this status: grpc-message is encodeURI'd, -bin values base64'd. */
function trailerBytes(err: { code: number; details: string; metadata: { get(key: string): unknown[] } }): number {
  const bin = err.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer;
  return String(err.code).length + encodeURI(err.details).length + bin.toString('base64').length;
}

describe('boundText', () => {
  it('leaves text within the bound unchanged', () => {
    expect(boundText('route: unknown route "chat"', 64)).toBe('route: unknown route "chat"');
    expect(boundText('', 8)).toBe('');
  });

  it('cuts longer text to the bound and says the original length', () => {
    const cut = boundText(`unknown route "${'r'.repeat(30_000)}"`, 256);
    expect(utf8(cut)).toBeLessThanOrEqual(256);
    expect(cut.startsWith('unknown route "rrr')).toBe(true);
    expect(cut.endsWith('…(30016 chars)')).toBe(true);
  });

  it('counts the bound in UTF-8 bytes and never splits a code point', () => {
    for (const ch of ['é', '中', '😀']) {
      for (let bound = 20; bound < 40; bound++) {
        const cut = boundText(ch.repeat(1000), bound);
        expect(utf8(cut)).toBeLessThanOrEqual(bound);
        const head = cut.slice(0, cut.indexOf('…'));
        expect([...head].every((c) => c === ch)).toBe(true);
        expect(() => encodeURI(cut)).not.toThrow();
      }
    }
  });

  it('replaces lone surrogates, which would make grpc-js throw when it encodes grpc-message', () => {
    expect(() => encodeURI('a\uD800b')).toThrow(URIError);
    expect(boundText('a\uD800b\uDC00', 64)).toBe('a\uFFFDb\uFFFD');
    expect(boundText('😀\uD83D', 64)).toBe('😀\uFFFD');
    expect(() => encodeURI(boundText(`${'\uDFFF'.repeat(5000)}x`, 100))).not.toThrow();
  });

  it('reads only up to the bound of a huge text', () => {
    const huge = 'x'.repeat(50_000_000);
    const started = performance.now();
    for (let i = 0; i < 100; i++) boundText(huge, 1024);
    // 100 cuts of a 50 MB string: linear in the bound, not the text (a full scan would take seconds).
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('encodeBoundedStatus', () => {
  it('keeps an ordinary status exactly as it was', () => {
    const details = {
      badRequest: [{ field: 'route', description: 'unknown route "chat"' }],
      retryDelayMs: 1500,
      errorInfo: { reason: 'R', domain: 'd', metadata: { attempt_1: 'deployment=a class=OK' } },
    };
    const { message, bytes } = encodeBoundedStatus(status.INVALID_ARGUMENT, 'route: unknown route "chat"', details);
    expect(message).toBe('route: unknown route "chat"');
    expect(decodeStatusDetails(bytes)).toEqual({ code: status.INVALID_ARGUMENT, message, details });
  });

  it('cuts the message and every detail string, saying each original length', () => {
    const big = (c: string) => c.repeat(100_000);
    const { message, bytes } = encodeBoundedStatus(status.INVALID_ARGUMENT, big('m'), {
      badRequest: [{ field: big('f'), description: big('d') }],
      quotaFailure: [{ subject: big('s'), description: big('q') }],
      preconditionFailure: [{ type: big('t'), subject: big('u'), description: big('p') }],
      errorInfo: { reason: big('r'), domain: big('o'), metadata: { [big('k')]: big('v') } },
      resourceInfo: { resourceType: big('y'), resourceName: big('n'), owner: big('w'), description: big('e') },
    });
    expect(utf8(message)).toBeLessThanOrEqual(STATUS_BOUNDS.messageBytes);
    // 15 strings of 256 bytes do not all fit in 3 KiB: whole entries were left out, and the message says so.
    expect(message).toMatch(/^m+…\(100000 chars\) \(\d+ detail entries omitted\)$/);
    expect(bytes.length).toBeLessThanOrEqual(STATUS_BOUNDS.statusBytes);
    const { details } = decodeStatusDetails(bytes);
    const strings = [
      ...(details.badRequest ?? []).flatMap((v) => [v.field, v.description]),
      ...(details.quotaFailure ?? []).flatMap((v) => [v.subject, v.description]),
      ...(details.preconditionFailure ?? []).flatMap((v) => [v.type, v.subject, v.description]),
      details.errorInfo!.reason,
      details.errorInfo!.domain,
      ...Object.entries(details.errorInfo!.metadata).flat(),
      ...Object.values(details.resourceInfo!),
    ];
    expect(strings.length).toBeGreaterThanOrEqual(6);
    for (const s of strings) {
      expect(utf8(s)).toBeLessThanOrEqual(STATUS_BOUNDS.detailStringBytes);
      expect(s.endsWith('…(100000 chars)')).toBe(true);
    }
  });

  it('caps the number of entries and keeps the total within the bound, saying how many were left out', () => {
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) metadata[`attempt_${i}`] = `deployment=d${i} class=UNAVAILABLE latency_ms=12 upstream_request_id=req-${i}`;
    const badRequest = Array.from({ length: 5000 }, (_, i) => ({ field: `messages[${i}].content`, description: 'must not be empty' }));
    const { message, bytes } = encodeBoundedStatus(status.UNAVAILABLE, 'every candidate failed', {
      badRequest,
      errorInfo: { reason: 'ALL_CANDIDATES_FAILED', domain: 'switchyard.router', metadata },
    });
    expect(bytes.length).toBeLessThanOrEqual(STATUS_BOUNDS.statusBytes);
    const { details } = decodeStatusDetails(bytes);
    const kept = details.badRequest!.length + Object.keys(details.errorInfo!.metadata).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(2 * STATUS_BOUNDS.entriesPerList);
    // The first entries of each list survive: they are the ones handlers put first.
    expect(details.badRequest![0]!.field).toBe('messages[0].content');
    expect(details.errorInfo!.metadata.attempt_0).toContain('deployment=d0');
    expect(message).toBe(`every candidate failed (${10_000 - kept} detail entries omitted)`);
  });

  it('fits the worst case of every string at its bound in 4-byte characters', () => {
    const max = '😀'.repeat(100_000);
    const many = <T>(make: () => T) => Array.from({ length: 1000 }, make);
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) metadata[`${i}${max}`] = max;
    const { message, bytes } = encodeBoundedStatus(status.FAILED_PRECONDITION, max, {
      badRequest: many(() => ({ field: max, description: max })),
      quotaFailure: many(() => ({ subject: max, description: max })),
      preconditionFailure: many(() => ({ type: max, subject: max, description: max })),
      retryDelayMs: 1e300,
      errorInfo: { reason: max, domain: max, metadata },
      resourceInfo: { resourceType: max, resourceName: max, owner: max, description: max },
    });
    expect(bytes.length).toBeLessThanOrEqual(STATUS_BOUNDS.statusBytes);
    // What grpc-js puts on the wire for the message: percent-encoded UTF-8.
    expect(encodeURI(message).length).toBeLessThanOrEqual(3 * STATUS_BOUNDS.messageBytes);
    expect(decodeStatusDetails(bytes).details.resourceInfo!.resourceName.endsWith('…(200000 chars)')).toBe(true);
  });

  it('drops a retry delay that cannot be encoded instead of failing', () => {
    for (const retryDelayMs of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const { bytes } = encodeBoundedStatus(status.UNAVAILABLE, 'down', { retryDelayMs });
      expect(decodeStatusDetails(bytes).details.retryDelayMs).toBeUndefined();
    }
    expect(decodeStatusDetails(encodeBoundedStatus(status.UNAVAILABLE, 'down', { retryDelayMs: 1e300 }).bytes).details.retryDelayMs).toBeGreaterThan(1e15);
  });
});

describe('toServerError', () => {
  it('sends a 100 KB route name as a bounded status whose whole trailer stays under 8 KiB', () => {
    const name = 'r'.repeat(100_000);
    const err = toServerError(invalidArgument('route', `unknown route "${name}"`), '/x/Y', quiet);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(err.message);
    expect(utf8(err.details!)).toBeLessThanOrEqual(STATUS_BOUNDS.messageBytes);
    expect(err.details).toMatch(/^route: unknown route "r+…\(100023 chars\)$/);
    expect(trailerBytes(err as never)).toBeLessThan(8 * 1024);
    const decoded = decodeStatusDetails(err.metadata!.get(STATUS_DETAILS_KEY)[0] as Buffer);
    expect(decoded.message).toBe(err.details);
    expect(decoded.details.badRequest![0]!.description).toMatch(/…\(100016 chars\)$/);
  });

  it('still answers with the code and message when a detail cannot be encoded', () => {
    const errors: unknown[] = [];
    const logger = { ...quiet, error: (obj: unknown) => errors.push(obj) };
    // Not a string: protobuf refuses it. Handlers are typed, but a status must survive any mistake.
    const broken = new AppError(status.NOT_FOUND, 'no such thing', { resourceInfo: { resourceType: 7 as never, resourceName: 'x' } });
    const err = toServerError(broken, '/x/Y', logger);
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toBe('no such thing');
    expect(errors).toHaveLength(1);
  });

  it('answers an AppError thrown again (a reused refusal) with the same status each time, each with its own trailers', () => {
    const refusal = new AppError(status.RESOURCE_EXHAUSTED, 'at capacity', { retryDelayMs: 250, errorInfo: { reason: 'ROUTER_OVERLOADED', domain: 'switchyard', metadata: {} } });
    const [first, second] = [toServerError(refusal, '/x/Y', quiet), toServerError(refusal, '/x/Y', quiet)];
    for (const err of [first, second]) {
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: 'at capacity', message: 'at capacity' });
      const decoded = decodeStatusDetails(err.metadata!.get(STATUS_DETAILS_KEY)[0] as Buffer);
      expect(decoded.details).toMatchObject({ retryDelayMs: 250, errorInfo: { reason: 'ROUTER_OVERLOADED' } });
    }
    expect(second.metadata).not.toBe(first.metadata);
  });
});

import type { ErrorDetails } from './app-error';

/**
 * How much one error may put into the HTTP/2 trailers. A status message and
 * its google.rpc details travel as trailers (`grpc-message` percent-encoded,
 * `grpc-status-details-bin` base64), and a trailer block larger than what the
 * peer accepts is not delivered: the caller sees no status until its deadline,
 * and other calls on the same connection stall with it. Caller input (a route
 * name, a field value) ends up in messages and details, so every string is cut
 * here, once, before it can reach the wire.
 *
 * The budget is the smallest limit a caller of ours may run with: gRPC C-core
 * (Python, C++, Ruby clients) rejects metadata above 8 KiB by default (soft
 * limit; grpc-js and Node's HTTP/2 accept 64 KiB, Envoy 60 KiB). Worst case
 * with these bounds: `grpc-message` ≤ 3 × 1024 bytes (each UTF-8 byte
 * percent-encodes to at most 3), `grpc-status-details-bin` ≤ 4/3 × 3072 =
 * 4096 bytes, plus `grpc-status` and HPACK's 32 bytes per entry: under 7.3 KiB.
 */
export const STATUS_BOUNDS = {
  /** UTF-8 bytes of the status message, a note of omitted detail entries included. */
  messageBytes: 1024,
  /** UTF-8 bytes of each string in a detail: field, description, subject, ErrorInfo key and value, … */
  detailStringBytes: 256,
  /** Entries kept per repeated detail (each violation list, the ErrorInfo metadata map). */
  entriesPerList: 32,
  /** Bytes of the encoded google.rpc.Status, message included. */
  statusBytes: 3072,
} as const;

function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  // A lone surrogate is sent as U+FFFD, 3 bytes.
  return codePoint < 0x10000 ? 3 : 4;
}

/**
 * The longest prefix of `text` that is at most `maxBytes` of UTF-8, cut
 * between code points, with each lone surrogate replaced by U+FFFD; and
 * whether that prefix is the whole text. Stops reading at the bound.
 */
function wellFormedPrefix(text: string, maxBytes: number): { prefix: string; whole: boolean } {
  let bytes = 0;
  let done = '';
  let start = 0;
  let end = 0;
  for (const ch of text) {
    const codePoint = ch.codePointAt(0)!;
    bytes += utf8Length(codePoint);
    if (bytes > maxBytes) return { prefix: done + text.slice(start, end), whole: false };
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
      done += `${text.slice(start, end)}\uFFFD`;
      start = end + 1;
    }
    end += ch.length;
  }
  return { prefix: done + text.slice(start, end), whole: true };
}

/**
 * `text` cut to at most `maxBytes` of UTF-8, ending in "…(N chars)" with its
 * original length when cut, and well-formed: a lone surrogate becomes U+FFFD
 * (grpc-js encodes grpc-message with encodeURI, which throws on one). Costs
 * O(maxBytes) however long `text` is.
 */
export function boundText(text: string, maxBytes: number): string {
  const { prefix, whole } = wellFormedPrefix(text, maxBytes);
  if (whole) return prefix;
  const marker = `…(${text.length} chars)`;
  return wellFormedPrefix(text, Math.max(0, maxBytes - Buffer.byteLength(marker))).prefix + marker;
}

/** Details with every string cut to `STATUS_BOUNDS.detailStringBytes`, every list to `entriesPerList`. */
export function boundDetailStrings(details: ErrorDetails): { details: ErrorDetails; omitted: number } {
  const cut = (s: string) => boundText(s, STATUS_BOUNDS.detailStringBytes);
  let omitted = 0;
  const keep = <T>(list: readonly T[]): T[] => {
    omitted += Math.max(0, list.length - STATUS_BOUNDS.entriesPerList);
    return list.slice(0, STATUS_BOUNDS.entriesPerList);
  };
  const bounded: ErrorDetails = {};
  if (details.badRequest) bounded.badRequest = keep(details.badRequest).map((v) => ({ field: cut(v.field), description: cut(v.description) }));
  if (details.quotaFailure) bounded.quotaFailure = keep(details.quotaFailure).map((v) => ({ subject: cut(v.subject), description: cut(v.description) }));
  if (details.preconditionFailure) {
    bounded.preconditionFailure = keep(details.preconditionFailure).map((v) => ({ type: cut(v.type), subject: cut(v.subject), description: cut(v.description) }));
  }
  // NaN or Infinity cannot become a Duration (BigInt throws): a meaningless hint is dropped, not sent.
  if (details.retryDelayMs !== undefined && Number.isFinite(details.retryDelayMs)) {
    // Beyond int64 seconds protobuf refuses to encode; a delay that long means "not soon" either way.
    bounded.retryDelayMs = Math.min(details.retryDelayMs, Number.MAX_SAFE_INTEGER);
  }
  if (details.errorInfo) {
    const { reason, domain, metadata } = details.errorInfo;
    const entries = keep(Object.entries(metadata ?? {}));
    const boundedMetadata: Record<string, string> = {};
    // Two keys that differ only beyond the bound collapse into one; the later value wins, as in any map.
    for (const [key, value] of entries) boundedMetadata[cut(key)] = cut(String(value));
    bounded.errorInfo = { reason: cut(reason), domain: cut(domain), metadata: boundedMetadata };
  }
  if (details.resourceInfo) {
    const { resourceType, resourceName, owner, description } = details.resourceInfo;
    bounded.resourceInfo = { resourceType: cut(resourceType), resourceName: cut(resourceName) };
    if (owner !== undefined) bounded.resourceInfo.owner = cut(owner);
    if (description !== undefined) bounded.resourceInfo.description = cut(description);
  }
  return { details: bounded, omitted };
}

/**
 * Removes the last entry of the longest list (ErrorInfo metadata counts as
 * one); false when every list is already empty. Dropping from the longest
 * keeps the first entries of each kind, which are the ones handlers list first.
 */
export function dropOneEntry(details: ErrorDetails): boolean {
  const metadata = details.errorInfo?.metadata;
  const metadataKeys = metadata ? Object.keys(metadata) : [];
  const lists = [details.badRequest, details.quotaFailure, details.preconditionFailure];
  const longest = Math.max(metadataKeys.length, ...lists.map((l) => l?.length ?? 0));
  if (longest === 0) return false;
  if (metadata && metadataKeys.length === longest) {
    delete metadata[metadataKeys[metadataKeys.length - 1]!];
    return true;
  }
  lists.find((l) => l?.length === longest)!.pop();
  return true;
}

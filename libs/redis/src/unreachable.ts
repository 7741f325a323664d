/**
 * Whether a failed Redis call means "Redis cannot serve" (fall back) rather
 * than "the script is wrong" (a bug: surface it). Anything that is not a
 * Redis reply (connection closed, stream not writeable, command timeout) is
 * unreachability; so are the replies of a server that cannot serve yet.
 */
export function isUnreachable(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  if (e?.name !== 'ReplyError') return true;
  return /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)/.test(e.message ?? '');
}

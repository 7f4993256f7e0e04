/**
 * Bounded reading of a fetch `Response` body, so a hostile or broken server cannot make the client
 * buffer an unbounded amount of memory.
 */

/** Result of {@link readBodyCapped}: the decoded text, or a note that the cap was hit. */
export type CappedBody = { ok: true; text: string } | { ok: false; reason: 'too_large'; limit: number };

/**
 * Reads `response.body` as UTF-8 text, stopping (and cancelling the stream, which frees the
 * socket) as soon as more than `maxBytes` arrive or `content-length` already announces more.
 * Invalid UTF-8 becomes U+FFFD instead of throwing: the body is data, never trusted to be well formed.
 * Stream errors (reset, abort, timeout) propagate to the caller.
 */
export async function readBodyCapped(response: Response, maxBytes: number): Promise<CappedBody> {
  const body = response.body;
  if (body === null) return { ok: true, text: '' };
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await body.cancel().catch(() => {});
    return { ok: false, reason: 'too_large', limit: maxBytes };
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        return { ok: false, reason: 'too_large', limit: maxBytes };
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, text: new TextDecoder('utf-8', { fatal: false }).decode(bytes) };
}

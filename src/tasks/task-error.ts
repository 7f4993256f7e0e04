/** Longest `SyncTask.error` text. */
export const MAX_TASK_ERROR_LENGTH = 200;

const CODE = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

// Order matters: specific shapes first, then the catch-all for long opaque strings.
const REDACTIONS: [RegExp, string][] = [
  [/\b(Bearer|Basic|Token)\s+[^\s,;"'}]+/gi, '$1 [redacted]'],
  [/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g, '[redacted]'],
  [
    /\b((?:access|refresh|id)[_-]?token|token|client[_-]?secret|secret|password|passwd|api[_-]?key|authorization|cookie)(["']?\s*[:=]\s*["']?)[^\s,;&"'}]+/gi,
    '$1$2[redacted]',
  ],
  [/[A-Za-z0-9_\-+/=]{32,}/g, '[redacted]'],
];

/**
 * The short, secret-free text a failed task records: the error's `code` when it has a plain one
 * (`ERR_HTTP_TIMEOUT`, `ECONNRESET`, `rate_limited`), else its message with anything shaped like
 * a credential (Bearer/Basic values, JWTs, `token=...`, long opaque strings) masked, truncated to
 * {@link MAX_TASK_ERROR_LENGTH} characters. Hosts' error messages are not trusted to be clean.
 */
export function taskErrorText(error: unknown): string {
  let raw: string;
  try {
    if (typeof error === 'object' && error !== null) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && CODE.test(code)) return code;
    }
    raw = error instanceof Error ? `${String(error.name)}: ${String(error.message)}` : typeof error === 'string' ? error : 'non-error thrown';
  } catch {
    // Throwing getters or Proxy traps: the task still records a failure instead of staying `running`.
    raw = 'non-error thrown';
  }
  let text = raw.replace(/\s+/g, ' ').trim();
  for (const [pattern, replacement] of REDACTIONS) text = text.replace(pattern, replacement);
  return text.length <= MAX_TASK_ERROR_LENGTH ? text : `${text.slice(0, MAX_TASK_ERROR_LENGTH - 1)}…`;
}

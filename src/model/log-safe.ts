// Peer-supplied text on its way into a log line. A proxy's NACK message, a control plane's error
// message, a health-check detail, a request's path: any of them could carry a newline (a forged
// second log line), terminal escape sequences (rewriting what an operator sees), or bidirectional
// overrides (text that reads differently than it is). logSafe keeps printable text as it is and
// writes everything else as a visible escape, so one event stays one honest line; long text is cut.

// C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates, BOM.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\\]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

/** `value` as one line of printable text, at most `maxChars` characters of it. */
export function logSafe(value: unknown, maxChars = 1024): string {
  let s = typeof value === "string" ? value : value instanceof Error ? value.message : String(value);
  let cut = "";
  if (s.length > maxChars) {
    cut = `…(${s.length - maxChars} more characters)`;
    s = s.slice(0, maxChars);
  }
  return s.replace(UNSAFE, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) + cut;
}

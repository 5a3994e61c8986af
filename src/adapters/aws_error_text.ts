/**
 * The one scrubber for text an AWS endpoint sends back (SQS, DynamoDB, IMDS) before it reaches
 * an error message, a log line or /readyz. Signature errors echo the canonical request and the
 * string to sign, session token included (SQS's SignatureDoesNotMatch, DynamoDB's
 * InvalidSignatureException); a proxy or an emulator may echo headers. Everything from an echo
 * on is dropped, token- and signature-like material elsewhere is redacted, and the rest is one
 * line of at most 300 characters (docs/failure-handling.md).
 */

/** Where an echoed request starts: nothing after it is kept. */
const ECHO =
  /The Canonical String|The String-to-Sign|<CanonicalRequest|<StringToSign|canonical request|string to sign/i;

/** Material that signs or authorises a request, wherever it appears. */
const SECRETS: Array<[RegExp, string]> = [
  [/(x-amz-security-token|authorization)\s*[:=]\s*[^\s&'",;]+/gi, "$1=<redacted>"],
  [/((?:x-amz-)?signature|credential)\s*=\s*[^\s&'",;]+/gi, "$1=<redacted>"],
  // Signatures and payload hashes (SHA-256 hex); session tokens (long base64).
  [/\b[0-9a-f]{64}\b/gi, "<redacted>"],
  [/[A-Za-z0-9+/_-]{80,}={0,2}/g, "<redacted>"],
];

const MAX_CHARS = 300;

/** An AWS error text fit for a log line: no echoed request, no token, one line, capped. */
export function scrubAwsText(text: string): string {
  const echo = text.search(ECHO);
  let kept = echo >= 0 ? text.slice(0, echo) : text;
  for (const [pattern, replacement] of SECRETS) kept = kept.replace(pattern, replacement);
  kept = kept.replace(/\s+/g, " ").trim();
  return kept.length > MAX_CHARS ? `${kept.slice(0, MAX_CHARS)}…` : kept;
}

/**
 * Text SQS will store: a message attribute value (or body) must be well-formed
 * Unicode of the allowed characters #x9 | #xA | #xD | #x20-#xD7FF |
 * #xE000-#xFFFD | #x10000-#x10FFFF, and an attribute value may not be empty.
 * Anything else makes SQS refuse the whole send.
 */

/** Stands in for a character SQS would refuse (a lone surrogate, a control character). */
const REPLACEMENT = "\uFFFD";

/** Whether SQS accepts this code point in a body or a String attribute value. */
export function isSqsCodePoint(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * `text` made acceptable to SQS as an attribute value: each refused character
 * (lone surrogates included) becomes U+FFFD, the result is cut to `maxChars`
 * code points (the last one an ellipsis when cut, so no pair is ever split),
 * and an empty result becomes `fallback`.
 */
export function sqsAttributeText(text: string, maxChars: number, fallback: string): string {
  const out: string[] = [];
  let cut = false;
  // for..of walks code points; a lone surrogate comes out alone, and is refused below.
  for (const char of text) {
    if (out.length === maxChars) {
      cut = true;
      break;
    }
    out.push(isSqsCodePoint(char.codePointAt(0)!) ? char : REPLACEMENT);
  }
  if (cut) out[maxChars - 1] = "…";
  const result = out.join("");
  return result === "" ? fallback : result;
}

/** A minimal form of `text`: printable ASCII only (others become "?"), at most `maxChars`. */
export function asciiText(text: string, maxChars: number, fallback: string): string {
  let out = "";
  for (const char of text) {
    if (out.length >= maxChars) break;
    const cp = char.codePointAt(0)!;
    out += cp >= 0x20 && cp <= 0x7e ? char : "?";
  }
  return out === "" ? fallback : out;
}

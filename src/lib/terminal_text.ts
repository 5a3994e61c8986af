/**
 * Text made inert for a terminal or a log reader: every character that could move the cursor,
 * end a line, start an escape sequence or reorder what is shown is written as a visible escape.
 * The escapes are JSON's, so a JSON document passed through stays valid and decodes to the same
 * value: `escapeTerminal(JSON.stringify(x))` is the safe way to print JSON.
 */

/**
 * C0 controls (ESC among them), DEL, C1 controls (U+009B is CSI), the Arabic letter mark, the
 * left-to-right and right-to-left marks, the line and paragraph separators, the bidirectional
 * embeddings, overrides and isolates, and lone surrogates.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- control characters are exactly what it looks for
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(char: string): string {
  return SHORT[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** `text` with each unsafe character as `\n`, `\r`, `\t` or `\uXXXX`; other text unchanged. */
export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

import assert from "node:assert/strict";
import { escapeTerminal } from "../../src/lib/terminal_text.ts";

/** A raw character a terminal acts on (and a lone surrogate). */
const RAW =
  // deno-lint-ignore no-control-regex -- the test looks for raw control characters
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const hasUnsafeText = (text: string) => RAW.test(text);

const rows: Array<[string, string, string]> = [
  ["plain text is unchanged", "order 42 — naïve ✓ 😀", "order 42 — naïve ✓ 😀"],
  ["a backslash is unchanged", 'a\\nb "q"', 'a\\nb "q"'],
  ["line breaks and tabs get short escapes", "a\nb\rc\td", "a\\nb\\rc\\td"],
  ["NUL, BEL and ESC", "\u0000\u0007\u001b[2J", "\\u0000\\u0007\\u001b[2J"],
  ["DEL", "x\u007fy", "x\\u007fy"],
  ["C1 controls, CSI among them", "\u0080\u009b31m\u009f", "\\u0080\\u009b31m\\u009f"],
  [
    "bidi overrides and embeddings",
    "\u202aa\u202bb\u202cc\u202dd\u202ee",
    "\\u202aa\\u202bb\\u202cc\\u202dd\\u202ee",
  ],
  ["bidi isolates", "\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"],
  ["marks: LRM, RLM, ALM", "\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"],
  ["line and paragraph separators", "\u2028\u2029", "\\u2028\\u2029"],
  ["lone surrogates, a pair kept", "\ud800 \udc00 \ud83d\ude00", "\\ud800 \\udc00 😀"],
];
for (const [name, input, expected] of rows) {
  Deno.test(`escapeTerminal: ${name}`, () => assert.equal(escapeTerminal(input), expected));
}

/** Every code point a terminal or a log viewer acts on (and lone surrogates). */
function unsafeCodePoints(): number[] {
  const out: number[] = [];
  for (let cp = 0; cp <= 0x9f; cp++) if (cp < 0x20 || cp >= 0x7f) out.push(cp);
  out.push(0x061c, 0x200e, 0x200f, 0x2028, 0x2029);
  for (let cp = 0x202a; cp <= 0x202e; cp++) out.push(cp);
  for (let cp = 0x2066; cp <= 0x2069; cp++) out.push(cp);
  out.push(0xd800, 0xdbff, 0xdc00, 0xdfff);
  return out;
}

Deno.test("escapeTerminal: every unsafe character comes out as a visible escape, none raw", () => {
  for (const cp of unsafeCodePoints()) {
    const text = `a${String.fromCharCode(cp)}b`;
    const out = escapeTerminal(text);
    assert.ok(hasUnsafeText(text), cp.toString(16));
    assert.ok(!hasUnsafeText(out), `U+${cp.toString(16)} → ${JSON.stringify(out)}`);
    assert.match(out, /^a\\(u[0-9a-f]{4}|n|r|t)b$/);
  }
});

Deno.test("escapeTerminal: JSON passed through stays valid and decodes to the same value", () => {
  const value = {
    body: String.fromCharCode(...unsafeCodePoints()),
    [`key\u009b\u202e`]: ["\u001b]0;title\u0007", { nested: "\u2066x\u2069" }],
  };
  const text = escapeTerminal(JSON.stringify(value));
  assert.ok(!hasUnsafeText(text), text);
  assert.deepEqual(JSON.parse(text), value);
});

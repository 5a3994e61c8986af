import assert from "node:assert/strict";
import { asciiText, isSqsCodePoint, sqsAttributeText } from "../../src/lib/sqs_text.ts";

/** Every code point of `text` is one SQS accepts, and no surrogate is alone. */
function acceptable(text: string): boolean {
  return text !== "" && [...text].every((c) => isSqsCodePoint(c.codePointAt(0)!));
}

Deno.test("sqs text: rows of refused characters and cuts", () => {
  const rows: Array<[string, number, string]> = [
    ["plain reason", 256, "plain reason"],
    ["lone \ud83d high", 256, "lone \ufffd high"],
    ["lone \ude00 low", 256, "lone \ufffd low"],
    ["ctrl \u0000\u0001\u001b[2J", 256, "ctrl \ufffd\ufffd\ufffd[2J"],
    ["tab\tlf\ncr\r", 256, "tab\tlf\ncr\r"],
    ["nonchars \ufffe\uffff", 256, "nonchars \ufffd\ufffd"],
    ["😀😀😀", 2, "😀…"],
    ["abc", 3, "abc"],
    ["abcd", 3, "ab…"],
    ["", 256, "none"],
  ];
  for (const [input, max, want] of rows) {
    const got = sqsAttributeText(input, max, "none");
    assert.equal(got, want, JSON.stringify(input));
    assert.ok(acceptable(got), JSON.stringify(got));
    assert.ok([...got].length <= max);
  }
});

Deno.test("sqs text: a cut never splits a surrogate pair", () => {
  for (let max = 1; max < 12; max++) {
    assert.ok(acceptable(sqsAttributeText("a😀".repeat(20), max, "x")), String(max));
  }
});

Deno.test("sqs text: the minimal ASCII form", () => {
  assert.equal(
    asciiText("invalid JSON: Unexpected token '\ud83d', \"😀x\"", 256, "-"),
    "invalid JSON: Unexpected token '?', \"?x\"",
  );
  assert.equal(asciiText("\u0000", 256, "-"), "?");
  assert.equal(asciiText("", 256, "-"), "-");
  assert.equal(asciiText("abcdef", 3, "-"), "abc");
});

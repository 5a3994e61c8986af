import assert from "node:assert/strict";
import { attributeBytes, messageBytes, utf8Bytes } from "../../src/lib/sqs_size.ts";

const encoder = new TextEncoder();

Deno.test("sqs size: utf8Bytes agrees with TextEncoder, lone surrogates as U+FFFD", () => {
  const samples = [
    "",
    "abc",
    "naïve",
    "€uro",
    "😀😀",
    "\ud800",
    "a\udc00b",
    "\ud83d",
    "x".repeat(1000),
  ];
  let seed = 7;
  for (let i = 0; i < 200; i++) {
    let text = "";
    for (let j = 0; j < 20; j++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      text += String.fromCharCode(seed % 0x10000);
    }
    samples.push(text);
  }
  for (const text of samples) {
    assert.equal(utf8Bytes(text), encoder.encode(text).length, JSON.stringify(text));
  }
});

Deno.test("sqs size: a message counts its body and each attribute's name, type and value", () => {
  assert.equal(attributeBytes("k", "vé"), 1 + 6 + 3);
  assert.equal(attributeBytes("n", { DataType: "Number", StringValue: "42" }), 1 + 6 + 2);
  assert.equal(attributeBytes("b", { DataType: "Binary", BinaryValue: "AAEC" }), 1 + 6 + 4);
  assert.equal(
    messageBytes("body", { k: "vé", n: { DataType: "Number", StringValue: "42" } }),
    4 + 10 + 9,
  );
});

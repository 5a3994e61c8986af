/** lib/http1_answer_head.ts: heads as servers write them, row by row. */
import assert from "node:assert/strict";
import { decodeFields, parseAnswerHead } from "../../src/lib/http1_answer_head.ts";

const bytesOf = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0));

function parse(text: string) {
  const bytes = bytesOf(`junk${text}more`);
  const head = parseAnswerHead(bytes, 4, 4 + text.length);
  return { ...head, fields: decodeFields(head.fields) };
}

Deno.test("http1 answer head: status, framing fields and reuse, row by row", () => {
  const rows: [string, number, boolean, string | undefined, string | undefined][] = [
    ["HTTP/1.1 200 OK\r\nContent-Length: 12", 200, true, undefined, "12"],
    ["HTTP/1.1 204", 204, true, undefined, undefined],
    [
      "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 2",
      503,
      false,
      undefined,
      undefined,
    ],
    [
      "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\nConnection: keep-alive",
      200,
      true,
      "chunked",
      undefined,
    ],
    ["HTTP/1.0 200 OK\r\ncontent-length: 3", 200, false, undefined, "3"],
    ["HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 3", 200, true, undefined, "3"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length : 3", 200, true, undefined, "3,3"],
    ["HTTP/1.1 100 Continue", 100, true, undefined, undefined],
    [
      "HTTP/1.1 200 OK\r\ncontent-lengthx: 9\r\nx-connection: close",
      200,
      true,
      undefined,
      undefined,
    ],
  ];
  for (const [text, status, keepAlive, coding, length] of rows) {
    const head = parse(text);
    assert.deepEqual(
      { status: head.status, keepAlive: head.keepAlive, coding: head.coding, length: head.length },
      { status, keepAlive, coding, length },
      JSON.stringify(text),
    );
  }
});

Deno.test("http1 answer head: the other fields are decoded on demand, names lower-cased", () => {
  const head = parse("HTTP/1.1 302 Found\r\nLocation:  /next \r\nX-Amzn-RequestId: r-1");
  assert.deepEqual(head.fields, [["location", "/next"], ["x-amzn-requestid", "r-1"]]);
  assert.deepEqual(parse("HTTP/1.1 200 OK").fields, []);
});

Deno.test("http1 answer head: what is not an HTTP/1.x answer is a TypeError", () => {
  for (
    const bad of [
      "HTTP/2 200 OK",
      "HTTP/1.1 20 OK",
      "HTTP/1.1 2x0 OK",
      "SSH-2.0-OpenSSH",
      "HTTP/1.1 200OK",
    ]
  ) {
    assert.throws(() => parse(bad), /not an HTTP\/1.x answer/, bad);
  }
  assert.throws(() => parse("HTTP/1.1 200 OK\r\nno colon here"), /malformed answer header/);
  assert.throws(() => parse("HTTP/1.1 200 OK\r\n: empty name"), /malformed answer header/);
});

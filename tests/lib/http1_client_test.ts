/**
 * lib/http1_client.ts against a scripted HTTP/1.1 server on a real loopback listener: each
 * request is answered with the bytes a test writes, in the pieces it chooses, so framing,
 * reuse and the failure paths are driven as a real server would drive them.
 */
import assert from "node:assert/strict";
import { framingOf, http1Client, proxyVariable } from "../../src/lib/http1_client.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { fetchNoRedirect, readTextCapped, readTextPrefix } from "../../src/lib/guarded_fetch.ts";
import { HttpError, RedirectError } from "../../src/lib/errors.ts";

interface Seen {
  /** The connection's number (from 0), and the request's head and body as received. */
  conn: number;
  head: string;
  body: string;
}

/** What the server does with one request: pieces to write (a pause between them), then maybe close. */
interface Reply {
  pieces: string[];
  close?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes as one char each, so lengths count bytes (the body is decoded as UTF-8 after). */
const asBinary = (bytes: Uint8Array) => String.fromCharCode(...bytes);
const fromBinary = (text: string) =>
  decoder.decode(Uint8Array.from(text, (char) => char.charCodeAt(0)));

async function readRequest(conn: Deno.Conn, carried: { bytes: string }) {
  const buffer = new Uint8Array(65536);
  for (;;) {
    const end = carried.bytes.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = carried.bytes.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (carried.bytes.length >= end + 4 + length) {
        const body = fromBinary(carried.bytes.slice(end + 4, end + 4 + length));
        carried.bytes = carried.bytes.slice(end + 4 + length);
        return { head, body };
      }
    }
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return undefined;
    carried.bytes += asBinary(buffer.subarray(0, n));
  }
}

async function serveConn(conn: Deno.Conn, index: number, script: Script, seen: Seen[]) {
  const carried = { bytes: "" };
  try {
    for (;;) {
      const request = await readRequest(conn, carried);
      if (!request) return;
      seen.push({ conn: index, ...request });
      const reply = await script(request.head, seen.length - 1);
      for (const piece of reply.pieces) {
        await conn.write(encoder.encode(piece));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      if (reply.close) return;
    }
  } catch {
    // the client closed mid-answer
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

type Script = (head: string, index: number) => Reply | Promise<Reply>;

async function withServer(
  script: Script,
  fn: (base: string, seen: Seen[], client: ReturnType<typeof makeClient>) => Promise<void>,
  clientOptions: { bufferBytes?: number; idleMs?: number } = {},
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen[] = [];
  const conns: Promise<void>[] = [];
  const open = new Set<Deno.Conn>();
  const accepting = (async () => {
    for (let index = 0;; index++) {
      const conn = await listener.accept().catch(() => undefined);
      if (!conn) return;
      open.add(conn);
      conns.push(serveConn(conn, index, script, seen).finally(() => open.delete(conn)));
    }
  })();
  const client = makeClient(clientOptions);
  try {
    await fn(`http://127.0.0.1:${listener.addr.port}`, seen, client);
  } finally {
    client.close();
    listener.close();
    for (const conn of open) {
      try {
        conn.close();
      } catch {
        // closed
      }
    }
    await accepting;
    await Promise.all(conns);
  }
}

function makeClient(options: { bufferBytes?: number; idleMs?: number }) {
  const fallbackCalls: string[] = [];
  const client = http1Client({
    connect: (hostname, port) => Deno.connect({ hostname, port }),
    fallback: (input) => {
      fallbackCalls.push(String(input));
      return Promise.resolve(new Response("from the fallback"));
    },
    monotonic: systemClock.monotonic,
    ...options,
  });
  return { ...client, fallbackCalls };
}

const ok = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${
    encoder.encode(body).length
  }\r\n${extra}\r\n${body}`;

const manual = (init: RequestInit = {}): RequestInit => ({ redirect: "manual", ...init });

Deno.test("http1 client: a POST's head and body as sent, the answer as a Response", async () => {
  await withServer(() => ({ pieces: [ok("accepted ✓", "x-id: 7\r\n")] }), async (base, seen, c) => {
    const response = await c.fetch(
      `${base}/ingest?a=1`,
      manual({
        method: "POST",
        headers: { "content-type": "application/json", "x-trace": "t1" },
        body: '{"name":"Zoë"}',
      }),
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-id"), "7");
    assert.equal(await response.text(), "accepted ✓");
    const head = seen[0]!.head.split("\r\n");
    assert.equal(head[0], "POST /ingest?a=1 HTTP/1.1");
    assert.ok(head.includes(`host: ${new URL(base).host}`));
    assert.ok(head.includes("content-type: application/json"));
    assert.ok(head.includes("x-trace: t1"));
    assert.ok(head.includes(`content-length: ${encoder.encode('{"name":"Zoë"}').length}`));
    assert.equal(seen[0]!.body, '{"name":"Zoë"}');
  });
});

Deno.test("http1 client: answers read whole reuse one connection; Connection: close does not", async () => {
  const script: Script = (_, i) => ({
    pieces: [ok(`n${i}`, i === 1 ? "connection: close\r\n" : "")],
    close: i === 1,
  });
  await withServer(script, async (base, seen, c) => {
    for (let i = 0; i < 4; i++) {
      const response = await c.fetch(`${base}/x`, manual());
      assert.equal(await response.text(), `n${i}`);
    }
    assert.deepEqual(seen.map((s) => s.conn), [0, 0, 1, 1]);
  });
});

Deno.test("http1 client: a chunked answer in pieces, trailers dropped, and the connection kept", async () => {
  const chunked = "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n";
  const script: Script = (_, i) =>
    i === 0
      ? { pieces: [chunked, "5;ext=1\r\nhel", "lo\r\n6\r\n", " world\r\n0\r\nx-t: 1\r\n\r\n"] }
      : { pieces: [ok("again")] };
  await withServer(script, async (base, seen, c) => {
    const first = await c.fetch(`${base}/c`, manual());
    assert.equal(first.status, 201);
    assert.equal(await first.text(), "hello world");
    assert.equal(await (await c.fetch(`${base}/c`, manual())).text(), "again");
    assert.deepEqual(seen.map((s) => s.conn), [0, 0]);
  });
});

Deno.test("http1 client: 1xx answers are skipped; an answer ended by close is read to its end", async () => {
  const script: Script = () => ({
    pieces: ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nuntil", " the end"],
    close: true,
  });
  await withServer(script, async (base, seen, c) => {
    assert.equal(await (await c.fetch(`${base}/a`, manual())).text(), "until the end");
    assert.equal(await (await c.fetch(`${base}/b`, manual())).text(), "until the end");
    assert.deepEqual(seen.map((s) => s.conn), [0, 1]);
  });
});

Deno.test("http1 client: a body over bufferBytes streams, and a reader that stops closes the connection", async () => {
  const big = "x".repeat(50_000);
  await withServer(() => ({ pieces: [ok(big)] }), async (base, seen, c) => {
    const whole = await c.fetch(`${base}/big`, manual());
    assert.equal((await whole.text()).length, 50_000);
    const cut = await c.fetch(`${base}/big`, manual());
    const reader = cut.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value!.length > 0 && first.value!.length < 50_000);
    await reader.cancel();
    await (await c.fetch(`${base}/big`, manual())).text();
    assert.deepEqual(seen.map((s) => s.conn), [0, 0, 1]);
  }, { bufferBytes: 1000 });
});

Deno.test("http1 client: a pooled connection the server closed is replaced, the request sent once", async () => {
  const script: Script = () => ({ pieces: [ok("fine")], close: true });
  await withServer(script, async (base, seen, c) => {
    assert.equal(await (await c.fetch(`${base}/1`, manual())).text(), "fine");
    await new Promise((resolve) => setTimeout(resolve, 20)); // the server's close arrives
    assert.equal(
      await (await c.fetch(`${base}/2`, manual({ method: "POST", body: "b" }))).text(),
      "fine",
    );
    assert.deepEqual(seen.map((s) => `${s.conn} ${s.head.split(" ")[1]}`), ["0 /1", "1 /2"]);
  });
});

Deno.test("http1 client: a connection idle past idleMs is not reused", async () => {
  await withServer(() => ({ pieces: [ok("x")] }), async (base, seen, c) => {
    await (await c.fetch(`${base}/1`, manual())).text();
    await new Promise((resolve) => setTimeout(resolve, 30));
    await (await c.fetch(`${base}/2`, manual())).text();
    assert.deepEqual(seen.map((s) => s.conn), [0, 1]);
  }, { idleMs: 10 });
});

Deno.test("http1 client: an abort mid-answer rejects with its reason and drops the connection", async () => {
  const script: Script = (_, i) =>
    i === 0
      ? { pieces: ["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab"] } // the rest never comes
      : { pieces: [ok("next")] };
  await withServer(script, async (base, seen, c) => {
    const controller = new AbortController();
    const reason = new Error("request timed out");
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(c.fetch(`${base}/slow`, manual({ signal: controller.signal })), reason);
    assert.equal(await (await c.fetch(`${base}/n`, manual())).text(), "next");
    assert.deepEqual(seen.map((s) => s.conn), [0, 1]);
  });
});

Deno.test("http1 client: an answer cut short is a TypeError the failure mapping calls a reset", async () => {
  const script: Script = () => ({
    pieces: ["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab"],
    close: true,
  });
  await withServer(script, async (base, _seen, c) => {
    await assert.rejects(c.fetch(`${base}/x`, manual()), /connection closed before the answer/);
  });
});

Deno.test("http1 client: a refused connection rejects as Deno's connect does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const c = makeClient({});
  await assert.rejects(c.fetch(`http://127.0.0.1:${port}/`, manual()), /refused/i);
  c.close();
});

Deno.test("http1 client: a header value with CR or LF is refused before anything is sent", async () => {
  await withServer(() => ({ pieces: [ok("x")] }), async (base, seen, c) => {
    const headers = { "x-bad": "a\r\nx-injected: 1" };
    await assert.rejects(c.fetch(`${base}/`, manual({ headers })), TypeError);
    await assert.rejects(c.fetch(`${base}/`, manual({ headers: { "bad name": "v" } })), TypeError);
    assert.equal(seen.length, 0);
  });
});

Deno.test("http1 client: what it does not speak goes to the fallback", async () => {
  const c = makeClient({});
  const stream = new ReadableStream();
  const cases: [RequestInfo | URL, RequestInit | undefined][] = [
    ["https://example.test/", manual()],
    ["http://example.test/", undefined], // redirect "follow"
    ["http://user:pw@example.test/", manual()],
    [new Request("http://example.test/"), manual()],
    ["http://example.test/", manual({ method: "POST", body: stream })],
  ];
  for (const [input, init] of cases) {
    assert.equal(await (await c.fetch(input, init)).text(), "from the fallback");
  }
  assert.equal(c.fallbackCalls.length, cases.length);
  await stream.cancel();
  c.close();
});

Deno.test("http1 client: 204 and HEAD have no body; the connection stays usable", async () => {
  const script: Script = (head) =>
    head.startsWith("HEAD")
      ? { pieces: ["HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"] }
      : { pieces: ["HTTP/1.1 204 No Content\r\n\r\n"] };
  await withServer(script, async (base, seen, c) => {
    const empty = await c.fetch(`${base}/d`, manual({ method: "DELETE" }));
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    const head = await c.fetch(`${base}/h`, manual({ method: "HEAD" }));
    assert.equal(head.headers.get("content-length"), "99");
    assert.equal(await head.text(), "");
    assert.deepEqual(seen.map((s) => s.conn), [0, 0]);
  });
});

Deno.test("http1 client: framingOf, how each answer's body ends", () => {
  const rows: [string, number, string | undefined, string | undefined, string][] = [
    ["GET", 200, undefined, "12", "length 12"],
    ["GET", 200, undefined, "12, 12", "length 12"],
    ["GET", 200, "chunked", "12", "chunked"],
    ["GET", 200, "gzip, chunked", undefined, "chunked"],
    ["GET", 200, "gzip", undefined, "close"],
    ["GET", 200, undefined, undefined, "close"],
    ["HEAD", 200, undefined, "12", "none"],
    ["GET", 204, undefined, undefined, "none"],
    ["GET", 304, undefined, "5", "none"],
  ];
  for (const [method, status, coding, length, expected] of rows) {
    const framing = framingOf(method, { status, coding, length });
    const text = framing.kind === "length" ? `length ${framing.length}` : framing.kind;
    assert.equal(text, expected, `${method} ${status} ${coding} ${length}`);
  }
  for (const bad of ["12, 13", "-1", "abc", ""]) {
    assert.throws(
      () => framingOf("GET", { status: 200, coding: undefined, length: bad }),
      TypeError,
    );
  }
});

Deno.test("http1 client: proxyVariable, any HTTP or ALL proxy variable keeps the runtime's fetch", () => {
  assert.equal(proxyVariable({}), undefined);
  assert.equal(proxyVariable({ HTTPS_PROXY: "http://p:3128", NO_PROXY: "x" }), undefined);
  assert.equal(proxyVariable({ HTTP_PROXY: "" }), undefined);
  assert.equal(proxyVariable({ http_proxy: "http://p:3128" }), "http_proxy");
  assert.equal(proxyVariable({ ALL_PROXY: "socks5://p" }), "ALL_PROXY");
});

Deno.test("http1 client: a read answer works through guarded_fetch's readers and redirect check", async () => {
  const script: Script = (head) => {
    const path = head.split(" ")[1];
    if (path === "/moved") {
      return {
        pieces: ["HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"],
      };
    }
    if (path === "/err") {
      return { pieces: ["HTTP/1.1 500 Oops\r\ncontent-length: 9\r\n\r\nbad thing"] };
    }
    return { pieces: [ok(path === "/long" ? "y".repeat(300) : '{"a":1}')] };
  };
  await withServer(script, async (base, seen, c) => {
    const redirect = await fetchNoRedirect(c.fetch, "thing", `${base}/moved`, {}).catch((e) => e);
    assert.ok(redirect instanceof RedirectError);
    assert.equal(redirect.location, `${base}/elsewhere`);
    const fine = await fetchNoRedirect(c.fetch, "thing", `${base}/ok`, {});
    assert.equal(fine.ok, true);
    assert.equal(fine.headers.get("Content-Type"), "text/plain");
    assert.equal(await readTextCapped(fine, "thing", 100), '{"a":1}');
    const long = await fetchNoRedirect(c.fetch, "thing", `${base}/long`, {});
    await assert.rejects(readTextCapped(long, "thing", 100), HttpError);
    const failed = await fetchNoRedirect(c.fetch, "thing", `${base}/err`, {});
    assert.equal(failed.ok, false);
    assert.equal(await readTextPrefix(failed, 3), "bad");
    const json = await c.fetch(`${base}/ok`, manual());
    assert.deepEqual(await json.json(), { a: 1 });
    await assert.rejects(json.text(), TypeError); // read once, as a Response
    const cancelled = await c.fetch(`${base}/ok`, manual());
    await cancelled.body?.cancel();
    assert.equal(cancelled.bodyUsed, true);
    assert.deepEqual(seen.map((s) => s.conn), [0, 0, 0, 0, 0, 0]);
  });
});

Deno.test("http1 client: a head that is not ASCII, and a body larger than the write buffer, arrive whole", async () => {
  await withServer(() => ({ pieces: [ok("fine")] }), async (base, seen, c) => {
    const big = "ü".repeat(70_000);
    for (const body of ["small", big, new TextEncoder().encode("bytes ✓"), "again"]) {
      const headers = { "x-name": "Zoë" };
      const response = await c.fetch(`${base}/p`, manual({ method: "POST", headers, body }));
      assert.equal(await response.text(), "fine");
    }
    assert.deepEqual(seen.map((s) => s.body), ["small", big, "bytes ✓", "again"]);
    const head = seen[1]!.head.split("\r\n");
    assert.ok(head.includes(`content-length: ${140_000}`), head.join(" | "));
    assert.ok(head.includes(`x-name: ${String.fromCharCode(...new TextEncoder().encode("Zoë"))}`));
    assert.deepEqual(seen.map((s) => s.conn), [0, 0, 0, 0]);
  });
});

Deno.test("http1 client: a reused connection whose answer had begun is not sent again", async () => {
  const script: Script = (_, i) =>
    i === 0 ? { pieces: [ok("first")] } : { pieces: ["HTTP/1.1 200 OK\r\ncontent-"], close: true };
  await withServer(script, async (base, seen, c) => {
    assert.equal(await (await c.fetch(`${base}/1`, manual())).text(), "first");
    const post = manual({ method: "POST", body: "once" });
    await assert.rejects(c.fetch(`${base}/2`, post), /connection closed before the answer/);
    assert.deepEqual(seen.map((s) => `${s.conn} ${s.body}`), ["0 ", "0 once"]);
  });
});

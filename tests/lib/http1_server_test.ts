/** lib/http1_server.ts on a real loopback listener, with short timeouts so the cuts are quick. */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { type Http1Options, serveHttp1 } from "../../src/lib/http1_server.ts";
import { trickle } from "../support/trickle_client.ts";

async function withServer(
  options: Partial<Http1Options>,
  fn: (port: number, served: string[]) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const served: string[] = [];
  const server = serveHttp1(listener, (request) => {
    const url = new URL(request.url);
    served.push(`${request.method} ${url.pathname}${url.search}`);
    if (url.pathname === "/boom") throw new Error("handler bug");
    return new Response(`hello ${request.headers.get("x-name") ?? ""}\n`, {
      status: url.pathname === "/missing" ? 404 : 200,
      headers: { "content-type": "text/plain" },
    });
  }, { origin: `http://127.0.0.1:${port}`, clock: systemClock, ...options });
  try {
    await fn(port, served);
  } finally {
    await server.close();
  }
}

/** Sends `raw` on one connection and reads until the server closes it (or `ms` passes). */
async function exchange(port: number, raw: string, ms = 2000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), ms);
  let text = "";
  try {
    await conn.write(new TextEncoder().encode(raw));
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer or the server
    }
  }
  return text;
}

Deno.test("http1 server: answers fetch, keeps a connection alive for the next request, closes on request", async () => {
  await withServer({}, async (port, served) => {
    const response = await fetch(`http://127.0.0.1:${port}/healthz?x=1`, {
      headers: { "x-name": "fetch" },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain");
    assert.equal(await response.text(), "hello fetch\n");
    const two = await exchange(
      port,
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(two, /^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: keep-alive\r\n\r\nhello \n/);
    assert.match(two, /HTTP\/1\.1 404 Not Found\r\n[\s\S]*connection: close\r\n\r\nhello \n$/);
    const head = await exchange(port, "HEAD /h HTTP/1.0\r\n\r\n");
    assert.match(head, /content-length: 7\r\nconnection: close\r\n\r\n$/, "HEAD: no body");
    assert.deepEqual(served, ["GET /healthz?x=1", "GET /a", "GET /missing", "HEAD /h"]);
  });
});

Deno.test("http1 server: a trickled or partial head is closed at headerTimeoutMs, an idle connection at idleTimeoutMs", async () => {
  await withServer({ headerTimeoutMs: 400, idleTimeoutMs: 800 }, async (port, served) => {
    const [trickling, partial, idle] = await Promise.all([
      trickle({ port, start: "GET /x HTTP/1.1\r\nHost: x\r\n", everyMs: 100, giveUpMs: 3000 }),
      trickle({ port, start: "GET /x HTTP/1.1\r\n", everyMs: 0, giveUpMs: 3000 }),
      trickle({ port, start: "", everyMs: 0, giveUpMs: 3000 }),
    ]);
    assert.ok(trickling !== undefined && trickling >= 350 && trickling < 1500, `${trickling}`);
    assert.ok(partial !== undefined && partial >= 350 && partial < 1500, `${partial}`);
    assert.ok(idle !== undefined && idle >= 750 && idle < 2000, `${idle}`);
    assert.deepEqual(served, [], "no handler ran for them");
  });
});

Deno.test("http1 server: oversized, malformed and failing requests get 431, 400 and 500", async () => {
  await withServer({ maxHeaderBytes: 1024 }, async (port) => {
    const big = await exchange(port, `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    for (
      const bad of [
        "BROKEN\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n",
      ]
    ) {
      assert.match(await exchange(port, bad), /^HTTP\/1\.1 400 /, JSON.stringify(bad));
    }
    assert.match(await exchange(port, "GET /boom HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 500 /);
    const withBody = await exchange(port, "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert.match(withBody, /^HTTP\/1\.1 200 [\s\S]*connection: close\r\n/, "answered, then closed");
  });
});

Deno.test("http1 server: connections beyond maxConnections are closed at once; close() ends the rest", async () => {
  await withServer({ maxConnections: 2, idleTimeoutMs: 10_000 }, async (port) => {
    const held = [
      await Deno.connect({ hostname: "127.0.0.1", port }),
      await Deno.connect({ hostname: "127.0.0.1", port }),
    ];
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const extra = await trickle({ port, start: "", everyMs: 0, giveUpMs: 2000 });
      assert.ok(extra !== undefined && extra < 500, `the third connection lived ${extra} ms`);
    } finally {
      for (const conn of held) conn.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.match(await exchange(port, "GET / HTTP/1.1\r\n\r\n", 1000), /^HTTP\/1\.1 200 /);
  });
});

/** httpCall's answer: what it reads of a response, and the URLs it refuses itself. */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { httpCall } from "../../src/adapters/http_call.ts";
import { HttpError, LocalError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";
import { freePort } from "../support/command.ts";

Deno.test("httpCall: Retry-After is read from a failed answer and left alone on a 2xx", async () => {
  const server = serveJson(async (request, url) => {
    await request.text();
    const status = Number(url.searchParams.get("status"));
    const headers: Record<string, string> = url.searchParams.has("after")
      ? { "retry-after": url.searchParams.get("after")! }
      : {};
    return new Response("x", { status, headers });
  });
  try {
    const rows: Array<[query: string, expected: number | undefined]> = [
      ["status=503&after=2", 2000],
      ["status=429&after=0", 0],
      ["status=429", undefined],
      ["status=200&after=2", undefined],
    ];
    for (const [query, expected] of rows) {
      const answer = await httpCall(
        { target: "validator", timeoutMs: 2000, clock: { ...systemClock, now: () => 1_000_000 } },
        `${server.url}/ingest?${query}`,
        { method: "POST", body: "{}" },
      );
      assert.equal(answer.retryAfterMs, expected, query);
    }
  } finally {
    await server.close();
  }
});

Deno.test("httpCall: a URL that cannot be requested is our own fault, before and after good ones", async () => {
  const server = serveJson(async (request) => {
    await request.text();
    return new Response("ok");
  });
  const options = { target: "enrichment", timeoutMs: 2000, clock: systemClock };
  try {
    for (const url of ["http://[bad", `${server.url}/v1/users/1`, "http://[bad", "/relative"]) {
      if (!url.startsWith("http://[") && url !== "/relative") {
        assert.equal((await httpCall(options, url, { method: "GET" })).status, 200);
        continue;
      }
      await assert.rejects(httpCall(options, url, { method: "GET" }), LocalError, url);
    }
  } finally {
    await server.close();
  }
});

Deno.test("httpCall: a 2xx body over the cap is a transient HttpError; an error body is read only as a prefix", async () => {
  const MiB = 1024 * 1024;
  const server = serveJson(async (request, url) => {
    await request.text();
    const size = Number(url.searchParams.get("bytes"));
    const status = Number(url.searchParams.get("status"));
    // A stream of unknown length (chunked): no Content-Length says how much is coming.
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        const chunk = new Uint8Array(Math.min(65536, size - sent)).fill(0x7a);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    return new Response(body, { status });
  });
  const codes: string[] = [];
  const options = {
    clock: systemClock,
    target: "enrichment",
    timeoutMs: 5000,
    onResponse: (c: string) => codes.push(c),
  };
  try {
    const error = await httpCall(
      options,
      `${server.url}/v1/users:batch?bytes=${6 * MiB}&status=200`,
      {
        method: "POST",
        body: "{}",
      },
    ).then(() => undefined, (e) => e);
    assert.ok(error instanceof HttpError, `expected HttpError, got ${error}`);
    assert.equal(error.category, "TRANSIENT");
    assert.match(error.message, /answer longer than 4194304 bytes/);
    const fits = await httpCall(
      options,
      `${server.url}/v1/users:batch?bytes=${3 * MiB}&status=200`,
      {
        method: "POST",
        body: "{}",
      },
    );
    assert.equal(fits.text.length, 3 * MiB);
    const failed = await httpCall(options, `${server.url}/ingest?bytes=${8 * MiB}&status=400`, {
      method: "POST",
      body: "{}",
    });
    assert.equal(failed.status, 400);
    assert.equal(failed.text.length, 16 * 1024, "a 16 KiB prefix of a rejection");
    const kept = new HttpError("validator", 500, failed.text);
    assert.equal(kept.body.length, 1024, "an error keeps a bounded prefix");
    assert.deepEqual(codes, ["200", "200", "400"]);
  } finally {
    await server.close();
  }
});

Deno.test("httpCall: a request that gets no answer says which failure and for which host", async () => {
  const host = `127.0.0.1:${freePort()}`;
  const error = await httpCall(
    { target: "validator", timeoutMs: 2000, clock: systemClock },
    `http://${host}/ingest`,
    { method: "POST", body: "{}" },
  ).then(() => undefined, (e) => e);
  assert.ok(error instanceof HttpError);
  assert.equal(error.status, 0);
  assert.equal(
    error.message,
    `validator gave no answer: connection refused by ${host} (nothing listens there)`,
  );
});

Deno.test("httpCall: a timeout names the host that did not answer", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const server = serveJson(async () => {
    await held;
    return new Response("late");
  });
  try {
    const error = await httpCall(
      { target: "enrichment", timeoutMs: 100, clock: systemClock },
      `${server.url}/v1/users/1`,
      { method: "GET" },
    ).then(() => undefined, (e) => e);
    assert.equal(
      error?.message,
      `enrichment did not answer within 100 ms (${new URL(server.url).host})`,
    );
  } finally {
    release();
    await server.close();
  }
});

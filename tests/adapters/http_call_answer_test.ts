/** httpCall's answer: what it reads of a response, and the URLs it refuses itself. */
import assert from "node:assert/strict";
import { httpCall } from "../../src/adapters/http_call.ts";
import { LocalError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

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
        { target: "validator", timeoutMs: 2000, now: () => 1_000_000 },
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
  const options = { target: "enrichment", timeoutMs: 2000 };
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

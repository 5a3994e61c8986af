import assert from "node:assert/strict";
import { systemClock } from "../../src/lib/clock.ts";
import { httpCall } from "../../src/adapters/http_call.ts";
import { TimeoutError } from "../../src/lib/errors.ts";

/** A fetch that never answers: it rejects with the request signal's reason when that aborts. */
const hanging: typeof fetch = (_url, init) =>
  new Promise((_resolve, reject) => {
    const signal = init?.signal;
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

Deno.test("httpCall: the caller's abort ends the request with the caller's reason", async () => {
  // rows: [abort before the call?, expected]
  for (const early of [false, true]) {
    const caller = new AbortController();
    const reason = new Error("shutting down");
    if (early) caller.abort(reason);
    const call = httpCall(
      { target: "enrichment", timeoutMs: 60_000, fetch: hanging, clock: systemClock },
      "http://127.0.0.1:9/x",
      { method: "GET" },
      caller.signal,
    );
    if (!early) caller.abort(reason);
    await assert.rejects(call, (err) => err === reason);
  }
});

Deno.test("httpCall: its own timeout gives TimeoutError, the caller's signal untouched", async () => {
  const caller = new AbortController();
  await assert.rejects(
    httpCall(
      { target: "validator", timeoutMs: 5, fetch: hanging, clock: systemClock },
      "http://127.0.0.1:9/x",
      { method: "POST" },
      caller.signal,
    ),
    TimeoutError,
  );
  assert.equal(caller.signal.aborted, false);
});

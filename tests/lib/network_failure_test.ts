/** Which network failure a request met, from the runtimes' real errors and Bun-shaped codes. */
import assert from "node:assert/strict";
import {
  describeNetworkFailure,
  type NetworkFailureKind,
  networkFailureKind,
} from "../../src/lib/network_failure.ts";
import { freePort } from "../support/command.ts";

async function fetchError(url: string, init: RequestInit = {}): Promise<unknown> {
  try {
    const res = await fetch(url, init);
    await res.body?.cancel();
  } catch (error) {
    return error;
  }
  throw new Error(`${url} answered`);
}

Deno.test("network failure: a refused connection names the host and port", async () => {
  const url = `http://127.0.0.1:${freePort()}/ingest`;
  const error = await fetchError(url);
  assert.equal(networkFailureKind(error), "refused");
  assert.equal(
    describeNetworkFailure(error, url),
    `connection refused by ${new URL(url).host} (nothing listens there)`,
  );
});

Deno.test("network failure: a name that does not resolve is a DNS failure of that name", async () => {
  const url = "http://sluice-no-such-host.invalid:8080/healthz";
  const error = await fetchError(url);
  assert.equal(networkFailureKind(error), "dns");
  assert.equal(
    describeNetworkFailure(error, url),
    "DNS lookup of sluice-no-such-host.invalid failed",
  );
});

Deno.test("network failure: a connection closed without an answer, and https to a plain port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const closing = (async () => {
    for await (const conn of listener) {
      // Read the request's first bytes, then close: no answer at all.
      await conn.read(new Uint8Array(1024)).catch(() => null);
      conn.close();
    }
  })();
  try {
    const plain = `http://127.0.0.1:${port}/`;
    const reset = await fetchError(plain);
    assert.equal(networkFailureKind(reset), "reset");
    assert.equal(
      describeNetworkFailure(reset, plain),
      `the connection to 127.0.0.1:${port} was closed before the answer`,
    );
    const tlsUrl = `https://127.0.0.1:${port}/`;
    const tls = await fetchError(tlsUrl);
    assert.match(networkFailureKind(tls), /^(tls|reset)$/);
  } finally {
    listener.close();
    await closing.catch(() => {});
  }
});

Deno.test("network failure: an aborted timeout is a timeout", () => {
  const url = "http://192.0.2.1:81/";
  const error = new DOMException("The operation was aborted due to timeout", "TimeoutError");
  assert.equal(describeNetworkFailure(error, url), "the connection to 192.0.2.1:81 timed out");
});

/** Bun's errors carry a code and no cause; Deno's a cause whose message says it. */
function bunError(code: string, message: string): Error {
  return Object.assign(new TypeError(message), { code });
}
function denoError(words: string): Error {
  return new TypeError("fetch failed", {
    cause: new Error(
      `error sending request for url (https://tls.dns.example/): client error (Connect): ${words}`,
    ),
  });
}

const rows: Array<[string, unknown, NetworkFailureKind, string]> = [
  [
    "Bun ENOTFOUND",
    bunError("ENOTFOUND", "getaddrinfo ENOTFOUND x"),
    "dns",
    "DNS lookup of h failed",
  ],
  [
    "Bun ECONNREFUSED",
    bunError("ECONNREFUSED", "ECONNREFUSED: Unable to connect."),
    "refused",
    "connection refused by h:1 (nothing listens there)",
  ],
  [
    "Bun ECONNRESET",
    bunError("ECONNRESET", "ECONNRESET: The socket connection was closed unexpectedly."),
    "reset",
    "the connection to h:1 was closed before the answer",
  ],
  [
    "Bun's self-signed certificate",
    bunError("DEPTH_ZERO_SELF_SIGNED_CERT", "self signed certificate"),
    "tls",
    "TLS with h:1 failed: self signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)",
  ],
  [
    "Deno's invalid peer certificate (the URL's host names neither DNS nor TLS)",
    denoError("invalid peer certificate: UnknownIssuer"),
    "tls",
    "TLS with h:1 failed: invalid peer certificate: UnknownIssuer",
  ],
  [
    "Deno's refusal under a host called tls.dns.example",
    denoError("tcp connect error: Connection refused (os error 111)"),
    "refused",
    "connection refused by h:1 (nothing listens there)",
  ],
  [
    "a refusal by the unit's IP allow list",
    denoError("tcp connect error: Operation not permitted (os error 1)"),
    "not permitted",
    "connecting to h:1 is not permitted (a firewall, or the unit's IPAddressAllow=)",
  ],
  [
    "no route",
    bunError("EHOSTUNREACH", "EHOSTUNREACH"),
    "unreachable",
    "h:1 is unreachable (no route to it)",
  ],
  [
    "anything else keeps the runtime's words",
    new Error("boom"),
    "other",
    "no answer from h:1: boom",
  ],
];

for (const [name, error, kind, phrase] of rows) {
  Deno.test(`network failure: ${name}`, () => {
    assert.equal(networkFailureKind(error), kind);
    assert.equal(describeNetworkFailure(error, "http://h:1/x"), phrase);
  });
}

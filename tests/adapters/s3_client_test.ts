import assert from "node:assert/strict";
import { AwsClient } from "aws4fetch";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import {
  objectUrl,
  S3Client,
  S3Error,
  s3ErrorParts,
  S3TooLargeError,
} from "../../src/adapters/s3_client.ts";
import { SigningKeyCache, signRequest } from "../../src/adapters/sigv4.ts";
import { systemClock } from "../../src/lib/clock.ts";

const T0 = Date.UTC(2025, 5, 30, 23, 59, 58);
const AMZ_DATE = "20250630T235958Z";
const KEYS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJIMEYCIQ+/=",
};

Deno.test("s3 client: objectUrl is path-style on an endpoint, virtual-hosted on AWS", () => {
  const rows: Array<[string, string, string | undefined, string]> = [
    ["b", "k/1.json", "http://127.0.0.1:4566", "http://127.0.0.1:4566/b/k/1.json"],
    [
      "b",
      "a b/ü+*.json",
      "http://127.0.0.1:4566/",
      "http://127.0.0.1:4566/b/a%20b/%C3%BC%2B%2A.json",
    ],
    ["my-bucket", "x/y", undefined, "https://my-bucket.s3.eu-west-1.amazonaws.com/x/y"],
    ["my.dotted.bucket", "x", undefined, "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/x"],
  ];
  for (const [bucket, key, endpoint, expected] of rows) {
    assert.equal(objectUrl(bucket, key, "eu-west-1", endpoint), expected);
  }
});

async function smithyAuthorization(url: URL, region: string): Promise<string> {
  const signer = new SignatureV4({
    credentials: KEYS,
    region,
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: "GET",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: { host: url.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
  }, { signingDate: new Date(T0) });
  return String(signed.headers["authorization"]);
}

Deno.test("s3 client: a GetObject is signed as the AWS SDK and aws4fetch sign it (UNSIGNED-PAYLOAD, path encoded once)", async () => {
  for (const key of ["plain.json", "in/a b/ü+=*&.json", "deep/ord~er_(1)!.txt"]) {
    for (const endpoint of [undefined, "http://127.0.0.1:4566"]) {
      const url = objectUrl("payloads", key, "eu-west-1", endpoint);
      const ours = signRequest({
        url,
        headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
        body: "",
        keys: KEYS,
        region: "eu-west-1",
        service: "s3",
        amzDate: AMZ_DATE,
        method: "GET",
        s3: true,
      }, new SigningKeyCache());
      const smithy = await smithyAuthorization(new URL(url), "eu-west-1");
      assert.equal(ours.headers["authorization"], smithy, `${key} at ${endpoint ?? "AWS"}`);
      const aws = new AwsClient({ ...KEYS, service: "s3", region: "eu-west-1", retries: 0 });
      const request = await aws.sign(url, {
        method: "GET",
        headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
        aws: { datetime: AMZ_DATE },
      });
      assert.equal(ours.headers["authorization"], request.headers.get("authorization"));
    }
  }
});

/** An S3Client on a stub transport; `answer` gets each request. */
function clientOn(answer: (request: Request, n: number) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const expired: unknown[] = [];
  let keys = { ...KEYS };
  const client = new S3Client({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:1",
    credentials: () => Promise.resolve(keys),
    credentialsExpired: (used) => {
      expired.push(used);
      keys = { ...KEYS, sessionToken: "fresh" };
    },
    fetch: (input, init) => {
      const request = new Request(input, init);
      requests.push(request);
      return Promise.resolve(answer(request, requests.length));
    },
    clock: systemClock,
    timeoutMs: 2000,
  });
  return { client, requests, expired };
}

const xmlError = (status: number, code: string, message = "m") =>
  new Response(`<Error><Code>${code}</Code><Message>${message}</Message></Error>`, { status });

Deno.test("s3 client: GetObject returns the object's text, signed for s3 on the path-style URL", async () => {
  const { client, requests } = clientOn(() => new Response("héllo", { status: 200 }));
  const text = await client.getObject({ bucket: "b", key: "k 1", maxBytes: 100 });
  assert.equal(text, "héllo");
  assert.equal(requests[0]!.url, "http://127.0.0.1:1/b/k%201");
  assert.equal(requests[0]!.method, "GET");
  assert.equal(requests[0]!.headers.get("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  assert.match(requests[0]!.headers.get("authorization")!, /\/us-east-1\/s3\/aws4_request/);
});

Deno.test("s3 client: error answers become S3Errors with their code; 5xx and throttling are retriable", async () => {
  const rows: Array<[Response, string, number, boolean]> = [
    [xmlError(404, "NoSuchKey"), "NoSuchKey", 404, false],
    [xmlError(403, "AccessDenied"), "AccessDenied", 403, false],
    [xmlError(503, "SlowDown"), "SlowDown", 503, true],
    [xmlError(500, "InternalError"), "InternalError", 500, true],
    [new Response(null, { status: 404 }), "NotFound", 404, false],
  ];
  for (const [response, code, status, retriable] of rows) {
    const { client } = clientOn(() => response);
    const error = await client.getObject({ bucket: "b", key: "k", maxBytes: 100 }).catch((e) => e);
    assert.ok(error instanceof S3Error, code);
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.equal(error.retriable, retriable, code);
    assert.equal(error.bucket, "b");
    assert.equal(error.key, "k");
  }
});

Deno.test("s3 client: an object over the cap is refused by its Content-Length, or cut at the cap", async () => {
  const { client } = clientOn(() =>
    new Response("x".repeat(500), { status: 200, headers: { "content-length": "500" } })
  );
  const declared = await client.getObject({ bucket: "b", key: "k", maxBytes: 100 }).catch((e) => e);
  assert.ok(declared instanceof S3TooLargeError);
  assert.equal(declared.bytes, 500);
  const stream = () =>
    new ReadableStream({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new TextEncoder().encode("x".repeat(100)));
        controller.close();
      },
    });
  const chunked = clientOn(() => new Response(stream(), { status: 200 }));
  const cut = await chunked.client.getObject({ bucket: "b", key: "k", maxBytes: 100 }).catch((e) =>
    e
  );
  assert.ok(cut instanceof S3TooLargeError);
  assert.equal(cut.bytes, undefined);
});

Deno.test("s3 client: an ExpiredToken answer resolves the credentials again and signs once more", async () => {
  const { client, requests, expired } = clientOn((_request, n) =>
    n === 1 ? xmlError(400, "ExpiredToken") : new Response("ok", { status: 200 })
  );
  assert.equal(await client.getObject({ bucket: "b", key: "k", maxBytes: 100 }), "ok");
  assert.equal(expired.length, 1);
  assert.equal(requests[1]!.headers.get("x-amz-security-token"), "fresh");
});

Deno.test("s3 client: a redirect is not followed, and echoed secrets are scrubbed", async () => {
  const { client, requests } = clientOn(() =>
    new Response(null, { status: 301, headers: { location: "https://elsewhere.example/b/k" } })
  );
  const error = await client.getObject({ bucket: "b", key: "k", maxBytes: 100 }).catch((e) => e);
  assert.ok(error instanceof S3Error);
  assert.equal(error.code, "Redirect");
  assert.equal(requests.length, 1);
  const parts = s3ErrorParts(
    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match. The String-to-Sign was AWS4-HMAC-SHA256 secret</Message></Error>",
  );
  assert.equal(parts.code, "SignatureDoesNotMatch");
  assert.doesNotMatch(parts.message, /String-to-Sign|secret/);
});

Deno.test("s3 client: DeleteObject sends a signed DELETE", async () => {
  const { client, requests } = clientOn(() => new Response(null, { status: 204 }));
  await client.deleteObject("b", "k/1");
  assert.equal(requests[0]!.method, "DELETE");
  assert.equal(requests[0]!.url, "http://127.0.0.1:1/b/k/1");
});

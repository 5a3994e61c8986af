/**
 * The SQS proxy's signature check (lab/sqs_proxy.ts): SigV4 computed from the AWS specification,
 * independently of the worker's signer (src/adapters/sigv4.ts), with SQS's answers for a missing,
 * wrong or expired signature.
 */
import { amzDateOf, parseAmzDate, type SqsAnswer, sqsError, sqsFaults } from "./sqs_answers.ts";

export interface VerifierOptions {
  keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** the signing region the scope must name */
  region: string;
  /** the server's clock, ms */
  now: () => number;
  /** how far x-amz-date may be from `now` */
  maxSkewMs: number;
}

/** Undefined when the request is signed right, else the answer SQS would give. */
export async function verifySignature(
  request: Request,
  rawBody: string,
  o: VerifierOptions,
): Promise<SqsAnswer | undefined> {
  const { keys, region, now, maxSkewMs } = o;
  const deny = (code: string, message: string) =>
    sqsError(code, {
      status: 403,
      message,
      queryError: code,
      headers: { date: new Date(now()).toUTCString() },
    });
  const auth = request.headers.get("authorization") ?? "";
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
      .exec(auth);
  if (!m) return deny("MissingAuthenticationToken", "Request is missing Authentication Token");
  const [, keyId, day, scopeRegion, scopeService, signedHeaders, signature] =
    m as unknown as string[];
  const badToken = (request.headers.get("x-amz-security-token") ?? undefined) !== keys.sessionToken;
  if (keyId !== keys.accessKeyId || badToken) {
    return deny("InvalidClientTokenId", "The security token included in the request is invalid.");
  }
  const amzDate = request.headers.get("x-amz-date") ?? "";
  const signedList = (signedHeaders ?? "").split(";");
  const tokenUnsigned = !signedList.includes("x-amz-security-token") &&
    request.headers.has("x-amz-security-token");
  if (!signedList.includes("host") || !signedList.includes("x-amz-date") || tokenUnsigned) {
    return deny(
      "SignatureDoesNotMatch",
      "host, x-amz-date and x-amz-security-token must be signed",
    );
  }
  const expected = await sigv4Signature({
    method: request.method,
    url: new URL(request.url),
    headers: request.headers,
    signedHeaders: signedList,
    body: rawBody,
    secretAccessKey: keys.secretAccessKey,
    amzDate,
    scope: `${day}/${scopeRegion}/${scopeService}/aws4_request`,
  });
  if (
    scopeRegion !== region || scopeService !== "sqs" || day !== amzDate.slice(0, 8) ||
    expected !== signature
  ) {
    return sqsFaults.signatureDoesNotMatch();
  }
  const requestTime = parseAmzDate(amzDate);
  const serverTime = now();
  if (requestTime === undefined || Math.abs(requestTime - serverTime) > maxSkewMs) {
    return sqsFaults.signatureExpired(amzDate || amzDateOf(0), serverTime, maxSkewMs);
  }
  return undefined;
}

const encoder = new TextEncoder();

async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(data)));
}

function hex(buffer: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/**
 * SigV4 signature computed from the AWS specification, independently of the client's signer:
 * canonical request -> string to sign -> HMAC chain.
 */
export async function sigv4Signature(p: {
  method: string;
  url: URL;
  headers: Headers;
  signedHeaders: string[];
  body: string;
  secretAccessKey: string;
  amzDate: string;
  /** yyyymmdd/region/service/aws4_request */
  scope: string;
}): Promise<string> {
  // Non-S3 services encode each path segment twice.
  const path = p.url.pathname.split("/").map((s) => uriEncode(uriEncode(decodeURIComponent(s))))
    .join("/") || "/";
  const query = [...p.url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = p.signedHeaders
    .map((name) => {
      const value = name === "host"
        ? p.headers.get("host") ?? p.url.host
        : p.headers.get(name) ?? "";
      return `${name}:${value.trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const canonicalRequest = [
    p.method.toUpperCase(),
    path,
    query,
    canonicalHeaders,
    p.signedHeaders.join(";"),
    await sha256Hex(p.body),
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    p.amzDate,
    p.scope,
    await sha256Hex(canonicalRequest),
  ].join("\n");
  const [day, region, service] = p.scope.split("/");
  let key = await hmac(encoder.encode("AWS4" + p.secretAccessKey), day ?? "");
  key = await hmac(key, region ?? "");
  key = await hmac(key, service ?? "");
  key = await hmac(key, "aws4_request");
  return hex(await hmac(key, stringToSign));
}

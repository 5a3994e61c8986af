/**
 * The fake SQS's signature check: SigV4 computed from the AWS specification, independently of the
 * client's signer, with SQS's answers for a missing, wrong or expired signature.
 */
import { type FakeAnswer, sqsErrorAnswer } from "./answers.ts";

export interface VerifierOptions {
  verifyWith: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region: string;
  now: () => number;
  maxSkewMs: number;
}

/** Undefined when the request is signed right, else the answer SQS would give. */
export async function verifySignature(
  request: Request,
  rawBody: string,
  o: VerifierOptions,
): Promise<FakeAnswer | undefined> {
  const { verifyWith, region, now, maxSkewMs } = o;
  const deny = (code: string, message: string, status = 403) =>
    sqsErrorAnswer(code, { status, message, headers: { date: new Date(now()).toUTCString() } });
  const auth = request.headers.get("authorization") ?? "";
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
      .exec(auth);
  if (!m) return deny("MissingAuthenticationToken", "Request is missing Authentication Token");
  const [, keyId, day, scopeRegion, scopeService, signedHeaders, signature] =
    m as unknown as string[];
  const badToken = verifyWith.sessionToken !== undefined &&
    request.headers.get("x-amz-security-token") !== verifyWith.sessionToken;
  if (keyId !== verifyWith.accessKeyId || badToken) {
    return deny("InvalidClientTokenId", "The security token included in the request is invalid.");
  }
  const amzDate = request.headers.get("x-amz-date") ?? "";
  const signedList = (signedHeaders ?? "").split(";");
  if (!signedList.includes("host") || !signedList.includes("x-amz-date")) {
    return deny("SignatureDoesNotMatch", "host and x-amz-date must be signed");
  }
  if (
    signedList.includes("x-amz-security-token") === false &&
    request.headers.has("x-amz-security-token")
  ) {
    return deny("SignatureDoesNotMatch", "x-amz-security-token must be signed");
  }
  const expected = await sigv4Signature({
    method: request.method,
    url: new URL(request.url),
    headers: request.headers,
    signedHeaders: signedList,
    body: rawBody,
    secretAccessKey: verifyWith.secretAccessKey,
    amzDate,
    scope: `${day}/${scopeRegion}/${scopeService}/aws4_request`,
  });
  if (
    scopeRegion !== region || scopeService !== "sqs" || day !== amzDate.slice(0, 8) ||
    expected !== signature
  ) {
    return deny(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.",
    );
  }
  const requestTime = parseAmzDate(amzDate);
  const serverTime = now();
  if (requestTime === undefined || Math.abs(requestTime - serverTime) > maxSkewMs) {
    return deny(
      "SignatureDoesNotMatch",
      `Signature expired: ${amzDate} is now earlier than ${amzDateOf(serverTime - maxSkewMs)} (${
        amzDateOf(serverTime)
      } - 5 min.)`,
    );
  }
  return undefined;
}

function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
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

/**
 * AWS Signature Version 4 for the JSON-protocol POSTs sluice sends (SQS, DynamoDB). Ours
 * rather than aws4fetch's because signing was a quarter of the worker's main-thread time
 * under Deno: aws4fetch builds a Request and awaits WebCrypto four times per call (~140 µs
 * of CPU); the audited synchronous hashes of @noble/hashes do the same in ~15 µs. Against the
 * hand-written SHA-256 they replaced, the worker's CPU per message rose by 2.4 % (± 1.5, paired
 * runs, bench/RESULTS.md): kept, since hashing is the one part where a subtle error signs
 * every request wrongly and an audited implementation is worth that much. Checked byte for byte
 * against aws4fetch and the AWS SDK's signer in tests/e2e/signing_crosscheck_test.ts.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * SHA-256 as signing uses it. The default is @noble/hashes; the Bun binary passes Bun's
 * native hasher (src/cli/runtime.ts): under JavaScriptCore @noble/hashes took 63 µs to sign a
 * delete batch (docs/performance.md). Under Deno a native one would mean node:crypto, and with
 * it the Node compatibility layer.
 */
export interface Sha256 {
  /** Hex SHA-256 of the text's UTF-8. */
  hex(text: string): string;
  /** HMAC-SHA256 of the text's UTF-8 under `key`. */
  hmac(key: Uint8Array, text: string): Uint8Array;
  /** Hex HMAC-SHA256 under one key, prepared once for many texts. */
  keyed(key: Uint8Array): (text: string) => string;
}

export const nobleSha256: Sha256 = {
  hex: (text) => bytesToHex(sha256(utf8ToBytes(text))),
  hmac: (key, text) => hmac(sha256, key, utf8ToBytes(text)),
  keyed(key) {
    // The padded key blocks hashed once; each text costs a clone and its own blocks.
    const mac = hmac.create(sha256, key);
    return (text) => bytesToHex(mac.clone().update(utf8ToBytes(text)).digest());
  },
};

export interface SigningKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SignRequest {
  url: string;
  /** Header names in any case. host, x-amz-date and the token are added; host and x-amz-* signed. */
  headers: Record<string, string>;
  body: string;
  keys: SigningKeys;
  region: string;
  service: string;
  /** `20261128T210000Z` (amzDate()). */
  amzDate: string;
  /** Default POST. */
  method?: string;
  /**
   * S3's rules (adapters/s3_client.ts): the payload hash is `x-amz-content-sha256` as given
   * (UNSIGNED-PAYLOAD for a GET), and the path, already encoded once, is signed as it is.
   */
  s3?: boolean;
}

/**
 * The derived signing key of the latest (secret, day, region, service): four HMACs that
 * would otherwise run per request. One entry, so a rotated secret replaces it. It also holds
 * the hasher the signatures are made with.
 */
export class SigningKeyCache {
  #id = "";
  #sign: ((text: string) => string) | undefined;

  constructor(readonly sha: Sha256 = nobleSha256) {}

  /** The hex signature of `text` under the derived key. */
  sign(secret: string, day: string, region: string, service: string, text: string): string {
    const id = `${day}/${region}/${service}/${secret}`;
    if (!this.#sign || this.#id !== id) {
      const mac = (key: Uint8Array, data: string) => this.sha.hmac(key, data);
      const derived = mac(
        mac(mac(mac(utf8ToBytes(`AWS4${secret}`), day), region), service),
        "aws4_request",
      );
      this.#sign = this.sha.keyed(derived);
      this.#id = id;
    }
    return this.#sign(text);
  }
}

/** What to send: the URL as parsed, the given headers plus host, x-amz-date, token, Authorization. */
export function signRequest(
  r: SignRequest,
  cache: SigningKeyCache,
): { url: string; headers: Record<string, string> } {
  // Each S3 object is its own URL: parsed per request, so it never evicts the cached few.
  const url = r.s3 ? parseUrl(r.url) : parsedUrl(r.url);
  const headers: Record<string, string> = {};
  for (const name in r.headers) headers[name.toLowerCase()] = r.headers[name]!;
  headers["host"] = url.host;
  headers["x-amz-date"] = r.amzDate;
  if (r.keys.sessionToken) headers["x-amz-security-token"] = r.keys.sessionToken;
  // host and x-amz-*, as aws4fetch and the AWS SDK sign for SQS: content-type stays unsigned.
  const names = Object.keys(headers).filter((n) => n === "host" || n.startsWith("x-amz-")).sort();
  const signedHeaders = names.join(";");
  const canonical = [
    r.method ?? "POST",
    r.s3 ? url.rawPath : url.path,
    url.query,
    names.map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, " ")}\n`).join(""),
    signedHeaders,
    r.s3 ? headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD" : cache.sha.hex(r.body),
  ].join("\n");
  const day = r.amzDate.slice(0, 8);
  const scope = `${day}/${r.region}/${r.service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${r.amzDate}\n${scope}\n${cache.sha.hex(canonical)}`;
  const signature = cache.sign(r.keys.secretAccessKey, day, r.region, r.service, toSign);
  headers["authorization"] = `AWS4-HMAC-SHA256 Credential=${r.keys.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { url: url.href, headers };
}

interface ParsedUrl {
  href: string;
  host: string;
  /** Canonical path and query string. */
  path: string;
  /** The path as sent (S3 signs it so: each key segment encoded once). */
  rawPath: string;
  query: string;
}

/** The few URLs a worker signs for (its queues, its table) parsed once, not per request. */
const parsedUrls = new Map<string, ParsedUrl>();

function parsedUrl(text: string): ParsedUrl {
  let parsed = parsedUrls.get(text);
  if (parsed === undefined) {
    parsed = parseUrl(text);
    if (parsedUrls.size >= 64) parsedUrls.clear();
    parsedUrls.set(text, parsed);
  }
  return parsed;
}

function parseUrl(text: string): ParsedUrl {
  const url = new URL(text);
  return {
    href: url.href,
    host: url.host,
    path: canonicalPath(url.pathname),
    rawPath: url.pathname || "/",
    query: canonicalQuery(url.searchParams),
  };
}

/** RFC 3986 unreserved characters stay, the rest is %XX (encodeURIComponent leaves !'()*). */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Each segment of the (percent-encoded) path encoded once more, as non-S3 services want. */
function canonicalPath(pathname: string): string {
  return pathname === "/" || pathname === "" ? "/" : pathname.split("/").map(uriEncode).join("/");
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/**
 * A small S3 client for the two object calls the extended-client payloads need (GetObject,
 * DeleteObject), signed with SigV4 (service `s3`, `UNSIGNED-PAYLOAD`; adapters/sigv4.ts) through
 * the redirect-refusing fetch with a byte cap on every answer. Path-style requests on an endpoint
 * override (emulators, VPC endpoints), virtual-hosted ones on AWS. It does not retry (except once
 * after an ExpiredToken answer): the caller decides what a failure means (docs/payloads.md).
 */
import {
  AwsError,
  type AwsErrorArgs,
  HttpError,
  RedirectError,
  TimeoutError,
} from "../lib/errors.ts";
import {
  fetchNoRedirect,
  globalFetch,
  readTextCapped,
  readTextPrefix,
} from "../lib/guarded_fetch.ts";
import { onAbort } from "../lib/on_abort.ts";
import { type SharedTimeouts, timeoutsOf } from "../lib/shared_timeouts.ts";
import type { AwsCredentials } from "./aws_credentials.ts";
import { scrubAwsText } from "./aws_error_text.ts";
import { amzDate, errorMessage, isExpiredToken } from "./aws_json_protocol.ts";
import { SigningKeyCache, signRequest, uriEncode } from "./sigv4.ts";
import type { SqsClientOptions } from "./sqs_client.ts";

/** An S3 error answer or a transport failure; 0, 429 and 5xx (SlowDown is a 503) are retriable. */
export class S3Error extends AwsError {
  override name = "S3Error";
  readonly bucket: string;
  readonly key: string;
  constructor(bucket: string, key: string, ...args: AwsErrorArgs) {
    super("S3", (status) => status === 0 || status === 429 || status >= 500, ...args);
    this.bucket = bucket;
    this.key = key;
  }
}

/** The object is larger than the caller's cap: not read. */
export class S3TooLargeError extends S3Error {
  override name = "S3TooLargeError";
  readonly bytes: number | undefined;
  constructor(bucket: string, key: string, bytes: number | undefined, maxBytes: number) {
    const size = bytes === undefined ? "more than" : `${bytes} bytes, over`;
    super(bucket, key, "GetObject", "TooLarge", 200, `object is ${size} ${maxBytes} bytes`, {
      retriable: false,
    });
    this.bytes = bytes;
  }
}

/** As the SQS client's (region, credentials, fetch, clock, timeout per request, body included). */
export interface S3ClientOptions extends Omit<SqsClientOptions, "endpoint"> {
  /** AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL): path-style requests there; else AWS, virtual-hosted. */
  endpoint?: string | undefined;
}

/** One object request. */
interface ObjectCall {
  action: string;
  method: string;
  bucket: string;
  key: string;
  signal?: AbortSignal | undefined;
}

/** An error answer is read this far: the XML code and message fit many times over. */
const MAX_ERROR_BYTES = 16 * 1024;

/** The URL of an object: path-style on an endpoint override, else virtual-hosted on AWS. */
export function objectUrl(
  bucket: string,
  key: string,
  region: string,
  endpoint: string | undefined,
): string {
  const path = key.split("/").map(uriEncode).join("/");
  if (endpoint !== undefined) return `${endpoint.replace(/\/+$/, "")}/${uriEncode(bucket)}/${path}`;
  // A dotted bucket name does not match the wildcard certificate as a host name.
  if (bucket.includes(".")) {
    return `https://s3.${region}.amazonaws.com/${uriEncode(bucket)}/${path}`;
  }
  return `https://${bucket}.s3.${region}.amazonaws.com/${path}`;
}

/** `<Code>NoSuchKey</Code>` and `<Message>…</Message>` of an S3 XML error body. */
export function s3ErrorParts(text: string): { code: string; message: string } {
  const code = /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1] ?? "";
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
  return { code, message: scrubAwsText(message) };
}

/** The code an answer without a body (HEAD, an empty error) stands for. */
function codeOfStatus(status: number): string {
  if (status === 404) return "NotFound";
  if (status === 403) return "AccessDenied";
  if (status === 503) return "SlowDown";
  return `HTTP${status}`;
}

interface Sent {
  response: Response;
  keys: AwsCredentials;
}

export class S3Client {
  readonly #options: S3ClientOptions;
  readonly #fetch: typeof fetch;
  readonly #timeouts: SharedTimeouts;
  readonly #timeoutMs: number;
  readonly #cache: SigningKeyCache;

  constructor(options: S3ClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? globalFetch;
    this.#cache = new SigningKeyCache(options.sha256);
    this.#timeouts = timeoutsOf(options.clock);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * The object's bytes as UTF-8 text. An object over `maxBytes` is an S3TooLargeError, refused
   * by its Content-Length before a byte of it is read, or cut off at the cap when it sends none.
   */
  getObject(
    p: { bucket: string; key: string; maxBytes: number; signal?: AbortSignal | undefined },
  ): Promise<string> {
    const call = { action: "GetObject", method: "GET", ...p };
    return this.#call(call, async (response) => {
      const declared = response.headers.get("content-length");
      const bytes = declared === null ? undefined : Number(declared);
      if (bytes !== undefined && bytes > p.maxBytes) {
        await response.body?.cancel().catch(() => {});
        throw new S3TooLargeError(p.bucket, p.key, bytes, p.maxBytes);
      }
      try {
        return await readTextCapped(response, "S3 GetObject", p.maxBytes);
      } catch (error) {
        if (error instanceof HttpError) {
          throw new S3TooLargeError(p.bucket, p.key, undefined, p.maxBytes);
        }
        throw error;
      }
    });
  }

  /** Deletes the object (S3 answers 204 whether it existed or not). */
  async deleteObject(bucket: string, key: string, signal?: AbortSignal): Promise<void> {
    const call = { action: "DeleteObject", method: "DELETE", bucket, key, signal };
    await this.#call(call, async (response) => {
      await response.body?.cancel().catch(() => {});
    });
  }

  /** One request, signed again once after an ExpiredToken answer; `read` takes a 2xx answer. */
  async #call<T>(call: ObjectCall, read: (response: Response) => Promise<T>): Promise<T> {
    const { clock, onRequest, credentialsExpired } = this.#options;
    const started = clock.monotonic();
    let result = "ok";
    try {
      for (let attempt = 1;; attempt++) {
        try {
          return await this.#once(call, read);
        } catch (error) {
          const expired = error instanceof S3Error && isExpiredToken(error.code);
          if (!expired || attempt > 1 || !credentialsExpired) throw error;
          credentialsExpired((error.cause as { keys: AwsCredentials }).keys);
        }
      }
    } catch (error) {
      result = error instanceof TimeoutError
        ? "timeout"
        : error instanceof S3Error
        ? error.code
        : "aborted";
      throw error;
    } finally {
      onRequest?.(call.action, result, clock.monotonic() - started);
    }
  }

  async #once<T>(call: ObjectCall, read: (response: Response) => Promise<T>): Promise<T> {
    const { action, bucket, key, signal } = call;
    signal?.throwIfAborted();
    const fail = (code: string, status: number, message: string, cause?: unknown) =>
      new S3Error(bucket, key, action, code, status, message, { cause });
    const label = `S3 ${action}`;
    const timeout = new AbortController();
    const cancel = this.#timeouts.onTimeout(
      this.#timeoutMs,
      () => timeout.abort(new TimeoutError(label, this.#timeoutMs)),
    );
    const forget = signal && onAbort(signal, () => timeout.abort(signal.reason));
    try {
      const sent = await this.#send(call, label, timeout.signal, fail);
      const status = sent.response.status;
      if (status >= 200 && status < 300) return await read(sent.response);
      const text = await readTextPrefix(sent.response, MAX_ERROR_BYTES);
      const parts = s3ErrorParts(text);
      const code = parts.code || codeOfStatus(status);
      throw fail(code, status, parts.message, { keys: sent.keys });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.signal.aborted) throw timeout.signal.reason;
      if (error instanceof S3Error) throw error;
      if (error instanceof RedirectError) {
        const where = error.location ? `Location ${error.location}` : "no Location";
        throw fail("Redirect", error.status, `not followed (${where})`, error);
      }
      throw fail("NetworkError", 0, errorMessage(error), error);
    } finally {
      cancel();
      forget?.();
    }
  }

  async #send(
    { method, bucket, key }: ObjectCall,
    label: string,
    signal: AbortSignal,
    fail: (code: string, status: number, message: string, cause?: unknown) => S3Error,
  ): Promise<Sent> {
    const { region, endpoint, credentials, clock } = this.#options;
    let keys: AwsCredentials;
    try {
      keys = await credentials();
    } catch (error) {
      throw fail("CredentialsError", 0, errorMessage(error), error);
    }
    const signed = signRequest({
      url: objectUrl(bucket, key, region, endpoint),
      headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      body: "",
      keys,
      region,
      service: "s3",
      amzDate: amzDate(clock.now()),
      method,
      s3: true,
    }, this.#cache);
    const response = await fetchNoRedirect(this.#fetch, label, signed.url, {
      method,
      headers: signed.headers,
    }, signal);
    return { response, keys };
  }
}

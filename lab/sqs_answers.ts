/**
 * What the SQS proxy (lab/sqs_proxy.ts) can answer instead of SQS: a scripted answer, SQS's own
 * error answers with the texts real SQS sends, and the HTTP form of an answer. No Deno or Bun
 * API here: the proxy serves under either runtime.
 */

/** An answer the proxy gives in place of (or, with `passThrough`, before) SQS's own. */
export interface SqsAnswer {
  /** HTTP status, default 200. */
  status?: number;
  /** Objects are sent as JSON, strings as they are; default `{}`. */
  body?: unknown;
  /** Extra response headers (`x-amzn-query-error`, `date`, `location`, ...). */
  headers?: Record<string, string>;
  /** Wait this long first (ends early when the proxy closes). */
  delayMs?: number;
  /** Send the headers and part of the body, then break the connection. */
  breakConnection?: boolean;
  /** Send the body in chunks, without a Content-Length. */
  chunked?: boolean;
  /** After the delay, answer as SQS (fauxqs behind the proxy) does: a slow but true answer. */
  passThrough?: boolean;
}

/** What a function answer sees of the request: its action, its body, and SQS behind the proxy. */
export interface ScriptedCall {
  action: string;
  body: Record<string, unknown>;
  /** Sends `body` (default: the request's) on to SQS; resolves with its answer. */
  forward(body?: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
}

/** A scripted answer: fixed, or computed from the request (e.g. a partial batch failure). */
export type Scripted = SqsAnswer | ((call: ScriptedCall) => SqsAnswer | Promise<SqsAnswer>);

/** SQS's JSON-protocol error: `__type` with the code, and the legacy code in x-amzn-query-error. */
export function sqsError(
  code: string,
  options: {
    status?: number;
    message?: string;
    /** the legacy (query protocol) code, default `AWS.SimpleQueueService.<code>` */
    queryError?: string;
    headers?: Record<string, string>;
  } = {},
): SqsAnswer {
  const status = options.status ?? 400;
  const fault = status >= 500 ? "Receiver" : "Sender";
  return {
    status,
    body: { __type: `com.amazonaws.sqs#${code}`, message: options.message ?? code },
    headers: {
      "x-amzn-query-error": `${options.queryError ?? `AWS.SimpleQueueService.${code}`};${fault}`,
      ...options.headers,
    },
  };
}

const UNAVAILABLE = "The request has failed due to a temporary failure of the server.";
const NOT_IN_FLIGHT = "Message does not exist or is not available for visibility timeout change.";

/** SQS's answers, with real SQS's texts. */
export const sqsFaults = {
  /** 400 ThrottlingException, as SQS answers an exceeded request rate. */
  throttling: (): SqsAnswer =>
    sqsError("ThrottlingException", {
      message: "Rate exceeded",
      queryError: "ThrottlingException",
    }),
  /** 403 RequestThrottled, the legacy form of the same. */
  requestThrottled: (): SqsAnswer =>
    sqsError("RequestThrottled", { status: 403, message: "Request is throttled." }),
  internalError: (): SqsAnswer =>
    sqsError("InternalError", {
      status: 500,
      message: "We encountered an internal error. Please try again.",
    }),
  serviceUnavailable: (): SqsAnswer =>
    sqsError("ServiceUnavailable", { status: 503, message: UNAVAILABLE }),
  /** A 5xx with a non-JSON body, as a load balancer in front of SQS might answer. */
  gatewayError: (status = 502): SqsAnswer => ({
    status,
    body: "<html>Bad Gateway</html>",
    headers: { "content-type": "text/html" },
  }),
  receiptHandleIsInvalid: (handle = "AQEBzWwaftRI0KuVm4tP"): SqsAnswer =>
    sqsError("ReceiptHandleIsInvalid", {
      message: `The input receipt handle "${handle}" is not a valid receipt handle.`,
    }),
  messageNotInflight: (): SqsAnswer => sqsError("MessageNotInflight", { message: NOT_IN_FLIGHT }),
  /** Real SQS's usual answer to a visibility change on a stale receipt handle. */
  staleVisibility: (handle = "AQEBzWwaftRI0KuVm4tP"): SqsAnswer =>
    sqsError("InvalidParameterValue", {
      message: `Value ${handle} for parameter ReceiptHandle is invalid. Reason: ${NOT_IN_FLIGHT}`,
    }),
  batchRequestTooLong: (sent: number, limit = 1048576): SqsAnswer =>
    sqsError("BatchRequestTooLong", {
      message: `Batch requests cannot be longer than ${limit} bytes. You have sent ${sent} bytes.`,
    }),
  accessDenied: (
    message = "Access to the resource https://sqs.us-east-1.amazonaws.com/ is denied.",
  ): SqsAnswer => sqsError("AccessDenied", { status: 403, message, queryError: "AccessDenied" }),
  queueDoesNotExist: (): SqsAnswer =>
    sqsError("QueueDoesNotExist", {
      message: "The specified queue does not exist.",
      queryError: "AWS.SimpleQueueService.NonExistentQueue",
    }),
  signatureDoesNotMatch: (): SqsAnswer =>
    sqsError("SignatureDoesNotMatch", {
      status: 403,
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      queryError: "SignatureDoesNotMatch",
    }),
  /** SQS's clock-skew answer to a request signed at `amzDate`, with the server's Date header. */
  signatureExpired: (amzDate: string, serverMs: number, windowMs = 15 * 60_000): SqsAnswer => {
    const minutes = Math.round(windowMs / 60_000);
    const requestMs = parseAmzDate(amzDate) ?? 0;
    const message = requestMs > serverMs
      ? `Signature not yet current: ${amzDate} is still later than ${
        amzDateOf(serverMs + windowMs)
      } (${amzDateOf(serverMs)} + ${minutes} min.)`
      : `Signature expired: ${amzDate} is now earlier than ${amzDateOf(serverMs - windowMs)} (${
        amzDateOf(serverMs)
      } - ${minutes} min.)`;
    return sqsError("SignatureDoesNotMatch", {
      status: 403,
      message,
      queryError: "SignatureDoesNotMatch",
      headers: { date: new Date(serverMs).toUTCString() },
    });
  },
  /** 400 RequestTimeTooSkewed (the code other AWS services use) with the server's Date. */
  requestTimeTooSkewed: (serverMs: number): SqsAnswer =>
    sqsError("RequestTimeTooSkewed", {
      message: "The difference between the request time and the server's time is too large.",
      headers: { date: new Date(serverMs).toUTCString() },
    }),
  /** After `delayMs`: SQS's own answer, or `answer`. */
  slow: (delayMs: number, answer?: SqsAnswer): SqsAnswer =>
    answer ? { ...answer, delayMs } : { delayMs, passThrough: true },
  brokenConnection: (): SqsAnswer => ({ breakConnection: true }),
  /** A batch answer: the listed ids succeed, the others fail with `code`. */
  partialBatch: (ok: string[], failed: Array<{ id: string; code: string }>): SqsAnswer => ({
    body: {
      Successful: ok.map((Id) => ({ Id })),
      Failed: failed.map((f) => ({ Id: f.id, Code: f.code, Message: f.code, SenderFault: true })),
    },
  }),
};

/** `20250102T030405Z` for a time in ms. */
export function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

/** The time of an x-amz-date, ms; undefined when it is not one. */
export function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/** An answer's headers: SQS's, the proxy clock's Date, then the answer's own. */
export function answerHeaders(answer: SqsAnswer, nowMs: number): Headers {
  const headers = new Headers({
    "content-type": "application/x-amz-json-1.0",
    "x-amzn-requestid": crypto.randomUUID(),
    date: new Date(nowMs).toUTCString(),
  });
  for (const [k, v] of Object.entries(answer.headers ?? {})) headers.set(k, v);
  return headers;
}

/** An answer's body as sent: objects as JSON, strings as they are, `{}` when there is none. */
export function answerText(answer: SqsAnswer): string {
  if (answer.body === undefined) return "{}";
  return typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
}

/** The HTTP response for an answer. */
export function toResponse(answer: SqsAnswer, nowMs: number): Response {
  const headers = answerHeaders(answer, nowMs);
  const status = answer.status ?? 200;
  const bytes = new TextEncoder().encode(answerText(answer));
  if (!answer.breakConnection && !answer.chunked) return new Response(bytes, { status, headers });
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (answer.breakConnection && sent > 0) {
        return controller.error(new Error("connection broken by the SQS proxy"));
      }
      if (sent >= bytes.length) return controller.close();
      const end = answer.breakConnection ? Math.max(1, bytes.length >> 1) : sent + 65536;
      controller.enqueue(bytes.subarray(sent, end));
      sent = end;
    },
  });
  return new Response(stream, { status, headers });
}

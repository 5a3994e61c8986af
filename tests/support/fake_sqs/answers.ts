/** The fake SQS's answers: scripted ones, SQS's error shape, the usual faults, and the HTTP form. */

/** A scripted answer. */
export interface FakeAnswer {
  /** HTTP status, default 200. */
  status?: number;
  /** Response body: objects are JSON-encoded, strings sent as they are; default `{}`. */
  body?: unknown;
  /** Extra response headers (e.g. `x-amzn-query-error`, `date`). */
  headers?: Record<string, string>;
  /** Wait this long before answering (ends early if the fake closes). */
  delayMs?: number;
  /** Send the headers, then break the connection mid-body (a network failure for the client). */
  breakConnection?: boolean;
  /** After the delay, answer as the in-memory service would (a slow but correct answer). */
  passThrough?: boolean;
}

/** Builds an SQS JSON-protocol error answer (`__type` plus the `x-amzn-query-error` header). */
export function sqsErrorAnswer(
  code: string,
  options: {
    status?: number;
    message?: string;
    queryError?: string;
    headers?: Record<string, string>;
  } = {},
): FakeAnswer {
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

/** The usual faults. */
export const faults = {
  /** 400 ThrottlingException (as SQS answers an exceeded request rate). */
  throttling: (): FakeAnswer =>
    sqsErrorAnswer("ThrottlingException", {
      message: "Rate exceeded",
      queryError: "ThrottlingException",
    }),
  /** A 5xx with an InternalError body. */
  serverError: (status = 500): FakeAnswer =>
    sqsErrorAnswer(status === 503 ? "ServiceUnavailable" : "InternalError", { status }),
  /** A 5xx with a non-JSON body, as a load balancer might answer. */
  gatewayError: (status = 502): FakeAnswer => ({
    status,
    body: "<html>Bad Gateway</html>",
    headers: { "content-type": "text/html" },
  }),
  receiptHandleIsInvalid: (): FakeAnswer =>
    sqsErrorAnswer("ReceiptHandleIsInvalid", { message: "The input receipt handle is invalid." }),
  messageNotInflight: (): FakeAnswer =>
    sqsErrorAnswer("MessageNotInflight", {
      message: "Message does not exist or is not available for visibility timeout change.",
      queryError: "AWS.SimpleQueueService.MessageNotInflight",
    }),
  queueDoesNotExist: (): FakeAnswer =>
    sqsErrorAnswer("QueueDoesNotExist", {
      message: "The specified queue does not exist.",
      queryError: "AWS.SimpleQueueService.NonExistentQueue",
    }),
  /** 400 RequestTimeTooSkewed with the given server time in the Date header. */
  skewed: (serverTimeMs: number): FakeAnswer =>
    sqsErrorAnswer("RequestTimeTooSkewed", {
      message: "The difference between the request time and the server's time is too large.",
      headers: { date: new Date(serverTimeMs).toUTCString() },
    }),
  /** Answer after delayMs: by default as the in-memory service would, or with `answer`. */
  slow: (delayMs: number, answer?: FakeAnswer): FakeAnswer =>
    answer ? { ...answer, delayMs } : { delayMs, passThrough: true },
  /** Headers, then a broken connection. */
  brokenConnection: (): FakeAnswer => ({ breakConnection: true }),
  /** A partial batch answer: the listed ids succeed, the others fail with `code`. */
  partialBatch: (
    successfulIds: string[],
    failed: Array<{ id: string; code: string }>,
  ): FakeAnswer => ({
    body: {
      Successful: successfulIds.map((Id) => ({ Id })),
      Failed: failed.map((f) => ({
        Id: f.id,
        Code: f.code,
        Message: f.code,
        SenderFault: true,
      })),
    },
  }),
};

/** The HTTP response for an answer, with SQS's headers and the fake's Date. */
export function toResponse(answer: FakeAnswer, nowMs: number): Response {
  const headers = new Headers({
    "content-type": "application/x-amz-json-1.0",
    "x-amzn-requestid": crypto.randomUUID(),
    date: new Date(nowMs).toUTCString(),
  });
  for (const [k, v] of Object.entries(answer.headers ?? {})) headers.set(k, v);
  const status = answer.status ?? 200;
  if (answer.breakConnection) {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"Messages":['));
      },
      pull(controller) {
        controller.error(new Error("connection broken by the fake"));
      },
    });
    return new Response(stream, { status, headers });
  }
  const body = answer.body === undefined
    ? "{}"
    : typeof answer.body === "string"
    ? answer.body
    : JSON.stringify(answer.body);
  return new Response(body, { status, headers });
}

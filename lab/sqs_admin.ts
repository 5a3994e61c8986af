/**
 * An unsigned SQS JSON-protocol client for the lab's own calls to fauxqs
 * (create queues, send, count, read the DLQ). fauxqs does not check
 * signatures, and the lab must not depend on the worker's client it is testing.
 */

export interface SqsAdminOptions {
  /** fauxqs base URL, e.g. http://127.0.0.1:4566 (queue URLs name a host that does not resolve) */
  endpoint: string;
  /** default globalThis.fetch */
  fetch?: typeof fetch;
  /** per call, default 30000 ms (longer than a 20 s long poll) */
  timeoutMs?: number;
}

/** An SQS error answer: `code` is the short `__type` after `#`. */
export class SqsAdminError extends Error {
  override name = "SqsAdminError";
  constructor(
    readonly action: string,
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`SQS ${action} failed: HTTP ${status} ${code}: ${message}`);
  }
}

export interface SqsAdmin {
  /** one JSON-protocol call; resolves with the parsed answer, throws SqsAdminError on a non-2xx */
  call<T = Record<string, unknown>>(action: string, body: Record<string, unknown>): Promise<T>;
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  /** `dlqName`, then `name` with a 30 s visibility and a RedrivePolicy to it. */
  createQueueWithDlq(
    name: string,
    dlqName: string,
    maxReceiveCount: number,
  ): Promise<{ queueUrl: string; dlqUrl: string }>;
  attributes(queueUrl: string, names?: string[]): Promise<Record<string, string>>;
  /** visible + in flight + delayed */
  depth(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
}

export function createSqsAdmin(options: SqsAdminOptions): SqsAdmin {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const call = async <T>(action: string, body: Record<string, unknown>): Promise<T> => {
    const res = await doFetch(`${options.endpoint}/`, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `AmazonSQS.${action}`,
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      let code = "Unknown";
      let message = text.slice(0, 200);
      try {
        const err = JSON.parse(text) as { __type?: string; message?: string };
        code = (err.__type ?? code).split("#").pop() ?? code;
        message = err.message ?? message;
      } catch {
        // not JSON: keep the raw text
      }
      throw new SqsAdminError(action, res.status, code, message);
    }
    return (text ? JSON.parse(text) : {}) as T;
  };
  const attributes = async (queueUrl: string, names = ["All"]) =>
    (await call<{ Attributes?: Record<string, string> }>("GetQueueAttributes", {
      QueueUrl: queueUrl,
      AttributeNames: names,
    })).Attributes ?? {};
  const createQueue = async (name: string, attrs?: Record<string, string>) =>
    (await call<{ QueueUrl: string }>("CreateQueue", {
      QueueName: name,
      ...(attrs ? { Attributes: attrs } : {}),
    })).QueueUrl;
  return {
    call,
    createQueue,
    createQueueWithDlq: async (name, dlqName, maxReceiveCount) => {
      // A FIFO queue's DLQ is FIFO too; the names say which.
      const fifo = name.endsWith(".fifo") ? { FifoQueue: "true" } : undefined;
      const dlqUrl = await createQueue(dlqName, fifo);
      const queueUrl = await createQueue(name, {
        ...fifo,
        VisibilityTimeout: "30",
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${dlqName}`,
          maxReceiveCount,
        }),
      });
      return { queueUrl, dlqUrl };
    },
    attributes,
    depth: async (queueUrl) => {
      const a = await attributes(queueUrl, [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ]);
      return {
        visible: Number(a.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    },
  };
}

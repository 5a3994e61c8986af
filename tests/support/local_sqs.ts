/**
 * SQS for tests: fauxqs in process behind the lab's SQS proxy (lab/sqs_proxy.ts), which
 * records every request, can script answers and check signatures, and makes up what fauxqs
 * lacks (FIFO queues as SQS serves them included). Queue URLs name the proxy (`queueUrl`), so a client pointed at one talks to the proxy.
 * The helpers here (createQueue, send, messages, expire) are the proxy's own requests: never
 * recorded, counted, scripted or signature-checked.
 *
 * @example
 * ```ts
 * const sqs = await startLocalSqs({ queues: { work: { VisibilityTimeout: "30" } } });
 * try {
 *   sqs.respond("DeleteMessageBatch", sqsFaults.throttling()); // the first delete batch is throttled
 *   // ... point the code under test at sqs.queueUrl("work") ...
 *   assert.equal(sqs.requestsFor("ReceiveMessage").length, 1);
 *   assert.equal((await sqs.messages("work")).length, 0);
 * } finally {
 *   await sqs.close();
 * }
 * ```
 */
import { startFauxqs } from "../../lab/local_server.ts";
import { type SqsProxy, type SqsProxyOptions, startSqsProxy } from "../../lab/sqs_proxy.ts";

export interface LocalSqsOptions
  extends Omit<SqsProxyOptions, "target" | "record" | "ownQueueUrls" | "fifo"> {
  /** Queues to create at the start, in order: name -> attributes. */
  queues?: Record<string, Record<string, string>>;
}

export interface LocalSqs extends SqsProxy {
  /** fauxqs's own base URL, behind the proxy */
  readonly fauxqs: string;
  /** The URL of queue `name` (whether or not it exists), on the proxy. */
  queueUrl(name: string): string;
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  /** Puts a message on queue `name` as another producer would; resolves with its MessageId. */
  send(
    name: string,
    body: string,
    attributes?: Record<string, string>,
    fifo?: { groupId: string; dedupId?: string },
  ): Promise<string>;
  /** Ends a receive's visibility now, as if it ran out. */
  expire(name: string, receiptHandle: string): Promise<void>;
}

export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const fauxqs = await startFauxqs();
  const proxy = startSqsProxy({
    ...options,
    target: fauxqs.endpoint,
    record: true,
    ownQueueUrls: true,
    fifo: true,
  });
  const call = async (action: string, body: Record<string, unknown>) => {
    const got = await proxy.call(action, body);
    if (got.status !== 200) throw new Error(`SQS ${action}: ${JSON.stringify(got.body)}`);
    return got.body as Record<string, unknown>;
  };
  const queueUrl = (name: string) => `${proxy.url}/000000000000/${name}`;
  const sqs: LocalSqs = {
    ...proxy,
    fauxqs: fauxqs.endpoint,
    queueUrl,
    createQueue: async (name, attributes = {}) =>
      String((await call("CreateQueue", { QueueName: name, Attributes: attributes })).QueueUrl),
    send: async (name, body, attributes = {}, fifo) => {
      const sent = await call("SendMessage", {
        QueueUrl: queueUrl(name),
        MessageBody: body,
        MessageAttributes: Object.fromEntries(
          Object.entries(attributes).map(([k, v]) => [k, { DataType: "String", StringValue: v }]),
        ),
        ...(fifo ? { MessageGroupId: fifo.groupId } : {}),
        ...(fifo ? { MessageDeduplicationId: fifo.dedupId ?? crypto.randomUUID() } : {}),
      });
      return String(sent.MessageId);
    },
    expire: async (name, receiptHandle) => {
      await call("ChangeMessageVisibility", {
        QueueUrl: queueUrl(name),
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: 0,
      });
    },
    close: async () => {
      await proxy.close();
      await fauxqs.close();
    },
  };
  for (const [name, attributes] of Object.entries(options.queues ?? {})) {
    await sqs.createQueue(name, attributes);
  }
  return sqs;
}

/**
 * A FIFO queue `name` dead-lettering to "dlq.fifo" after `maxReceiveCount` receives, 30 s
 * visibility, with its DLQ: the `queues` of startLocalSqs.
 */
export function fifoQueues(name: string, maxReceiveCount: number) {
  return {
    "dlq.fifo": {},
    [name]: {
      VisibilityTimeout: "30",
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq.fifo",
        maxReceiveCount,
      }),
    },
  };
}

/** An unsigned JSON-protocol request to `url` (the proxy): the answer's status, text, JSON. */
export async function sqsPost(
  url: string,
  action: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  // deno-lint-ignore no-explicit-any -- a test reads whatever SQS answered
  const json: any = JSON.parse(text || "{}");
  return { status: res.status, text, json, headers: res.headers };
}

/**
 * A programmable fake SQS (JSON protocol) on 127.0.0.1 for tests.
 *
 * It has three parts: this file (the HTTP face and scripted answers), fake_sqs/model.ts (the
 * in-memory queue service) and fake_sqs/sigv4_verifier.ts (the signature check). Layers:
 * - scripted answers: `respond(action, ...answers)` queues one-shot answers for an action (or "*"
 *   for any), `setDefault(action, answer)` sets a persistent one (an outage); the `faults` helpers
 *   build the usual ones (throttling, 5xx, skew, slow, broken connection, ...).
 * - an in-memory queue service used when nothing is scripted: CreateQueue, GetQueueUrl,
 *   GetQueueAttributes, SendMessage(Batch), ReceiveMessage (long polling, visibility timeouts,
 *   receive counts, redrive to a dead-letter queue), DeleteMessage(Batch),
 *   ChangeMessageVisibility(Batch), PurgeQueue, with SQS's validation of batch ids, empty
 *   attribute values, characters outside SQS's set in bodies (InvalidMessageContents) and
 *   attribute values (InvalidParameterValue; lone surrogates too), the 10-attribute and 1 MiB
 *   limits and the 12-hour visibility limit.
 *
 * With `verifyWith` it checks every request's SigV4 signature (computed independently of the
 * client's signer) and answers 403 SignatureDoesNotMatch when it is wrong, or "Signature expired"
 * when x-amz-date is more than 5 minutes from the fake's clock (`now`), with a Date header taken
 * from that clock, so a client's clock-skew correction can be tested end to end.
 *
 * @example
 * ```ts
 * const sqs = await startFakeSqs({ verifyWith: { accessKeyId: "AKID", secretAccessKey: "SECRET" } });
 * try {
 *   const queueUrl = sqs.createQueue("work", { VisibilityTimeout: "30" });
 *   sqs.respond("DeleteMessageBatch", faults.throttling()); // first delete batch is throttled
 *   // ... point the code under test at queueUrl (its origin is the fake's url) ...
 *   assert.equal(sqs.requests.filter((r) => r.action === "ReceiveMessage").length, 1);
 *   assert.equal(sqs.messages("work").length, 0);
 * } finally {
 *   await sqs.close();
 * }
 * ```
 */

import { type FakeAnswer, toResponse } from "./fake_sqs/answers.ts";
import { ApiError, parseObject, pause, SqsModel } from "./fake_sqs/model.ts";
import { verifySignature } from "./fake_sqs/sigv4_verifier.ts";

/** One request as the fake saw it. */
export interface RecordedRequest {
  /** From `x-amz-target: AmazonSQS.<Action>`; "" when absent. */
  action: string;
  method: string;
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body, or undefined if it was not JSON. */
  body: Record<string, unknown> | undefined;
  /** Fake clock (`now`) when received. */
  receivedAt: number;
  /** Signature check result when `verifyWith` is set. */
  signatureValid?: boolean;
  /** Status the fake answered with (set once answered). */
  status?: number;
}

export interface FakeSqsOptions {
  /** Check SigV4 signatures against these keys; a wrong one gets 403 SignatureDoesNotMatch. */
  verifyWith?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Region for ARNs and the signature scope, default "us-east-1". */
  region?: string;
  /** Account id in queue URLs and ARNs, default "000000000000". */
  accountId?: string;
  /** The fake's clock: visibility timeouts, SentTimestamp, Date header, skew check; default Date.now. */
  now?: () => number;
  /** Allowed difference between x-amz-date and `now` when verifying, default 5 min. */
  maxSkewMs?: number;
  /** Queues to create at start: name -> attributes. */
  queues?: Record<string, Record<string, string>>;
}

/** A snapshot of a stored message. */
export interface FakeMessage {
  messageId: string;
  body: string;
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  receiveCount: number;
  sentAt: number;
  /** Whether a receive could return it now. */
  visible: boolean;
}

export interface FakeSqs {
  /** Base URL, e.g. http://127.0.0.1:41234 (also the origin of its queue URLs). */
  readonly url: string;
  /** Every request in arrival order. */
  readonly requests: RecordedRequest[];
  /** Queue one-shot answers for an action ("*" = any action); consumed before defaults. */
  respond(action: string, ...answers: FakeAnswer[]): void;
  /** A persistent answer for an action ("*" = any), or undefined to clear it. */
  setDefault(action: string, answer: FakeAnswer | undefined): void;
  /** Create a queue directly (idempotent); returns its URL. */
  createQueue(name: string, attributes?: Record<string, string>): string;
  /** URL of a queue by name (whether or not it exists). */
  queueUrl(name: string): string;
  /** Put a message directly, as SendMessage would; returns its id. */
  send(queueName: string, body: string, messageAttributes?: Record<string, string>): string;
  /** Messages currently stored in a queue (not deleted), in arrival order. */
  messages(queueName: string): FakeMessage[];
  /** Requests for one action. */
  requestsFor(action: string): RecordedRequest[];
  /** Stop the server: ends long polls and delayed answers, waits for connections to finish. */
  close(): Promise<void>;
}

/** The fake without a server: its handler serves under Deno (`startFakeSqs`) or Bun alike. */
export interface FakeSqsHandler extends Omit<FakeSqs, "url" | "close"> {
  /** The whole fake as a plain `(Request) => Response` handler. */
  handle(request: Request): Promise<Response>;
  /** The origin the server listens on (queue URLs start with it); creates `options.queues`. */
  listening(origin: string): void;
  /** Ends long polls and delayed answers. */
  abort(): void;
}

/** Builds the fake as a handler; `startFakeSqs` serves it on 127.0.0.1. */
export function createFakeSqs(options: FakeSqsOptions = {}): FakeSqsHandler {
  const region = options.region ?? "us-east-1";
  const now = options.now ?? Date.now;
  const maxSkewMs = options.maxSkewMs ?? 5 * 60_000;
  const verifyWith = options.verifyWith;
  const closing = new AbortController();
  const model = new SqsModel({ region, accountId: options.accountId ?? "000000000000", now });
  const requests: RecordedRequest[] = [];
  const scripted = new Map<string, FakeAnswer[]>();
  const defaults = new Map<string, FakeAnswer>();

  function nextScripted(action: string): FakeAnswer | undefined {
    for (const key of [action, "*"]) {
      const list = scripted.get(key);
      if (list && list.length > 0) return list.shift();
    }
    return defaults.get(action) ?? defaults.get("*");
  }

  async function answerFor(request: Request, record: RecordedRequest): Promise<FakeAnswer> {
    const denied = verifyWith
      ? await verifySignature(request, record.rawBody, { verifyWith, region, now, maxSkewMs })
      : undefined;
    if (verifyWith) record.signatureValid = denied === undefined;
    const answer = denied ?? nextScripted(record.action);
    // Long polls and delays end when the fake closes. Like SQS, a poll the client gave up on
    // still runs to its end (and may take messages, which reappear after their visibility).
    if (answer?.delayMs) await pause(answer.delayMs, closing.signal);
    if (answer && !answer.passThrough) return answer;
    try {
      return { body: await model.service(record.action, record.body ?? {}, closing.signal) };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return err.answer;
    }
  }

  async function handle(request: Request): Promise<Response> {
    const rawBody = await request.text();
    const target = request.headers.get("x-amz-target") ?? "";
    const record: RecordedRequest = {
      action: target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : "",
      method: request.method,
      path: new URL(request.url).pathname,
      headers: Object.fromEntries(request.headers),
      rawBody,
      body: parseObject(rawBody),
      receivedAt: now(),
    };
    requests.push(record);
    const answer = await answerFor(request, record);
    record.status = answer.status ?? 200;
    return toResponse(answer, now());
  }

  return {
    handle,
    listening(origin) {
      model.baseUrl = origin;
      for (const [name, attributes] of Object.entries(options.queues ?? {})) {
        model.createQueue(name, attributes);
      }
    },
    abort: () => closing.abort(),
    requests,
    respond(action, ...answers) {
      const list = scripted.get(action) ?? [];
      list.push(...answers);
      scripted.set(action, list);
    },
    setDefault(action, answer) {
      if (answer) defaults.set(action, answer);
      else defaults.delete(action);
    },
    createQueue: (name, attributes) => model.createQueue(name, attributes),
    queueUrl: (name) => model.queueUrl(name),
    send(queueName, body, messageAttributes = {}) {
      const attrs = Object.fromEntries(
        Object.entries(messageAttributes).map((
          [k, v],
        ) => [k, { DataType: "String", StringValue: v }]),
      );
      return model.storeMessage(model.queueFromUrl(queueName), body, attrs, 0).messageId;
    },
    messages: (queueName) => model.snapshot(queueName),
    requestsFor: (action) => requests.filter((r) => r.action === action),
  };
}

/** Starts the fake on 127.0.0.1 (port 0); see the module doc for usage. */
export async function startFakeSqs(options: FakeSqsOptions = {}): Promise<FakeSqs> {
  const fake = createFakeSqs(options);
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => listening.resolve() },
    fake.handle,
  );
  await listening.promise;
  const url = `http://127.0.0.1:${server.addr.port}`;
  fake.listening(url);
  return {
    ...fake,
    url,
    async close() {
      fake.abort();
      await server.shutdown();
    },
  };
}

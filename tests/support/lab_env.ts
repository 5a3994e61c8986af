/**
 * A small lab for tests: fauxqs in process with a main queue and a DLQ
 * (RedrivePolicy maxReceiveCount 3 unless told), plus whatever downstreams the test starts.
 * Everything binds 127.0.0.1 and closes in `close()`.
 */
import type { SqsAdmin } from "../../lab/sqs_admin.ts";
import { serveLocal, startFauxqs } from "../../lab/local_server.ts";
import { type Config, loadConfig } from "../../src/app/config.ts";
import { startWorker, type Worker } from "../../src/app/start_worker.ts";

export interface LabEnv {
  endpoint: string;
  admin: SqsAdmin;
  queueUrl: string;
  dlqUrl: string;
  /** Config for a worker against this lab; `overrides` are env vars. */
  config(urls: { enrich: string; validator: string }, overrides?: Record<string, string>): Config;
  /**
   * Env vars for a worker against this lab (workerEnv, LOG_LEVEL error, the queue's visibility
   * as SQS_VISIBILITY_TIMEOUT_SECONDS); `overrides` win.
   */
  env(
    urls: { enrich: string; validator: string },
    overrides?: Record<string, string>,
  ): Record<string, string>;
  /** Every message body in the DLQ with its sluice attributes (received, then deleted). */
  drainDlq(): Promise<Array<{ body: string; error?: string; reason?: string }>>;
  depth(url?: string): Promise<number>;
  close(): Promise<void>;
}

export async function startLabEnv(
  options: { redrive?: boolean; visibility?: number; maxReceiveCount?: number } = {},
): Promise<LabEnv> {
  const fauxqs = await startFauxqs();
  const { endpoint, admin } = fauxqs;
  const suffix = crypto.randomUUID().slice(0, 8);
  const dlqUrl = await admin.createQueue(`dlq-${suffix}`);
  const attributes: Record<string, string> = {
    VisibilityTimeout: String(options.visibility ?? 30),
  };
  if (options.redrive !== false) {
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:dlq-${suffix}`,
      maxReceiveCount: options.maxReceiveCount ?? 3,
    });
  }
  const queueUrl = await admin.createQueue(`main-${suffix}`, attributes);
  const env = (
    urls: { enrich: string; validator: string },
    overrides: Record<string, string> = {},
  ): Record<string, string> =>
    workerEnv(queueUrl, urls, {
      AWS_ENDPOINT_URL_SQS: endpoint,
      LOG_LEVEL: "error",
      SQS_VISIBILITY_TIMEOUT_SECONDS: attributes.VisibilityTimeout!,
      ...overrides,
    });
  return {
    endpoint,
    admin,
    queueUrl,
    dlqUrl,
    env,
    config: (urls, overrides) => loadConfig(env(urls, overrides)),
    async drainDlq() {
      const out: Array<{ body: string; error?: string; reason?: string }> = [];
      for (;;) {
        const answer = await admin.call<{ Messages?: Array<Record<string, unknown>> }>(
          "ReceiveMessage",
          {
            QueueUrl: dlqUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ["All"],
          },
        );
        const messages = answer.Messages ?? [];
        if (messages.length === 0) return out;
        for (const m of messages) {
          const attrs = (m.MessageAttributes ?? {}) as Record<string, { StringValue?: string }>;
          out.push({
            body: String(m.Body),
            ...(attrs.sluice_error?.StringValue ? { error: attrs.sluice_error.StringValue } : {}),
            ...(attrs.sluice_reason?.StringValue
              ? { reason: attrs.sluice_reason.StringValue }
              : {}),
          });
          await admin.call("DeleteMessage", { QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle });
        }
      }
    },
    async depth(url = queueUrl) {
      const d = await admin.depth(url);
      return d.visible + d.inFlight + d.delayed;
    },
    close: fauxqs.close,
  };
}

/**
 * Env vars for a worker on `queueUrl` (SQS at its origin, keys "test"/"test", port 0, 1 s long
 * polls, LOG_LEVEL info) and the two downstreams; `overrides` win.
 */
export function workerEnv(
  queueUrl: string,
  urls: { enrich: string; validator: string },
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    SQS_QUEUE_URL: queueUrl,
    // GetQueueUrl (the DLQ's) has no queue URL to take the endpoint from.
    AWS_ENDPOINT_URL_SQS: new URL(queueUrl).origin,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    ENRICH_URL: urls.enrich,
    VALIDATOR_URL: urls.validator,
    SQS_RECEIVE_WAIT_SECONDS: "1",
    HTTP_PORT: "0",
    LOG_LEVEL: "info",
    ...overrides,
  };
}

/** Sends bodies to a queue, 10 per call. */
export async function sendBodies(
  env: LabEnv,
  bodies: string[],
  queueUrl = env.queueUrl,
): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const entries = bodies.slice(i, i + 10).map((body, j) => ({
      Id: String(j),
      MessageBody: body,
    }));
    const result = await env.admin.call<{ Failed?: unknown[] }>("SendMessageBatch", {
      QueueUrl: queueUrl,
      Entries: entries,
    });
    if (result.Failed?.length) throw new Error(`send failed: ${JSON.stringify(result.Failed)}`);
  }
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts a worker in process, with its log lines collected. */
export function runWorker(env: Record<string, string>): Worker & { lines: string[] } {
  const lines: string[] = [];
  const worker = startWorker(loadConfig(env), { env, write: (line) => lines.push(line) });
  return Object.assign(worker, { lines });
}

/**
 * Runs a worker in process until `done` holds (waitFor, `timeoutMs`), then stops it, also when the
 * wait times out. Returns the stopped worker, for its metrics and log lines.
 */
export async function runWorkerUntil(
  env: Record<string, string>,
  done: (worker: ReturnType<typeof runWorker>) => boolean | Promise<boolean>,
  what: string,
  timeoutMs?: number,
): Promise<ReturnType<typeof runWorker>> {
  const worker = runWorker(env);
  try {
    await waitFor(() => done(worker), what, timeoutMs);
  } finally {
    await worker.stop();
  }
  return worker;
}

/**
 * Receives the main queue's message `times` times without settling it (visibility 0), so the
 * worker's receive is number `times + 1` (ApproximateReceiveCount).
 */
export async function receiveUnsettled(lab: LabEnv, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await lab.admin.call("ReceiveMessage", {
      QueueUrl: lab.queueUrl,
      MaxNumberOfMessages: 1,
      VisibilityTimeout: 0,
    });
  }
}

/** A JSON HTTP server on 127.0.0.1 for fake downstreams. */
export function serveJson(
  handler: (request: Request, url: URL) => Response | Promise<Response>,
): { url: string; close(): Promise<void> } {
  return serveLocal((request) => handler(request, new URL(request.url)));
}

/** Every message of a queue with its String attributes (received and hidden for 300 s). */
export async function receiveAll(
  lab: LabEnv,
  queueUrl: string,
): Promise<Array<{ body: string; attributes: Record<string, string> }>> {
  const out: Array<{ body: string; attributes: Record<string, string> }> = [];
  for (let empty = 0; empty < 2;) {
    const answer = await lab.admin.call<{ Messages?: Array<Record<string, unknown>> }>(
      "ReceiveMessage",
      {
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 300,
        MessageAttributeNames: ["All"],
      },
    );
    const messages = answer.Messages ?? [];
    empty = messages.length === 0 ? empty + 1 : 0;
    for (const m of messages) {
      const attrs = (m.MessageAttributes ?? {}) as Record<string, { StringValue?: string }>;
      out.push({
        body: String(m.Body),
        attributes: Object.fromEntries(
          Object.entries(attrs).map(([k, v]) => [k, v.StringValue ?? ""]),
        ),
      });
    }
  }
  return out;
}

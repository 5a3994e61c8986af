/**
 * Where `dlq redrive` sends each message back. `--to` when given; else the queue SQS says the
 * message came from (the DeadLetterQueueSourceArn system attribute, which SQS sets on messages a
 * redrive policy moved), found with GetQueueUrl once per ARN; else SQS_QUEUE_URL: a message
 * without that attribute is one sluice dead-lettered itself, from the queue it consumes. So a
 * DLQ shared by several source queues sends each message home, never all to one.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import { SqsError } from "../lib/errors.ts";
import { retry } from "../lib/retry.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import { parseQueueArn, queueKey } from "./dlq_select.ts";
import { type DlqSession, isUnreachable } from "./dlq_session.ts";

/** A message's destination: a queue URL, or why there is none (the message stays in the DLQ). */
export type Destination = { url: string } | { error: string };

/** What a message's DeadLetterQueueSourceArn says: a URL at once, a queue to look up, or neither. */
export function sourceOf(
  arn: string | undefined,
  queueUrl: string,
): { url: string } | { lookup: { name: string; account: string } } | { error: string } {
  if (!arn) return { url: queueUrl };
  const queue = parseQueueArn(arn);
  if (!queue) return { error: `unreadable DeadLetterQueueSourceArn ${JSON.stringify(arn)}` };
  if (queueKey(queueUrl) === `${queue.account}/${queue.name}`) return { url: queueUrl };
  return { lookup: queue };
}

/**
 * The destination of each message, with GetQueueUrl answers cached per ARN for the run.
 * Throws only when SQS cannot be reached; a refused lookup is that message's Destination error.
 */
export function destinations(
  session: DlqSession,
  deps: CliDeps,
  to: string | undefined,
): (message: SqsMessage) => Promise<Destination> {
  const found = new Map<string, Promise<Destination>>();
  return (message) => {
    if (to !== undefined) return Promise.resolve({ url: to });
    const arn = message.attributes.DeadLetterQueueSourceArn;
    const source = sourceOf(arn, session.queueUrl);
    if (!("lookup" in source)) return Promise.resolve(source);
    let url = found.get(arn!);
    if (!url) {
      url = lookUp(session, deps, source.lookup);
      found.set(arn!, url);
    }
    return url;
  };
}

async function lookUp(
  session: DlqSession,
  deps: CliDeps,
  queue: { name: string; account: string },
): Promise<Destination> {
  try {
    const url = await retry(
      () => session.sqs.getQueueUrl(queue.name, queue.account, deps.signal),
      cliRetry(deps),
    );
    return { url };
  } catch (error) {
    if (isUnreachable(error)) throw error;
    const code = error instanceof SqsError ? error.code : String((error as Error)?.message);
    return { error: `source queue ${queue.name}: GetQueueUrl ${code}` };
  }
}

/**
 * `deno task lab send --count N [--poison K]`: puts well-formed lab messages (known users of the
 * lab's dataset) and chosen poison on a running lab's queue, as a producer would. The queue comes
 * from SQS_QUEUE_URL and AWS_ENDPOINT_URL_SQS (the lines `--infra-only` printed), else from the
 * state file the running lab wrote.
 */
import { parseArgs } from "node:util";
import { buildDataset } from "./dataset.ts";
import { createSqsAdmin } from "./sqs_admin.ts";

export const SEND_USAGE = `usage: deno task lab send [--count N] [--poison K] [--seed S] [--users U]
  --count N     well-formed messages for known users (default 10)
  --poison K    poison messages on top: not JSON, missing fields, a bad event_ts (default 0)
  --seed S, --users U   the running lab's (default: from its state file, else 1 and 2000)
The queue: SQS_QUEUE_URL and AWS_ENDPOINT_URL_SQS as --infra-only printed them.`;

export interface SendFlags {
  help: boolean;
  count: number;
  poison: number;
  seed: number | undefined;
  users: number | undefined;
}

/** Flags of `lab send`; throws an Error with a one-line message. */
export function parseSendFlags(argv: string[]): SendFlags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      count: { type: "string" },
      poison: { type: "string" },
      seed: { type: "string" },
      users: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const int = (name: string, raw: string | undefined, dflt: number, max: number) => {
    if (raw === undefined) return dflt;
    if (!/^\d+$/.test(raw) || Number(raw) > max) {
      throw new Error(
        `--${name}: got ${JSON.stringify(raw)}, expected an integer from 0 to ${max}`,
      );
    }
    return Number(raw);
  };
  return {
    help: values.help ?? false,
    count: int("count", values.count, 10, 1_000_000),
    poison: int("poison", values.poison, 0, 1_000_000),
    seed: values.seed === undefined ? undefined : int("seed", values.seed, 1, 2 ** 32 - 1),
    users: values.users === undefined ? undefined : int("users", values.users, 2000, 10_000_000),
  };
}

/** The bodies to send: valid ones first, then poison; ids unique per call (`tag`). */
export function sendBodies(
  flags: { count: number; poison: number },
  knownIds: readonly string[],
  tag: string,
  nowSeconds: number,
): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < flags.count; i++) {
    bodies.push(JSON.stringify({
      message_id: `send-${tag}-${i}`,
      user_id: knownIds[i % knownIds.length],
      event_ts: nowSeconds,
      payload: { source: "lab send", n: i },
    }));
  }
  const poison = [
    (i: number) => `not json ${tag}-${i}`,
    (i: number) => JSON.stringify({ message_id: `poison-${tag}-${i}`, payload: {} }),
    (i: number) =>
      JSON.stringify({
        message_id: `poison-${tag}-${i}`,
        user_id: knownIds[0],
        event_ts: "yesterday",
        payload: {},
      }),
  ];
  for (let i = 0; i < flags.poison; i++) bodies.push(poison[i % poison.length]!(i));
  return bodies;
}

/** What a running infra-only lab records for `send`. */
export interface LabState {
  queueUrl: string;
  endpoint: string;
  seed: number;
  users: number;
}

export const STATE_FILE = new URL("./.runs/infra.json", import.meta.url).pathname;

export async function runSend(argv: string[]): Promise<number> {
  let flags: SendFlags;
  try {
    flags = parseSendFlags(argv);
  } catch (error) {
    console.error(`lab send: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (flags.help) {
    console.log(SEND_USAGE);
    return 0;
  }
  let state: Partial<LabState> = {};
  try {
    state = JSON.parse(await Deno.readTextFile(STATE_FILE));
  } catch {
    // No running infra-only lab recorded: the environment must say where the queue is.
  }
  const queueUrl = Deno.env.get("SQS_QUEUE_URL") || state.queueUrl;
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_SQS") || state.endpoint;
  if (!queueUrl || !endpoint) {
    console.error(
      "lab send: no lab queue: run `deno task lab --infra-only` and paste its export lines",
    );
    return 2;
  }
  const dataset = buildDataset({
    users: flags.users ?? state.users ?? 2000,
    seed: flags.seed ?? state.seed ?? 1,
  });
  const tag = Date.now().toString(36);
  const bodies = sendBodies(flags, dataset.knownIds, tag, Math.floor(Date.now() / 1000));
  const sqs = createSqsAdmin({ endpoint });
  for (let i = 0; i < bodies.length; i += 10) {
    const entries = bodies.slice(i, i + 10).map((body, j) => ({
      Id: String(j),
      MessageBody: body,
    }));
    const result = await sqs.call<{ Failed?: unknown[] }>("SendMessageBatch", {
      QueueUrl: queueUrl,
      Entries: entries,
    });
    if (result.Failed?.length) {
      console.error(
        `lab send: SQS refused ${result.Failed.length} message(s): ${
          JSON.stringify(result.Failed[0])
        }`,
      );
      return 1;
    }
  }
  console.log(`sent ${flags.count} message(s) and ${flags.poison} poison to ${queueUrl}`);
  return 0;
}

/**
 * The lab's services: fauxqs in process with the queue pair, the counting SQS proxy (holding
 * the FIFO queues itself on FIFO runs, lab/sqs_fifo.ts), the
 * enrichment and validator simulators, dynalite with `--table` (the workers behind its fault
 * proxy when the run has table faults); the env vars a worker needs;
 * and the teardown that closes them in reverse order.
 */
import type { Dataset } from "./dataset.ts";
import { type EnrichSim, startEnrichSim } from "./enrich_sim.ts";
import type { MessageSet } from "./generator.ts";
import { createSqsAdmin, type SqsAdmin } from "./sqs_admin.ts";
import { startFauxqs } from "./local_server.ts";
import { type SqsProxy, startSqsProxy } from "./sqs_proxy.ts";
import { startValidatorSim, type ValidatorSim } from "./validator_sim.ts";
import { spawnDynalite, type TableService } from "./dynalite.ts";
import { DEFAULT_CHAOS, type LabOptions } from "./lab_types.ts";
import { createSnsS3Admin, type SnsS3Admin } from "./sns_s3_admin.ts";
import { LAB_BUCKET } from "./wrapping.ts";

export const MAX_RECEIVE_COUNT = 3;

/** What to close at the end, in reverse order of starting. */
export type Cleanups = Array<() => Promise<unknown> | unknown>;

export interface LabInfra {
  sqs: SqsAdmin;
  queueUrl: string;
  dlqUrl: string;
  proxy: SqsProxy;
  enrich: EnrichSim;
  validator: ValidatorSim;
  table: TableService | undefined;
  /** the workers reach the table through its fault proxy (the run has table faults) */
  tableFaults: boolean;
  /** the env vars a worker needs (the caller's workerEnv on top) */
  env: Record<string, string>;
  /** SNS and S3 on fauxqs: the lab's bucket and a topic the main queue subscribes to */
  payloads: { admin: SnsS3Admin; topicArn: string } | undefined;
}

/** Starts every service; each one is pushed onto `cleanups` as soon as it runs. */
export async function startInfra(
  options: LabOptions,
  dataset: Dataset,
  set: MessageSet,
  cleanups: Cleanups,
): Promise<LabInfra> {
  const chaos = options.chaos ?? {};
  const fauxqs = await startFauxqs();
  cleanups.push(() => fauxqs.close());
  // With --fifo the proxy keeps the FIFO queues, so the lab's own calls go through it, uncounted.
  const fifoInProxy = !!options.fifo && options.fifoInProxy !== false;
  const proxy = startSqsProxy({ target: fauxqs.endpoint, fifo: fifoInProxy });
  cleanups.push(() => proxy.close());
  const sqs = fifoInProxy
    ? createSqsAdmin({ endpoint: proxy.url, fetch: proxy.ownFetch })
    : fauxqs.admin;
  const suffix = options.fifo ? ".fifo" : "";
  const { queueUrl, dlqUrl } = await sqs.createQueueWithDlq(
    `sluice-lab${suffix}`,
    `sluice-lab-dlq${suffix}`,
    MAX_RECEIVE_COUNT,
  );

  const payloads = options.envelopeShare || options.pointerShare
    ? await startPayloads(fauxqs.endpoint, queueUrl)
    : undefined;
  const enrich = startEnrichSim({
    dataset,
    scenario: options.scenario,
    seed: options.seed,
    instant: options.instant ?? false,
    slowEvery: chaos.slowEvery ?? 0,
    slowMs: (chaos.slowSeconds ?? DEFAULT_CHAOS.slowSeconds) * 1000,
  });
  cleanups.push(() => enrich.close());
  const validator = startValidatorSim({
    dataset,
    expected: set.expected,
    scenario: options.scenario,
    seed: options.seed,
    instant: options.instant ?? false,
    redirectEvery: chaos.redirectEvery ?? 0,
    ...(options.failingGroupSeconds
      ? {
        failingGroup: { group: busiestGroup(set.expected), ms: options.failingGroupSeconds * 1000 },
      }
      : {}),
    ...(options.validatorLatencyMs ? { latencyMs: options.validatorLatencyMs } : {}),
  });
  cleanups.push(() => validator.close());
  const table = options.table || options.tableMissing
    ? await spawnDynalite(undefined, options.seed)
    : undefined;
  if (table) cleanups.push(() => table.close());
  const tableFaults = !!table && !options.tableMissing && (chaos.tableFaults?.length ?? 0) > 0;
  const env = {
    ...workerEnv(options, { queueUrl, proxy, enrich, validator, table, tableFaults }),
    ...(payloads && !options.workerEnv?.AWS_ENDPOINT_URL_S3
      ? { AWS_ENDPOINT_URL_S3: fauxqs.endpoint }
      : {}),
  };
  return { sqs, queueUrl, dlqUrl, proxy, enrich, validator, table, tableFaults, env, payloads };
}

/** The lab's bucket, and a topic whose notifications reach the main queue in their envelope. */
async function startPayloads(endpoint: string, queueUrl: string) {
  const admin = createSnsS3Admin(endpoint);
  await admin.createBucket(LAB_BUCKET);
  const topicArn = await admin.createTopic("sluice-lab-events");
  const queueName = queueUrl.slice(queueUrl.lastIndexOf("/") + 1);
  await admin.subscribeQueue(topicArn, `arn:aws:sqs:us-east-1:000000000000:${queueName}`);
  return { admin, topicArn };
}

/** The table the workers are told of: a name dynalite does not have with `--table-missing`. */
export function missingTableName(table: string): string {
  return `${table}-missing`;
}

function workerEnv(
  options: LabOptions,
  s: Pick<LabInfra, "queueUrl" | "proxy" | "enrich" | "validator" | "table" | "tableFaults">,
): Record<string, string> {
  return {
    SQS_QUEUE_URL: s.queueUrl,
    AWS_ENDPOINT_URL_SQS: s.proxy.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "lab",
    AWS_SECRET_ACCESS_KEY: "lab-secret",
    ENRICH_URL: s.enrich.url,
    VALIDATOR_URL: s.validator.url,
    // Infra-only: the README's curl localhost:9400 must work for the worker the user starts.
    HTTP_PORT: options.infraOnly ? (Deno.env.get("HTTP_PORT") || "9400") : String(freePort()),
    ...(options.infraOnly ? { AWS_DEFAULT_REGION: "us-east-1" } : {}),
    // The user's LOG_LEVEL wins; infra-only prints none, so their shell keeps theirs.
    ...(options.infraOnly ? {} : { LOG_LEVEL: Deno.env.get("LOG_LEVEL") || "warn" }),
    ...(s.table
      ? {
        IDEMPOTENCY_TABLE: options.tableMissing ? missingTableName(s.table.table) : s.table.table,
        AWS_ENDPOINT_URL_DYNAMODB: s.tableFaults ? s.table.proxyUrl : s.table.url,
      }
      : {}),
    ...(options.rateLimit ? { RATE_LIMIT: options.rateLimit } : {}),
    ...(options.rateTable && s.table ? { RATE_LIMIT_TABLE: s.table.table } : {}),
    ...options.workerEnv,
  };
}

/** Runs every cleanup, last started first; one that fails does not stop the rest. */
export async function teardown(cleanups: Cleanups): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // keep closing the rest
    }
  }
}

/** A port that was free a moment ago, for the worker's health server. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The group with the most valid messages (the first such by name): the one made to fail. */
export function busiestGroup(expected: ReadonlyMap<string, { group?: string }>): string {
  const counts = new Map<string, number>();
  for (const e of expected.values()) {
    if (e.group !== undefined) counts.set(e.group, (counts.get(e.group) ?? 0) + 1);
  }
  let best = "";
  for (const [group, n] of counts) {
    const m = counts.get(best) ?? 0;
    if (n > m || (n === m && group < best)) best = group;
  }
  return best;
}

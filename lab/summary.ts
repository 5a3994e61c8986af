/**
 * What the lab counts at the end of a run: acceptances, rejections, the DLQ's bodies, the queue
 * left over, the request counts; handed to judge() and assembled into the LabSummary.
 */
import { busiestGroup, MAX_RECEIVE_COUNT } from "./infra.ts";
import type { MessageSet } from "./generator.ts";
import type { SqsAdmin } from "./sqs_admin.ts";
import { messageIdOf } from "./sqs_proxy.ts";
import type { WorkerMetricsTracker } from "./worker_metrics.ts";
import { type Slot, workerShares } from "./fleet.ts";
import type { LabInfra } from "./infra.ts";
import { judge, type JudgeObserved } from "./judge.ts";
import { duplicateCauses, type KillMark } from "./duplicate_causes.ts";
import type { LabOptions, LabSummary, TableFaultSummary } from "./lab_types.ts";
import type { ChaosState } from "./chaos.ts";
import { splitLatencies, worstWindows } from "./key_windows.ts";
import { parseRateLimit } from "../src/domain/rate_limit.ts";

/** What runLab knows of the run when it summarizes. */
export interface SummaryRun {
  /** problems found so far (they come first in the summary) */
  earlier: readonly string[];
  killedInFlight: number;
  kills: number;
  peakRssKb: number;
  doneAt: number;
  cpuMs?: number;
  slots?: Slot[];
  onWire?: number;
  /** the chaos kills, slot and restart time (for the duplicates' causes) */
  killLog?: readonly KillMark[];
  /** the table fault windows chaos started */
  tableWindows?: ChaosState["tableWindows"];
  /** message_id -> the kills it was in flight at */
  strandedAtKills?: ReadonlyMap<string, number>;
}

/** The parts of the lab summarize() reads. */
export interface SummaryContext {
  options: LabOptions;
  set: MessageSet;
  infra: LabInfra;
  workerMetrics: WorkerMetricsTracker;
  downstreamErrors: () => number;
  logFile: string;
}

type DlqMessage = { body: string; attributes: Record<string, string> };
type DlqCount =
  & Pick<
    JudgeObserved,
    "poisonInDlq" | "withoutAttributes" | "extraCopies" | "foreign" | "foreignIds"
  >
  & { strandedOut: number };

/** Counts, judges and assembles the summary. */
export async function summarize(ctx: SummaryContext, run: SummaryRun): Promise<LabSummary> {
  const { options, set, infra } = ctx;
  const { validator, proxy, enrich, table } = infra;
  const vStats = validator.stats();
  const failingGroup = options.failingGroupSeconds ? busiestGroup(set.expected) : undefined;
  const delivery = countDelivery(ctx, failingGroup);
  const dlq = await readDlq(infra.sqs, infra.dlqUrl);
  const stranded = run.strandedAtKills;
  const dlqCount = countDlq(
    set.poisonBodies,
    dlq,
    (id) => (stranded?.get(id) ?? 0) >= MAX_RECEIVE_COUNT,
  );
  const main = await infra.sqs.depth(infra.queueUrl);
  const leftInQueue = main.visible + main.inFlight + main.delayed;
  const pStats = proxy.stats();
  const eStats = enrich.stats();
  const enrichRequests = eStats.requests - eStats.healthRequests;
  const firstReceive = Math.min(...proxy.firstReceive.values(), run.doneAt);
  const durationSeconds = Math.max(0.001, (run.doneAt - firstReceive) / 1000);
  const { lost } = delivery;
  const rate = options.rateLimit ? parseRateLimit(options.rateLimit) : undefined;
  const latency = latencyFigures(ctx, delivery, rate?.windowMs ?? 1000);
  const { keyWindows } = latency;
  const causes = killCauses(ctx, run);
  const verdict = judge({ poison: set.poison, table: table !== undefined }, {
    earlier: run.earlier,
    lost,
    duplicateSubmissions: vStats.duplicates,
    duplicateCauses: causes,
    killedInFlight: run.killedInFlight,
    onWire: run.onWire ?? 0,
    wronglyRejected: delivery.wronglyRejected,
    wrongSample: delivery.wrongSample,
    notValid: delivery.notValid.length,
    notValidSample: delivery.notValid[0],
    ...dlqCount,
    leftInQueue,
    followedRedirects: vStats.followedRedirects,
    ...(options.fifo ? { orderInversions: vStats.orderInversions } : {}),
    rateLimit: rate && {
      ...rate,
      // The fleet's window may overshoot by one slot per worker (docs/rate-limits.md).
      allowed: rate.limit + (options.rateTable ? options.workers ?? 1 : 0),
      worst: keyWindows.worst,
      key: keyWindows.worstKeys[0]?.key ?? "",
    },
  });
  const settled = set.valid - lost + dlqCount.poisonInDlq;
  const cpuMs = run.kills === 0 ? run.cpuMs ?? 0 : 0;
  return {
    scenario: options.scenario,
    messages: options.messages,
    valid: set.valid,
    poison: set.poison,
    producerDuplicates: set.producerDuplicates,
    accepted: vStats.accepted,
    duplicateSubmissions: vStats.duplicates,
    ...(causes ? { duplicateCauses: causes } : {}),
    wronglyRejected: delivery.wronglyRejected,
    ...(options.fifo ? { orderInversions: vStats.orderInversions } : {}),
    ...(failingGroup !== undefined ? { failingGroup } : {}),
    ...(dlqCount.strandedOut > 0 ? { strandedOut: dlqCount.strandedOut } : {}),
    lost,
    deadLettered: dlq.length,
    poisonInDlq: dlqCount.poisonInDlq,
    leftInQueue,
    killedInFlight: run.killedInFlight,
    durationSeconds: round(durationSeconds, 3),
    msgPerSecond: round(settled / durationSeconds, 1),
    steadyMsgPerSecond: round(steadyRate([...validator.acceptedAt.values()]), 1),
    workerCpuMs: round(cpuMs, 0),
    cpuMsPerMessage: round(cpuMs / Math.max(1, settled), 4),
    enrichBrownoutRequests: eStats.brownoutRequests,
    ...(eStats.recoveredAfterMs !== undefined ? { enrichRecoveryMs: eStats.recoveredAfterMs } : {}),
    ...latency,
    sqsRequests: pStats.requests,
    sqsRequestsPerMessage: round(pStats.requests / Math.max(1, options.messages), 3),
    enrichRequests,
    enrichRequestsPerMessage: round(enrichRequests / Math.max(1, set.valid), 3),
    enrichIdsPerMessage: round(eStats.idsRequested / Math.max(1, set.valid), 3),
    peakRssMb: round(run.peakRssKb / 1024, 1),
    ok: verdict.ok,
    problems: verdict.problems,
    sqsRequestsByAction: pStats.byAction,
    rejectedByReason: vStats.rejectedByReason,
    kills: run.kills,
    dlqExtraCopies: dlqCount.extraCopies,
    logFile: options.infraOnly ? "" : ctx.logFile,
    downstreamErrors: ctx.downstreamErrors(),
    ...ctx.workerMetrics.counts(),
    table: table !== undefined,
    workers: workerShares(run.slots ?? [], durationSeconds),
    onWireAtKills: run.onWire ?? 0,
    ...await tableFigures(infra, run, firstReceive),
  };
}

/** Receive-to-accept percentiles, all, quiet and hot users', and each key's worst window. */
function latencyFigures(
  { set, infra }: SummaryContext,
  delivery: { latencies: number[]; keyed: Array<{ key: string; ms: number }> },
  windowMs: number,
) {
  const split = splitLatencies(delivery.keyed, new Set(set.hot));
  return {
    p50Ms: percentile(delivery.latencies, 0.5),
    p99Ms: percentile(delivery.latencies, 0.99),
    quietP50Ms: percentile(split.quiet, 0.5),
    quietP99Ms: percentile(split.quiet, 0.99),
    hotP99Ms: percentile(split.hot, 0.99),
    keyWindows: worstWindows(infra.validator.submissions, windowMs),
  };
}

/** The duplicate submissions by cause; undefined when kills left them untold (no fronts). */
function killCauses({ set, infra }: SummaryContext, run: SummaryRun) {
  // A kill's duplicates can only be told apart through the fronts (a single worker has none).
  const fronted = (run.slots ?? []).some((slot) => slot.front !== undefined);
  if (run.kills > 0 && !fronted) return undefined;
  return duplicateCauses({
    acceptCount: infra.validator.acceptCount,
    acceptances: (run.slots ?? []).flatMap((slot) =>
      (slot.front?.acceptances ?? []).map((a) => ({ ...a, slot: slot.index }))
    ),
    kills: run.killLog ?? [],
    producerDuplicateIds: new Set(
      set.outgoing.flatMap((m) => m.duplicate && m.messageId ? [m.messageId] : []),
    ),
  });
}

/** The table's request counts and, with faults, the proxy's; whatever the table child still answers. */
async function tableFigures(
  infra: LabInfra,
  run: SummaryRun,
  firstReceive: number,
): Promise<Pick<LabSummary, "tableRequests" | "tableFaults">> {
  const table = infra.table;
  if (!table) return {};
  const tableRequests = await answerWithin(table.requests());
  const proxy = infra.tableFaults ? await answerWithin(table.proxyStats()) : undefined;
  const tableFaults: TableFaultSummary | undefined = proxy && {
    ...proxy,
    windows: (run.tableWindows ?? []).map((w) => ({
      kind: w.kind,
      startedAtSeconds: round((w.startedAt - firstReceive) / 1000, 1),
      seconds: w.seconds,
    })),
  };
  return { ...(tableRequests ? { tableRequests } : {}), ...(tableFaults ? { tableFaults } : {}) };
}

/** `answer`, or undefined when it fails or takes more than 10 s (a child gone or stuck). */
async function answerWithin<T>(answer: Promise<T>): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), 10_000);
  });
  try {
    return await Promise.race([answer.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Valid messages never accepted, receive-to-accept latencies, and the wrong rejections. */
function countDelivery({ set, infra }: SummaryContext, failingGroup: string | undefined) {
  const { validator, proxy } = infra;
  let lost = 0;
  const latencies: number[] = [];
  const keyed: Array<{ key: string; ms: number }> = [];
  for (const [id, expected] of set.expected) {
    const acceptedAt = validator.acceptedAt.get(id);
    if (acceptedAt === undefined) {
      lost++;
      continue;
    }
    if (failingGroup !== undefined && expected.group === failingGroup) continue;
    const receivedAt = proxy.firstReceive.get(id);
    if (receivedAt === undefined) continue;
    latencies.push(acceptedAt - receivedAt);
    keyed.push({ key: expected.user_id, ms: acceptedAt - receivedAt });
  }
  latencies.sort((a, b) => a - b);
  const isValid = (id: string | undefined): id is string => !!id && set.expected.has(id);
  const wrongIds = new Set(
    validator.rejections.flatMap((r) => (isValid(r.messageId) ? [r.messageId] : [])),
  );
  const wrongSample = validator.rejections.find((r) => r.messageId && wrongIds.has(r.messageId));
  const notValid = validator.rejections.filter((r) => !isValid(r.messageId));
  return { lost, latencies, keyed, wronglyRejected: wrongIds.size, wrongSample, notValid };
}

/**
 * The DLQ's copies grouped by body, against the poison bodies the generator made. A valid message
 * for which `strandedOut` holds (in flight at a kill on every receive SQS allowed) was moved by the
 * redrive policy with no worker left to settle it: counted apart, not as a worker's fault.
 */
export function countDlq(
  poisonBodies: readonly string[],
  dlq: readonly DlqMessage[],
  strandedOut: (messageId: string) => boolean = () => false,
): DlqCount {
  // Grouped by body: a kill between the DLQ send and the delete legitimately sends twice.
  const copies = new Map<string, Array<Record<string, string>>>();
  for (const m of dlq) copies.set(m.body, [...(copies.get(m.body) ?? []), m.attributes]);
  let poisonInDlq = 0;
  let withoutAttributes = 0;
  let extraCopies = 0;
  for (const body of new Set(poisonBodies)) {
    const found = copies.get(body) ?? [];
    copies.delete(body);
    if (found.length === 0) continue;
    extraCopies += found.length - 1;
    if (found.some((a) => a.sluice_error && a.sluice_reason)) poisonInDlq++;
    else withoutAttributes++;
  }
  let stranded = 0;
  for (const [body, found] of copies) {
    const id = messageIdOf(body);
    if (id === undefined || !strandedOut(id) || found.some((a) => a.sluice_error)) continue;
    stranded += found.length;
    copies.delete(body);
  }
  // Whatever is left is not a poison body: most likely a valid message dead-lettered.
  const foreignIds = [...copies.keys()].map((b) => messageIdOf(b) ?? b.slice(0, 40)).slice(0, 3);
  const foreign = [...copies.values()].reduce((n, c) => n + c.length, 0);
  return {
    poisonInDlq,
    withoutAttributes,
    extraCopies,
    foreign,
    foreignIds,
    strandedOut: stranded,
  };
}

/**
 * Every message in the DLQ: body and message attributes (string values). Each batch is deleted
 * once read: on a FIFO DLQ an unread message of a group stays hidden while an earlier one of
 * the group is in flight, so a read that only hides would miss it.
 */
async function readDlq(sqs: SqsAdmin, dlqUrl: string): Promise<DlqMessage[]> {
  const out: DlqMessage[] = [];
  // fauxqs, like SQS, may answer a short batch; stop after a few empty answers in a row.
  for (let empty = 0; empty < 3;) {
    const res = await sqs.call<{ Messages?: Array<Record<string, unknown>> }>("ReceiveMessage", {
      QueueUrl: dlqUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      VisibilityTimeout: 3600,
      MessageAttributeNames: ["All"],
      MessageSystemAttributeNames: ["All"],
    });
    const messages = res.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    for (const m of messages) {
      const attrs: Record<string, string> = {};
      const raw = (m.MessageAttributes ?? {}) as Record<string, { StringValue?: string }>;
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v.StringValue === "string") attrs[k] = v.StringValue;
      }
      out.push({ body: String(m.Body ?? ""), attributes: attrs });
    }
    await sqs.call("DeleteMessageBatch", {
      QueueUrl: dlqUrl,
      Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
    });
  }
  return out;
}

/**
 * The steady rate of a run from its acceptance times (ms): the acceptances between the 10th and
 * the 90th percentile ÷ the time between them, per second; 0 with fewer than 10 acceptances.
 */
export function steadyRate(acceptedAt: readonly number[]): number {
  if (acceptedAt.length < 10) return 0;
  const sorted = [...acceptedAt].sort((a, b) => a - b);
  const lo = Math.floor(0.1 * (sorted.length - 1));
  const hi = Math.floor(0.9 * (sorted.length - 1));
  const spanMs = sorted[hi]! - sorted[lo]!;
  return spanMs > 0 ? ((hi - lo) * 1000) / spanMs : 0;
}

/** Nearest-rank percentile of sorted values, rounded to 0.1 ms; 0 when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return round(sorted[idx]!, 1);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

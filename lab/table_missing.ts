/**
 * `--table-missing`: IDEMPOTENCY_TABLE names a table dynalite does not have. A
 * missing table must stop the worker at startup with exit 2, before any message
 * is received (docs/scaling.md): the lab waits for each worker's exit, times it,
 * and checks the queue is untouched — every message still visible, none in
 * flight, no ReceiveMessage made. The usual verdict (everything accepted) does
 * not apply to this run; `tableMissingProblems` is its verdict.
 */
import { sleep } from "../src/lib/clock.ts";
import type { Slot } from "./fleet.ts";
import type { LabInfra } from "./infra.ts";

export interface TableMissingSummary {
  /** the name the workers were given */
  table: string;
  /** per worker: exit code (null: still running at the deadline, then SIGKILLed), spawn → exit */
  exits: Array<{ code: number | null; ms: number; lastLine: string }>;
  /** messages put on the queue */
  sent: number;
  /** the queue at the end: ApproximateNumberOfMessages, ...NotVisible */
  visible: number;
  inFlight: number;
  /** ReceiveMessage requests the SQS proxy saw, and messages they returned */
  receiveRequests: number;
  messagesReceived: number;
}

/** How long a worker may take to give up on a missing table. */
const EXIT_DEADLINE_MS = 30_000;

/** Waits for every worker to exit (SIGKILL at the deadline or on `signal`), then reads the queue. */
export async function watchTableMissing(
  slots: readonly Slot[],
  infra: LabInfra,
  table: string,
  sent: number,
  signal?: AbortSignal,
): Promise<TableMissingSummary> {
  const deadline = Date.now() + EXIT_DEADLINE_MS;
  const exits = await Promise.all(slots.map(async ({ process: worker }) => {
    const exitedAt = worker.status.then(() => Date.now());
    while (!worker.exited && Date.now() < deadline && !signal?.aborted) await sleep(50);
    const forced = !worker.exited;
    const status = forced ? await worker.kill("SIGKILL") : await worker.status;
    return {
      code: forced ? null : status.code,
      ms: (await exitedAt) - worker.startedAt,
      lastLine: worker.tail().at(-1) ?? "",
    };
  }));
  const depth = await infra.sqs.depth(infra.queueUrl);
  const proxy = infra.proxy.stats();
  return {
    table,
    exits,
    sent,
    visible: depth.visible,
    inFlight: depth.inFlight,
    receiveRequests: proxy.byAction.ReceiveMessage ?? 0,
    messagesReceived: proxy.messagesReceived,
  };
}

/** The run's verdict: each worker exited 2, nothing was received, every message is still visible. */
export function tableMissingProblems(s: TableMissingSummary): string[] {
  const problems: string[] = [];
  s.exits.forEach((e, i) => {
    if (e.code === null) {
      problems.push(
        `worker ${i + 1} still ran ${EXIT_DEADLINE_MS / 1000} s after its start (SIGKILLed); ` +
          `a missing table must stop startup with exit 2`,
      );
    } else if (e.code !== 2) {
      problems.push(`worker ${i + 1} exited with code ${e.code}, expected 2 (a missing table)`);
    }
  });
  if (s.receiveRequests > 0 || s.messagesReceived > 0) {
    problems.push(
      `the worker received ${s.messagesReceived} messages (${s.receiveRequests} ReceiveMessage ` +
        `requests) with a missing table`,
    );
  }
  if (s.visible !== s.sent || s.inFlight > 0) {
    problems.push(
      `the queue was touched: ${s.visible} of ${s.sent} messages visible, ${s.inFlight} in flight`,
    );
  }
  return problems;
}

/** "exit 2 after 812 ms; queue untouched: 1500/1500 visible, 0 in flight, 0 received". */
export function formatTableMissing(s: TableMissingSummary): string {
  const exits = s.exits.map((e) =>
    e.code === null ? `no exit (SIGKILL after ${e.ms} ms)` : `exit ${e.code} after ${e.ms} ms`
  ).join(", ");
  return `IDEMPOTENCY_TABLE=${s.table}: ${exits}; queue ${s.visible}/${s.sent} visible, ` +
    `${s.inFlight} in flight, ${s.messagesReceived} received (ReceiveMessage ${s.receiveRequests})`;
}

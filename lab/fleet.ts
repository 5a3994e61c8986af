/**
 * Several sluice processes on one lab queue (`--workers N`). Each
 * worker slot talks to the validator through its own counting front, so the
 * summary can say what each worker accepted and, when a worker is SIGKILLed,
 * how many of its submissions were on the wire: sent, and their acceptance not
 * yet recorded (no answer yet, or — with the table — an answer whose COMPLETED
 * write had not landed). That number bounds the duplicates a kill may cause.
 */
import type { DynamoDbClient } from "../src/adapters/dynamodb_client.ts";
import type { WorkerProcess } from "./worker_process.ts";
import { serveLocal } from "./local_server.ts";
import { sleep } from "../src/lib/clock.ts";

/** A forwarding proxy in front of the validator for one worker slot. */
export interface ValidatorFront {
  /** Base URL to give the worker as VALIDATOR_URL. */
  url: string;
  /** Submissions forwarded and not answered yet. */
  inFlight(): number;
  /** 2xx answers passed back. */
  accepted(): number;
  /** message_id → when its 2xx answer went back (ms). */
  readonly acceptedAt: Map<string, number>;
  /** every 2xx answer, oldest first: which message_id, when its request arrived, when it was answered */
  readonly acceptances: FrontAcceptance[];
  close(): Promise<void>;
}

/** One acceptance through a front. */
export interface FrontAcceptance {
  messageId: string;
  /** when the worker's request arrived (ms): before a kill means the killed worker sent it */
  sentAt: number;
  acceptedAt: number;
}

/** Starts a front that forwards every request to `target` (the validator's base URL). */
export function startValidatorFront(target: string): ValidatorFront {
  let inFlight = 0;
  let accepted = 0;
  const acceptedAt = new Map<string, number>();
  const acceptances: FrontAcceptance[] = [];
  const server = serveLocal(async (req) => {
    const url = new URL(req.url);
    // Counted from the first byte: a body the worker finished sending just before its kill is
    // still forwarded, so it must be on the wire at the kill.
    inFlight++;
    const sentAt = Date.now();
    let body: string | undefined;
    try {
      body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.text();
    } catch {
      // The worker went away (SIGKILL) mid-request: nothing reached the validator.
      inFlight--;
      return new Response("client gone", { status: 499 });
    }
    try {
      // Not tied to the worker's connection: a submission the worker abandons (or a worker
      // SIGKILLed) still reaches the validator, as it would over a real network.
      const answer = await fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers: { "content-type": req.headers.get("content-type") ?? "application/json" },
        ...(body !== undefined ? { body } : {}),
        // A redirect goes back to the worker as it is: the front must not follow it either.
        redirect: "manual",
      });
      const text = await answer.text();
      if (answer.status >= 200 && answer.status < 300 && body) {
        accepted++;
        const id = messageIdOf(body);
        if (id !== undefined) {
          acceptedAt.set(id, Date.now());
          acceptances.push({ messageId: id, sentAt, acceptedAt: Date.now() });
        }
      }
      return new Response(text, { status: answer.status, headers: answer.headers });
    } finally {
      inFlight--;
    }
  });
  return {
    url: server.url,
    inFlight: () => inFlight,
    accepted: () => accepted,
    acceptedAt,
    acceptances,
    close: server.close,
  };
}

function messageIdOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { message_id?: unknown }).message_id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The one table call the on-wire count makes (the lab's direct client to dynalite). */
export interface TableReader {
  getItem: DynamoDbClient["getItem"];
}

/** The table as the count reads it. */
export interface KillTable {
  client: TableReader;
  name: string;
  /** message_ids already seen COMPLETED: a completed record stays so, it is not read again */
  completed: Set<string>;
}

export interface OnWireOptions {
  /** tries per record, default 4 */
  attempts?: number;
  /** before the second try, doubling after, ms; default 250 */
  retryDelayMs?: number;
  /** reads at once, default 16 */
  concurrency?: number;
  /** default src/lib/clock.ts sleep */
  sleep?: (ms: number) => Promise<void>;
}

/** How many submissions were on the wire, and how many records could not be read (counted in). */
export interface OnWire {
  onWire: number;
  unread: number;
}

/**
 * Submissions of a just-killed worker that were on the wire: unanswered ones,
 * plus (with the table) accepted ones whose record is not COMPLETED — the
 * worker died between the validator's answer and its UpdateItem. A record the
 * table does not give after every try is counted as on the wire (the bound stays
 * an upper bound) and reported in `unread`: a slow table never fails the lab.
 * Only acceptances since `since` (the killed process's start) are the killed worker's.
 */
export async function onWireAtKill(
  front: ValidatorFront,
  table: KillTable | undefined,
  since: number,
  options: OnWireOptions = {},
): Promise<OnWire> {
  const result = { onWire: front.inFlight(), unread: 0 };
  if (!table) return result;
  const ids = [...front.acceptedAt].flatMap(([id, at]) =>
    at >= since && !table.completed.has(id) ? [id] : []
  );
  let next = 0;
  const reader = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const status = await readStatus(table, id, options);
      if (status === "COMPLETED") table.completed.add(id);
      else result.onWire++;
      if (status === undefined) result.unread++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, reader));
  return result;
}

/** The record's status ("" when there is none), undefined when every try failed. */
async function readStatus(
  table: KillTable,
  id: string,
  options: OnWireOptions,
): Promise<string | undefined> {
  const attempts = options.attempts ?? 4;
  const pause = options.sleep ?? sleep;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const item = await table.client.getItem(table.name, { id: { S: id } }, {
        consistentRead: true,
      });
      return item?.status && "S" in item.status ? item.status.S : "";
    } catch {
      if (attempt < attempts) await pause((options.retryDelayMs ?? 250) * 2 ** (attempt - 1));
    }
  }
  return undefined;
}

/** One worker slot: the running process (restarted after a kill) and its front. */
export interface Slot {
  index: number;
  process: WorkerProcess;
  front: ValidatorFront | undefined;
  kills: number;
  /** the worker's HTTP_PORT (health and metrics) */
  port: number;
  /** without a front: `accepted` from the worker's /metrics just before it was stopped */
  acceptedByMetrics?: number | undefined;
}

/** Per-worker line of the summary. */
export interface WorkerShare {
  worker: number;
  accepted: number;
  msgPerSecond: number;
  kills: number;
}

/** Each slot's acceptances and rate over the run; empty when there are no fronts. */
export function workerShares(slots: readonly Slot[], durationSeconds: number): WorkerShare[] {
  const accepted = (s: Slot) => s.front?.accepted() ?? s.acceptedByMetrics;
  if (slots.some((s) => accepted(s) === undefined)) return [];
  return slots.map((s) => ({
    worker: s.index + 1,
    accepted: accepted(s)!,
    msgPerSecond: Math.round((accepted(s)! / Math.max(0.001, durationSeconds)) * 10) / 10,
    kills: s.kills,
  }));
}

/** `sluice_messages_total{outcome="accepted"}` from a worker's /metrics; undefined if unreadable. */
export async function scrapeAccepted(port: number): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(2000),
    });
    const text = await response.text();
    const match = /^sluice_messages_total\{outcome="accepted"\} (\d+)/m.exec(text);
    return match ? Number(match[1]) : 0;
  } catch {
    return undefined;
  }
}

/** "w1 1234 (411.3/s, 1 kill) | w2 ..." for the summary. */
export function formatShares(shares: readonly WorkerShare[]): string {
  return shares.map((s) =>
    `w${s.worker} ${s.accepted} (${s.msgPerSecond}/s${
      s.kills ? `, ${s.kills} kill${s.kills > 1 ? "s" : ""}` : ""
    })`
  ).join(" | ");
}

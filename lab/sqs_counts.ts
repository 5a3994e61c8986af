/**
 * What the SQS proxy counts for the lab (lab/sqs_proxy.ts): requests by action, messages
 * received (redeliveries included) and deleted, when each message_id was first received (for
 * receive-to-accept latency), and the receipt handles held: what a worker killed now would strand.
 */
import type { ProxyCounts } from "./forward.ts";

export interface SqsProxyStats extends ProxyCounts {
  /** messages in ReceiveMessage answers, redeliveries included */
  messagesReceived: number;
  /** distinct SQS MessageIds received */
  distinctReceived: number;
  /** receipt handles deleted successfully */
  deleted: number;
  /** requests answered 503 (or stalled) by the simulated outage */
  outageAnswers: number;
}

type Body = Record<string, unknown>;

export class SqsCounts {
  readonly stats: SqsProxyStats = {
    requests: 0,
    byAction: {},
    messagesReceived: 0,
    distinctReceived: 0,
    deleted: 0,
    outageAnswers: 0,
  };
  readonly firstReceive = new Map<string, number>();
  /** receipt handle -> when its visibility ends */
  readonly #held = new Map<string, number>();
  /** receipt handle -> the message_id of its body, when it has one */
  readonly #heldIds = new Map<string, string>();
  readonly #seenMessageIds = new Set<string>();
  readonly #now: () => number;
  readonly #defaultVisibility: number;

  constructor(now: () => number, defaultVisibilitySeconds: number) {
    this.#now = now;
    this.#defaultVisibility = defaultVisibilitySeconds;
  }

  /** Counts what a successful receive, delete or visibility change did. */
  onSuccess(action: string, request: Body, answer: Body): void {
    if (action === "ReceiveMessage") this.#onReceive(request, answer);
    else if (action.startsWith("DeleteMessage") || action.startsWith("ChangeMessageVisibility")) {
      this.#onSettle(action, request, answer);
    }
  }

  /** Handles received, not deleted, whose visibility has not run out. */
  inFlight(): number {
    return this.#live().length;
  }

  /** The message_ids of the bodies in flight (as inFlight), one per handle. */
  inFlightIds(): string[] {
    return this.#live().flatMap((handle) => this.#heldIds.get(handle) ?? []);
  }

  #live(): string[] {
    const t = this.#now();
    const live: string[] = [];
    for (const [handle, visibleAt] of this.#held) {
      if (visibleAt > t) live.push(handle);
      else this.#forget(handle); // an expired handle can no longer be deleted by its holder
    }
    return live;
  }

  #forget(handle: string): void {
    this.#held.delete(handle);
    this.#heldIds.delete(handle);
  }

  #onReceive(request: Body, answer: Body): void {
    const t = this.#now();
    const vis = typeof request.VisibilityTimeout === "number"
      ? request.VisibilityTimeout
      : this.#defaultVisibility;
    const messages = Array.isArray(answer.Messages) ? answer.Messages as Body[] : [];
    for (const m of messages) {
      this.stats.messagesReceived++;
      if (typeof m.MessageId === "string") this.#seenMessageIds.add(m.MessageId);
      const id = messageIdOf(m.Body);
      if (typeof m.ReceiptHandle === "string") {
        this.#held.set(m.ReceiptHandle, t + vis * 1000);
        if (id !== undefined) this.#heldIds.set(m.ReceiptHandle, id);
      }
      if (id !== undefined && !this.firstReceive.has(id)) this.firstReceive.set(id, t);
    }
    this.stats.distinctReceived = this.#seenMessageIds.size;
  }

  /** Applies deletes and visibility changes that succeeded to the held receipt handles. */
  #onSettle(action: string, request: Body, answer: Body): void {
    const t = this.#now();
    const entries = action.endsWith("Batch") && Array.isArray(request.Entries)
      ? request.Entries as Body[]
      : [{ ...request, Id: "" }];
    const ok = action.endsWith("Batch")
      ? new Set(
        (Array.isArray(answer.Successful) ? answer.Successful as Body[] : []).map((s) =>
          String(s.Id)
        ),
      )
      : new Set([""]);
    for (const e of entries) {
      const handle = typeof e.ReceiptHandle === "string" ? e.ReceiptHandle : "";
      if (!ok.has(String(e.Id)) || !this.#held.has(handle)) continue;
      if (action.startsWith("DeleteMessage")) {
        this.#forget(handle);
        this.stats.deleted++;
      } else this.#held.set(handle, t + Number(e.VisibilityTimeout ?? 0) * 1000);
    }
  }
}

/** The message_id of a body that looks like a message, else undefined (poison bodies included). */
export function messageIdOf(body: unknown): string | undefined {
  if (typeof body !== "string" || !body.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    const id = (parsed as Record<string, unknown>).message_id;
    return typeof id === "string" && id !== "" ? id : undefined;
  } catch {
    return undefined;
  }
}

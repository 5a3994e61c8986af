/**
 * The body behind an SQS body (docs/payloads.md): an SNS envelope unwrapped, an extended-client S3
 * pointer fetched within the byte budget. Asked only of bodies that may be wrapped
 * (domain/envelope.ts mayBeWrapped) or that failed as a message; a plain message never comes here.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import { S3Error, S3TooLargeError } from "../adapters/s3_client.ts";
import {
  mayBeEnvelope,
  mayBeWrapped,
  type MessageAttributes,
  s3Location,
  type S3Pointer,
  unwrapBody,
  type Unwrapped,
  type UnwrapSettings,
} from "../domain/envelope.ts";
import { parseMessage, type ParseResult } from "../domain/message_schema.ts";
import type { Verdict } from "../domain/outcome.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { ByteBudget } from "../lib/byte_budget.ts";
import { categoryOf } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export interface PayloadSettings extends UnwrapSettings {
  /** S3_PAYLOAD_MAX_BYTES: a larger object is poison. */
  maxBytes: number;
  /** S3_PAYLOAD_DELETE: the object is deleted once its message is accepted. */
  deleteAccepted: boolean;
}

export interface PayloadPorts {
  /** GetObject behind the S3 breaker: the object as text, S3Error on a failure. */
  getObject(bucket: string, key: string, maxBytes: number, signal: AbortSignal): Promise<string>;
  deleteObject(bucket: string, key: string): Promise<void>;
  /** The bytes of fetched payloads in flight. */
  budget: ByteBudget;
}

export interface PayloadServices {
  metrics: Pick<SluiceMetrics, "payloadFetches" | "payloadBytes">;
  logger: Logger;
}

/** A body unwrapped: the message (or why it is poison), the attributes that count, the object. */
export interface Opened {
  kind: "opened";
  parsed: ParseResult;
  attributes: MessageAttributes;
  pointer?: S3Pointer | undefined;
  /** A poison body as it was parsed, for its ids (a good one is not kept: it may be 32 MiB). */
  body: string;
  /** Gives the fetched bytes back to the budget (when the message has settled). */
  release(): void;
}

/** The S3 fetch failed past its retries: the message's way back. */
export type Unopened = { kind: "gave_up"; verdict: Verdict };

/** Runs one fetch with retries within the message's budget (RetryingCall "s3"). */
export type RunFetch = (fetch: () => Promise<string>) => Promise<string>;

const NOTHING = () => {};

/**
 * The poison reason of an S3 failure that is about the object, or undefined when it is S3's or
 * the worker's (transient): a missing object or bucket (404), a refused one (403 AccessDenied),
 * an object over the cap. A 403 for the worker's signature or keys is no fault of the message's.
 */
export function payloadProblem(error: unknown, maxBytes: number): string | undefined {
  if (!(error instanceof S3Error)) return undefined;
  const where = s3Location(error);
  if (error instanceof S3TooLargeError) {
    const size = error.bytes === undefined ? "" : ` ${error.bytes} bytes,`;
    return `S3 object ${where} is${size} over S3_PAYLOAD_MAX_BYTES (${maxBytes})`;
  }
  if (error.status === 404) return `S3 object ${where} not found (${error.code}, HTTP 404)`;
  if (error.status === 403 && (error.code === "AccessDenied" || error.code === "")) {
    return `S3 refused ${where} (AccessDenied, HTTP 403)`;
  }
  return undefined;
}

/** The `result` label of a fetch's outcome. */
function resultLabel(error: unknown): string {
  if (error instanceof S3TooLargeError) return "too_large";
  if (error instanceof S3Error && error.status === 404) return "not_found";
  if (error instanceof S3Error && error.status === 403) return "forbidden";
  return "error";
}

export class Payloads {
  readonly #settings: PayloadSettings;
  readonly #ports: PayloadPorts;
  readonly #services: PayloadServices;

  constructor(settings: PayloadSettings, ports: PayloadPorts, services: PayloadServices) {
    this.#settings = settings;
    this.#ports = ports;
    this.#services = services;
  }

  /** Whether a body must be unwrapped before it is read (its first characters only). */
  mayWrap(sqs: SqsMessage): boolean {
    return mayBeWrapped(sqs.body, sqs.messageAttributes);
  }

  /** Whether a body that failed as a message may be an envelope after all. */
  mayHide(sqs: SqsMessage): boolean {
    return this.#settings.sns && mayBeEnvelope(sqs.body);
  }

  /** Intake waits while fetched payloads hold the whole budget. */
  paused(): { reason: string; ms: number } | undefined {
    return this.#ports.budget.spent
      ? { reason: "the S3 payload byte budget is spent", ms: 50 }
      : undefined;
  }

  /**
   * What wraps `sqs`'s body, read at once (nothing fetched yet): from here on its attributes
   * (an SNS envelope's beneath the message's own) are the message's, trace context included.
   */
  unwrap(sqs: SqsMessage): Unwrapped {
    return unwrapBody(sqs.body, sqs.messageAttributes, this.#settings);
  }

  /**
   * The message behind `sqs`, as `unwrap` found it: `first` is its own parse when that was done
   * already. An S3 failure about the object is poison naming it; a transient one (retried by
   * `run`) is `gave_up`.
   */
  async open(
    sqs: SqsMessage,
    unwrapped: Unwrapped,
    first: ParseResult | undefined,
    run: RunFetch,
    signal: AbortSignal,
  ): Promise<Opened | Unopened> {
    switch (unwrapped.kind) {
      case "plain":
        return opened(sqs.body, first ?? parseMessage(sqs.body), sqs.messageAttributes);
      case "body":
        return opened(unwrapped.body, parseMessage(unwrapped.body), unwrapped.attributes);
      case "poison":
        return opened(sqs.body, { ok: false, reason: unwrapped.reason }, unwrapped.attributes);
      case "pointer":
        return await this.#download(unwrapped.pointer, unwrapped.attributes, run, signal);
    }
  }

  async #download(
    pointer: S3Pointer,
    attributes: MessageAttributes,
    run: RunFetch,
    signal: AbortSignal,
  ): Promise<Opened | Unopened> {
    const { maxBytes } = this.#settings;
    const { budget, getObject } = this.#ports;
    const { metrics } = this.#services;
    // What the producer declared, else the cap: what the object may cost until it is here.
    let held = Math.min(pointer.declaredBytes ?? maxBytes, maxBytes, budget.limit);
    await budget.take(held, signal);
    let text: string;
    try {
      text = await run(() => getObject(pointer.bucket, pointer.key, maxBytes, signal));
    } catch (error) {
      budget.give(held);
      if (signal.aborted) throw error;
      metrics.payloadFetches.inc({ result: resultLabel(error) });
      const problem = payloadProblem(error, maxBytes);
      if (problem) return opened("", { ok: false, reason: problem }, attributes, pointer);
      return { kind: "gave_up", verdict: s3GaveUp(error) };
    }
    metrics.payloadFetches.inc({ result: "ok" });
    metrics.payloadBytes.observe(undefined, text.length);
    budget.resize(held, text.length);
    held = text.length;
    const parsed = parseMessage(text);
    return { ...opened(text, parsed, attributes, pointer), release: () => budget.give(held) };
  }

  /** S3_PAYLOAD_DELETE: the accepted message's object deleted, a failure only logged. */
  accepted(pointer: S3Pointer | undefined): void {
    if (!pointer || !this.#settings.deleteAccepted) return;
    this.#ports.deleteObject(pointer.bucket, pointer.key).catch((error) =>
      this.#services.logger.warn("could not delete an accepted message's S3 payload", {
        error,
        object: s3Location(pointer),
      })
    );
  }
}

function opened(
  body: string,
  parsed: ParseResult,
  attributes: MessageAttributes,
  pointer?: S3Pointer,
): Opened {
  return {
    kind: "opened",
    parsed,
    attributes,
    pointer,
    body: parsed.ok ? "" : body,
    release: NOTHING,
  };
}

/** A transient S3 failure as the verdict route() knows: never the message's fault. */
function s3GaveUp(error: unknown): Verdict {
  const category = categoryOf(error) === "TIMEOUT" ? "TIMEOUT" : "TRANSIENT";
  const reason = error instanceof Error ? error.message.slice(0, 200) : String(error);
  return { kind: "gave_up", target: "s3", category, reason, validator5xx: false };
}

/**
 * The validator (docs/messages.md): `POST /ingest`. 2xx accepts; 408, 425,
 * 429 and 5xx are transient and thrown; any other 4xx is a rejection, returned.
 * A 3xx is never followed and never an acceptance: httpCall throws RedirectError.
 */
import { HttpError } from "../lib/errors.ts";
import type { Traced } from "../lib/tracer.ts";
import { httpCall, type HttpCallOptions } from "./http_call.ts";

export interface ValidatorClientOptions extends Omit<HttpCallOptions, "target"> {
  /** The full ingest URL (config normalises it to end in `/ingest`). */
  url: string;
}

export type Submission =
  | { accepted: true; status: number }
  | { accepted: false; status: number; reason: string };

const TRANSIENT_4XX = new Set([408, 425, 429]);
/** One headers init for every submission (fetch copies it into the request). */
const JSON_CONTENT: HeadersInit = Object.freeze({ "content-type": "application/json" });

export class ValidatorClient {
  readonly #url: string;
  readonly #http: HttpCallOptions;

  constructor(options: ValidatorClientOptions) {
    this.#url = options.url;
    // A 2xx says all there is to know: its body is not read.
    this.#http = { ...options, target: "validator", discardOkBody: true };
  }

  /** Posts one output document (any JSON object, or its JSON text), under `trace` when given. */
  async submit(
    document: object | string,
    signal?: AbortSignal,
    trace?: Traced,
  ): Promise<Submission> {
    const answer = await httpCall(
      this.#http,
      this.#url,
      {
        method: "POST",
        headers: JSON_CONTENT,
        body: typeof document === "string" ? document : JSON.stringify(document),
      },
      signal,
      trace,
    );
    if (answer.status >= 200 && answer.status < 300) {
      return { accepted: true, status: answer.status };
    }
    if (answer.status >= 400 && answer.status < 500 && !TRANSIENT_4XX.has(answer.status)) {
      return { accepted: false, status: answer.status, reason: shortReason(answer.text) };
    }
    throw new HttpError("validator", answer.status, answer.text, {
      retryAfterMs: answer.retryAfterMs,
      category: "TRANSIENT",
    });
  }
}

/** The validator's reason, from a JSON `reason`/`error`/`message` field or the text. */
function shortReason(text: string): string {
  try {
    const body = JSON.parse(text);
    const reason = body?.reason ?? body?.error ?? body?.message;
    if (typeof reason === "string") return reason.slice(0, 256);
  } catch {
    // not JSON: use the text itself
  }
  return text.trim().slice(0, 256) || "rejected without a reason";
}

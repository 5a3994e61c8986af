/**
 * The few error classes sluice throws. Each extends SluiceError and carries a
 * `category` (docs/outcomes.md) so routing never has to inspect messages or
 * status codes twice.
 *
 * A message that refuses a value has one form, the config one:
 * `Cannot <do what>: received <value>, expected <rule>` (e.g. `Cannot parse
 * SQS_MAX_BATCH: received "abc", expected an integer 1-10`). A failure that was
 * observed (an HTTP status, an SQS error, a timeout) says what happened instead.
 */

/** Every error category (docs/outcomes.md); also the values of the `sluice_error` DLQ attribute. */
export const ERROR_CATEGORIES = [
  "VALIDATION",
  "UNKNOWN_USER",
  "REJECTED",
  "TRANSIENT",
  "TIMEOUT",
  "PERMANENT",
] as const;

/** One of {@linkcode ERROR_CATEGORIES}. */
export type ErrorCategory = typeof ERROR_CATEGORIES[number];

/**
 * The base of every error sluice throws: a `category` fixed at construction
 * and the standard `cause`. `categoryOf` trusts it; anything else is foreign.
 */
export class SluiceError extends Error {
  override name = "SluiceError";
  readonly category: ErrorCategory;
  constructor(message: string, category: ErrorCategory, options: ErrorOptions = {}) {
    super(message, options);
    this.category = category;
  }
}

/** How much of an answer an HttpError keeps (a validator's reason is at most 256). */
export const MAX_ERROR_BODY_CHARS = 1024;

/** A downstream answered with a status we do not treat as success. */
export class HttpError extends SluiceError {
  override name = "HttpError";
  readonly target: string;
  readonly status: number;
  /** Milliseconds the server asked us to wait (`Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;
  /** The answer's first MAX_ERROR_BODY_CHARS characters: an error outlives its request. */
  readonly body: string;

  constructor(
    target: string,
    status: number,
    body: string,
    options: {
      retryAfterMs?: number | undefined;
      category?: ErrorCategory | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(
      status === 0
        ? `${target} gave no answer${body ? `: ${body.slice(0, 200)}` : ""}`
        : `${target} answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ""}`,
      options.category ?? categorizeStatus(status),
      { cause: options.cause },
    );
    this.target = target;
    this.status = status;
    this.body = body.length > MAX_ERROR_BODY_CHARS ? body.slice(0, MAX_ERROR_BODY_CHARS) : body;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * A downstream answered with a redirect (3xx). sluice never follows one: a POST
 * turned into a GET that answers 200 is not an acceptance, and a profile read
 * from wherever the `Location` points is not a profile. Transient, so it is
 * retried and counts in the breaker like any failed call.
 */
export class RedirectError extends HttpError {
  override name = "RedirectError";
  /** The `Location` header, resolved against the request URL; "" when absent or opaque. */
  readonly location: string;
  constructor(target: string, status: number, location: string) {
    super(target, status, location ? `redirect to ${location}` : "redirect", {
      category: "TRANSIENT",
    });
    this.location = location;
  }
}

/**
 * A failure in sluice itself before any request went out (an id that cannot be
 * percent-encoded, an invalid URL, a bug). PERMANENT: retrying cannot help, and
 * it says nothing about the downstream, so no breaker counts it.
 */
export class LocalError extends SluiceError {
  override name = "LocalError";
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, "PERMANENT", options);
  }
}

/** Engine errors our own code raises (e.g. encodeURIComponent's URIError): local, never remote. */
const ENGINE_ERRORS = [TypeError, RangeError, URIError, ReferenceError, SyntaxError, EvalError];

/** Whether an error arose in sluice itself rather than from a downstream's answer. */
export function isLocalError(error: unknown): boolean {
  if (error instanceof SluiceError) return error instanceof LocalError;
  return ENGINE_ERRORS.some((kind) => error instanceof kind);
}

/** A request or an operation ran out of time. */
export class TimeoutError extends SluiceError {
  override name = "TimeoutError";
  readonly target: string;
  /** `host`: where the request went, named in the message (`host[:port]`). */
  constructor(
    target: string,
    ms: number,
    options: ErrorOptions & { host?: string | undefined } = {},
  ) {
    const { host, ...errorOptions } = options;
    super(
      `${target} did not answer within ${ms} ms${host ? ` (${host})` : ""}`,
      "TIMEOUT",
      errorOptions,
    );
    this.target = target;
  }
}

/** A circuit breaker refused the call; `remainingMs` until it will probe again. */
export class CircuitOpenError extends SluiceError {
  override name = "CircuitOpenError";
  readonly target: string;
  readonly remainingMs: number;
  constructor(target: string, remainingMs: number) {
    super(`${target} circuit is open; next probe in ${Math.ceil(remainingMs)} ms`, "TRANSIENT");
    this.target = target;
    this.remainingMs = remainingMs;
  }

  /** Lets retry() wait out the cooldown like a `Retry-After`. */
  get retryAfterMs(): number {
    return this.remainingMs;
  }
}

/**
 * What a service's error takes: the action, the short code, the HTTP status (0: no answer), the
 * message, and `retriable` when the caller knows better than the status (a throttling code).
 */
export type AwsErrorArgs = [
  action: string,
  code: string,
  status: number,
  message: string,
  options?: { retriable?: boolean; cause?: unknown },
];

/** An AWS service's error answer, or a transport failure on the way to it. */
export class AwsError extends SluiceError {
  override name = "AwsError";
  /** Short AWS error code, e.g. `ThrottlingException`, `ReceiptHandleIsInvalid`. */
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  /** The message without the service and action: for NetworkError which failure, and where. */
  readonly detail: string;
  /** `retriableStatus`: the service's rule when `options.retriable` is not given. */
  constructor(
    service: string,
    retriableStatus: (status: number) => boolean,
    ...[action, code, status, message, options = {}]: AwsErrorArgs
  ) {
    const retriable = options.retriable ?? retriableStatus(status);
    super(
      code === "NetworkError"
        ? `${service} ${action} got no answer: ${message}`
        : `${service} ${action} failed: ${code}${message ? `: ${message}` : ""} (HTTP ${status})`,
      retriable ? "TRANSIENT" : "PERMANENT",
      { cause: options.cause },
    );
    this.detail = message;
    this.code = code;
    this.status = status;
    this.retriable = retriable;
  }
}

/** An SQS error response (`__type` / `x-amzn-query-error`) or a transport failure. */
export class SqsError extends AwsError {
  override name = "SqsError";
  constructor(...args: AwsErrorArgs) {
    super("SQS", (status) => status === 0 || status === 429 || status >= 500, ...args);
  }
}

/**
 * The idempotency table failed (any error: throttling, a refusal, a missing table, a
 * timeout). Always TRANSIENT: it is the table's failure, never the message's, so no message
 * is dead-lettered or handed to the redrive policy because of it (docs/failure-handling.md).
 */
export class TableError extends SluiceError {
  override name = "TableError";
  readonly action: string;
  constructor(action: string, cause: unknown) {
    const text = cause instanceof Error ? cause.message : String(cause);
    super(`idempotency table ${action} failed: ${text}`, "TRANSIENT", { cause });
    this.action = action;
  }
}

/** A configuration value was missing or invalid; startup stops with exit code 2. */
export class ConfigError extends SluiceError {
  override name = "ConfigError";
  readonly variable: string;
  constructor(variable: string, message: string) {
    // PERMANENT: a wrong value does not fix itself on a retry (nothing retries config).
    super(message, "PERMANENT");
    this.variable = variable;
  }
}

/** Category of a non-success HTTP status from a downstream (docs/messages.md). */
export function categorizeStatus(status: number): ErrorCategory {
  if (status === 408 || status === 425 || status === 429 || status >= 500) return "TRANSIENT";
  if (status === 404) return "UNKNOWN_USER";
  return "PERMANENT";
}

/**
 * The category of any thrown value: a SluiceError's own; for foreign errors, a
 * DOMException TimeoutError is TIMEOUT, an engine error (isLocalError) PERMANENT,
 * anything else TRANSIENT.
 */
export function categoryOf(error: unknown): ErrorCategory {
  if (error instanceof SluiceError) return error.category;
  if (error instanceof DOMException && error.name === "TimeoutError") return "TIMEOUT";
  if (isLocalError(error)) return "PERMANENT";
  return "TRANSIENT";
}

/** Whether a retry could help: transient and timeout errors only. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof AwsError) return error.retriable;
  const category = categoryOf(error);
  return category === "TRANSIENT" || category === "TIMEOUT";
}

/**
 * The few error classes sluice throws. Each carries a `category` (contract
 * section 5) so routing never has to inspect messages or status codes twice.
 */

/** Error categories of contract section 5; also the `sluice_error` DLQ attribute. */
export type ErrorCategory =
  | "VALIDATION"
  | "UNKNOWN_USER"
  | "REJECTED"
  | "TRANSIENT"
  | "TIMEOUT"
  | "PERMANENT";

/** A downstream answered with a status we do not treat as success. */
export class HttpError extends Error {
  override name = "HttpError";
  readonly target: string;
  readonly status: number;
  /** Milliseconds the server asked us to wait (`Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;
  readonly body: string;
  readonly category: ErrorCategory;

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
    super(`${target} answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ""}`, {
      cause: options.cause,
    });
    this.target = target;
    this.status = status;
    this.body = body;
    this.retryAfterMs = options.retryAfterMs;
    this.category = options.category ?? categorizeStatus(status);
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
export class LocalError extends Error {
  override name = "LocalError";
  readonly category: ErrorCategory = "PERMANENT";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** Engine errors our own code raises (e.g. encodeURIComponent's URIError): local, never remote. */
const ENGINE_ERRORS = [TypeError, RangeError, URIError, ReferenceError, SyntaxError, EvalError];

/** Whether an error arose in sluice itself rather than from a downstream's answer. */
export function isLocalError(error: unknown): boolean {
  if (error instanceof LocalError) return true;
  if (error instanceof Error && "category" in error) return false;
  return ENGINE_ERRORS.some((kind) => error instanceof kind);
}

/** A request or an operation ran out of time. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
  readonly category: ErrorCategory = "TIMEOUT";
  readonly target: string;
  constructor(target: string, ms: number, options: { cause?: unknown } = {}) {
    super(`${target} did not answer within ${ms} ms`, options);
    this.target = target;
  }
}

/** A circuit breaker refused the call; `remainingMs` until it will probe again. */
export class CircuitOpenError extends Error {
  override name = "CircuitOpenError";
  readonly category: ErrorCategory = "TRANSIENT";
  readonly target: string;
  readonly remainingMs: number;
  constructor(target: string, remainingMs: number) {
    super(`${target} circuit is open; next probe in ${Math.ceil(remainingMs)} ms`);
    this.target = target;
    this.remainingMs = remainingMs;
  }

  /** Lets retry() wait out the cooldown like a `Retry-After`. */
  get retryAfterMs(): number {
    return this.remainingMs;
  }
}

/** An SQS error response (`__type` / `x-amzn-query-error`) or a transport failure. */
export class SqsError extends Error {
  override name = "SqsError";
  /** Short AWS error code, e.g. `ThrottlingException`, `ReceiptHandleIsInvalid`. */
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  readonly category: ErrorCategory;
  constructor(
    action: string,
    code: string,
    status: number,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(`SQS ${action} failed: ${code}${message ? `: ${message}` : ""} (HTTP ${status})`, {
      cause: options.cause,
    });
    this.code = code;
    this.status = status;
    this.retriable = options.retriable ?? (status === 0 || status === 429 || status >= 500);
    this.category = this.retriable ? "TRANSIENT" : "PERMANENT";
  }
}

/** A configuration value was missing or invalid; startup stops with exit code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message);
    this.variable = variable;
  }
}

/** Category of a non-success HTTP status from a downstream (contract section 3). */
export function categorizeStatus(status: number): ErrorCategory {
  if (status === 408 || status === 425 || status === 429 || status >= 500) return "TRANSIENT";
  if (status === 404) return "UNKNOWN_USER";
  return "PERMANENT";
}

/**
 * The category of any thrown value. Local errors (isLocalError) are PERMANENT;
 * other unknown errors count as transient.
 */
export function categoryOf(error: unknown): ErrorCategory {
  if (error instanceof Error && "category" in error) {
    return (error as Error & { category: ErrorCategory }).category;
  }
  if (error instanceof DOMException && error.name === "TimeoutError") return "TIMEOUT";
  if (isLocalError(error)) return "PERMANENT";
  return "TRANSIENT";
}

/** Whether a retry could help: transient and timeout errors only. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof SqsError) return error.retriable;
  const category = categoryOf(error);
  return category === "TRANSIENT" || category === "TIMEOUT";
}

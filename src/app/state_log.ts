/**
 * Log lines for state changes, with their cause: a circuit breaker's change
 * names the target's URL and the last failure it recorded; a readiness change
 * gives the reasons /readyz gives. An open breaker goes half-open and back
 * every cooldown while a downstream is down, so identical changes are written
 * once a minute with a count.
 */
import type { BreakerState } from "../lib/circuit_breaker.ts";
import type { Logger } from "../lib/logger.ts";
import { RepeatLimiter } from "../lib/repeat_limiter.ts";

/** Options for {@linkcode StateLog}. */
export interface StateLogOptions {
  logger: Pick<Logger, "info" | "warn">;
  /** URL per breaker target, named in its lines. */
  urls: Record<string, string>;
  /** Holds back identical changes. Default: one a minute per change. */
  repeats: RepeatLimiter;
}

/** An error's text for a log line: `Name: message` for Errors. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export class StateLog {
  readonly #options: StateLogOptions;
  readonly #repeats: RepeatLimiter;
  #ready: boolean | undefined;

  constructor(options: StateLogOptions) {
    this.#options = options;
    this.#repeats = options.repeats;
  }

  /** A breaker changed state; `lastFailure` is its last recorded failure, the likely cause. */
  breaker(target: string, to: BreakerState, from: BreakerState, lastFailure: unknown): void {
    const lastError = lastFailure === undefined ? null : errorText(lastFailure);
    const key = ["breaker", target, from, to, lastError].join("\u0000");
    const { write, repeated } = this.#repeats.admit(key);
    if (!write) return;
    const fields = {
      target,
      from,
      to,
      url: this.#options.urls[target] ?? null,
      last_error: lastError,
      ...(repeated > 0 ? { repeated } : {}),
    };
    if (to === "open") this.#options.logger.warn("circuit breaker changed state", fields);
    else this.#options.logger.info("circuit breaker changed state", fields);
  }

  /** Readiness as /readyz computes it now; written only when it differs from the last call. */
  readiness(ready: boolean, reasons: string[]): void {
    if (ready === this.#ready) return;
    this.#ready = ready;
    if (ready) this.#options.logger.info("readiness changed", { ready, reasons });
    else this.#options.logger.warn("readiness changed", { ready, reasons });
  }
}

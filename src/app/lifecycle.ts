/**
 * The worker's life: startup, then the pipeline until a stop; a graceful stop
 * (intake ends, in-flight work gets the grace, the rest is released, pending
 * deletes are flushed), and a forced one that abandons requests on the wire.
 * The order of a stop is what tests/fault/* check.
 */
import type { Logger } from "../lib/logger.ts";
import type { Pipeline } from "../flow/pipeline.ts";
import type { Clock } from "../lib/clock.ts";
import type { Settler } from "../flow/settle.ts";

export interface LifecycleSettings {
  /** Default grace of `stop()`, ms (SHUTDOWN_GRACE_SECONDS). */
  graceMs: number;
  /** After the grace, how long submissions on the wire are waited for, ms (a request timeout). */
  wireMs: number;
  /** Longest wait for the last deletes and visibility changes, ms. */
  flushMs: number;
}

/** What runs between startup and stop, built once startup is done. */
export interface Running {
  pipeline: Pick<Pipeline, "run" | "drain" | "inFlight" | "alive">;
  settler: Pick<Settler, "flush">;
}

/** Signals for what `begin` starts besides the pipeline. */
export interface RunningSignals {
  /** Aborts after the final flush: heartbeat, queue-depth poll. */
  background: AbortSignal;
  /** Aborts on a forced stop only: requests on the wire are abandoned. */
  forced: AbortSignal;
}

export interface LifecyclePorts {
  /** Startup before intake (the queue's attributes); `signal` aborts when stopped meanwhile. */
  prepare(signal: AbortSignal): Promise<unknown>;
  /** Builds the pipeline and starts its companions; not called when stopped during startup. */
  begin(signals: RunningSignals): Running;
  /** Called last in a stop, after the background signal aborted. */
  stopped(): void;
}

export interface LifecycleServices {
  logger: Pick<Logger, "info" | "warn">;
  /** Bounds the waits of a stop. */
  clock: Pick<Clock, "sleep">;
}

export interface LifecycleOptions {
  settings: LifecycleSettings;
  ports: LifecyclePorts;
  services: LifecycleServices;
}

const abortError = (message: string) => new DOMException(message, "AbortError");

export class Lifecycle {
  readonly #options: LifecycleOptions;
  readonly #stopIntake = new AbortController();
  /** Aborts when the grace ends: nothing new starts after it (no queued submission, no retry). */
  readonly #graceOver = new AbortController();
  readonly #forced = new AbortController();
  readonly #background = new AbortController();
  #starting = true;
  #running: Running | undefined;
  #main: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: LifecycleOptions) {
    this.#options = options;
  }

  /** Startup (reading the queue's attributes) is not done yet. */
  get starting(): boolean {
    return this.#starting;
  }

  /** The pipeline and settler once started. */
  get running(): Running | undefined {
    return this.#running;
  }

  /** Resolves when the worker has stopped (after `stop()`). */
  get done(): Promise<void> {
    const done = this.#started().then(() => this.#stopping ?? Promise.resolve());
    // A failed startup rejects it for whoever awaits it (main.ts: exit 2), and for no one else.
    done.catch(() => {});
    return done;
  }

  /** Starts the worker: startup, then the pipeline until intake ends. Once. */
  start(): void {
    if (this.#main) return;
    this.#main = this.#run();
    // A failed startup is reported through `done`; it must not also count as unhandled.
    this.#main.catch(() => {});
  }

  async #run(): Promise<void> {
    try {
      // One read now; retries (after a failure) stop with intake.
      await this.#options.ports.prepare(this.#stopIntake.signal);
    } catch (error) {
      // Startup failed: whatever it started in the background ends with it.
      this.#stopIntake.abort(error);
      this.#background.abort(error);
      throw error;
    } finally {
      this.#starting = false;
    }
    if (this.#stopIntake.signal.aborted) return; // stopped before it started
    const signals = { background: this.#background.signal, forced: this.#forced.signal };
    this.#running = this.#options.ports.begin(signals);
    await this.#running.pipeline.run(this.#stopIntake.signal, this.#graceOver.signal);
  }

  #started(): Promise<void> {
    this.start();
    return this.#main!;
  }

  /** Graceful stop with `graceMs` (default the settings' grace); once, later calls share it. */
  stop(graceMs = this.#options.settings.graceMs): Promise<void> {
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    const { logger } = this.#options.services;
    const inFlight = () => this.#running?.pipeline.inFlight ?? 0;
    logger.info("stopping: intake ended, draining in-flight work", {
      in_flight: inFlight(),
      grace_ms: graceMs,
    });
    this.#stopIntake.abort(abortError("shutting down"));
    // Long polls may still be open (see Pipeline): the grace covers them and the drain.
    const settled = this.#started().then(() => this.#running?.pipeline.drain());
    if (!await this.#within(settled, graceMs, this.#graceOver.signal)) {
      if (!this.#forced.signal.aborted) {
        logger.warn("grace period over; releasing unfinished messages", { in_flight: inFlight() });
      }
      this.#graceOver.abort(abortError("shutdown grace period over"));
      // Submissions on the wire are waited for (unless forced): up to one request timeout.
      await this.#within(settled, this.#options.settings.wireMs);
    }
    const settler = this.#running?.settler;
    if (settler) await this.#within(settler.flush(), this.#options.settings.flushMs);
    this.#background.abort();
    this.#options.ports.stopped();
    logger.info("stopped");
  }

  /**
   * Ends the grace now (a second stop request): requests on the wire are abandoned,
   * every unfinished message is released; resolves when the worker has stopped.
   */
  force(): Promise<void> {
    if (!this.#forced.signal.aborted) {
      this.#options.services.logger.warn(
        "forced stop: abandoning requests in flight; releasing unfinished messages",
        { in_flight: this.#running?.pipeline.inFlight ?? 0 },
      );
      this.#forced.abort(abortError("forced stop"));
      this.#graceOver.abort(abortError("forced stop"));
    }
    return this.stop();
  }

  /** Waits for `promise` at most `ms` (less if `signal` aborts); true when it settled in time. */
  async #within(promise: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    const timer = new AbortController();
    const onAbort = () => timer.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([
        promise.then(() => true, () => true),
        this.#options.services.clock.sleep(ms, timer.signal).then(() => false, () => false),
      ]);
    } finally {
      timer.abort();
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** What the subcommands take from the world, injected so their logic can be tested. */
import { type Clock, systemClock } from "../lib/clock.ts";
import { globalFetch } from "../lib/guarded_fetch.ts";
import type { RetryOptions } from "../lib/retry.ts";
import { escapeTerminal } from "../lib/terminal_text.ts";
import * as runtime from "./runtime.ts";

export interface CliDeps {
  env: Record<string, string | undefined>;
  out(line: string): void;
  err(line: string): void;
  /**
   * A live status line on stderr, rewritten in place while a long command runs; "" clears it.
   * Nothing when stderr is not a terminal (a pipe, a file, systemd).
   */
  status(line: string): void;
  fetch: typeof fetch;
  /** Time and chance: pacing, ages, run ids, backoff. */
  clock: Clock;
  readTextFile(path: string): Promise<string>;
  homeDir: string | undefined;
  /** A person's answer to a question; undefined when nobody can answer (no terminal). */
  ask(question: string): string | undefined;
  /** Ends every loop and request (Ctrl-C). */
  signal: AbortSignal;
}

/** The real world: the process environment, stdout/stderr, the global fetch and clock. */
export function runtimeDeps(signal: AbortSignal): CliDeps {
  return {
    env: runtime.env(),
    out: (line) => runtime.writeStdout(`${line}\n`),
    err: (line) => runtime.writeStderr(`${line}\n`),
    status: runtime.stderrIsTerminal()
      ? (line) => runtime.writeStderr(`\r\u001b[K${line}`)
      : () => {},
    fetch: globalFetch,
    clock: systemClock,
    readTextFile: runtime.readTextFile,
    homeDir: runtime.homeDir(),
    ask: runtime.askTerminal,
    signal,
  };
}

/**
 * The retry the subcommands wrap each SQS call in: the worker's retry (full jitter, retriable
 * errors only), a few attempts, since a person is waiting.
 */
export function cliRetry(deps: CliDeps): RetryOptions {
  return {
    maxAttempts: 4,
    baseDelayMs: 200,
    maxDelayMs: 2000,
    signal: deps.signal,
    clock: deps.clock,
  };
}

/**
 * `deps` whose every printed line and question passes through escapeTerminal: what the dlq
 * commands print comes from message bodies and attributes anyone who can send to the queue
 * wrote, and check-config's probes print what SQS and the downstreams answered. Each call must
 * be one line (a line break in it is escaped too).
 */
export function inertOutput(deps: CliDeps): CliDeps {
  return {
    ...deps,
    out: (line) => deps.out(escapeTerminal(line)),
    err: (line) => deps.err(escapeTerminal(line)),
    status: (line) => deps.status(escapeTerminal(line)),
    ask: (question) => deps.ask(escapeTerminal(question)),
  };
}

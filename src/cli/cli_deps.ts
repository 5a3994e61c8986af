/** What the subcommands take from the world, injected so their logic can be tested. */
import { globalFetch } from "../lib/guarded_fetch.ts";
import { type RetryOptions, sleep } from "../lib/retry.ts";
import * as runtime from "./runtime.ts";

export interface CliDeps {
  env: Record<string, string | undefined>;
  out(line: string): void;
  err(line: string): void;
  fetch: typeof fetch;
  now(): number;
  random(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
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
    fetch: globalFetch,
    now: Date.now,
    random: Math.random,
    sleep,
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
    now: deps.now,
    random: deps.random,
    sleep: deps.sleep,
  };
}

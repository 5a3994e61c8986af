/**
 * The binary's subcommands: `--version`, `--help`, `check-config`, `dlq stats|peek|redrive|purge`.
 * Arguments are parsed before anything else, so help and usage errors need no configuration.
 * With no arguments the caller runs the worker.
 */
import { versionLine } from "./build_info.ts";
import { type Config, loadConfig } from "../app/config.ts";
import { ConfigError } from "../lib/errors.ts";
import * as runtime from "./runtime.ts";
import { type Command, parseCommand } from "./cli_args.ts";
import { type CliDeps, inertOutput, runtimeDeps } from "./cli_deps.ts";
import { escapeTerminal } from "../lib/terminal_text.ts";
import { helpCommand, helpText } from "./help.ts";
import { readEnv } from "./env_file.ts";
import { checkConfig } from "./check_config.ts";
import { dlqStats } from "./dlq_stats.ts";
import { dlqPeek } from "./dlq_peek.ts";
import { dlqRedrive } from "./dlq_redrive.ts";
import { dlqPurge } from "./dlq_purge.ts";

/** A line to stderr, inert: an error's text may quote an answer from SQS or a downstream. */
const err = (line: string) => runtime.writeStderr(`${escapeTerminal(line)}\n`);

/**
 * The Config, or undefined after printing the one-line reason for a bad value
 * (the caller exits 2). Errors other than ConfigError propagate.
 */
export function loadConfigOrReport(env: Record<string, string | undefined>): Config | undefined {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      err(`sluice: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}

/** Runs one parsed command; its exit code. */
export function dispatch(
  command: Exclude<Command, { kind: "worker" }>,
  deps: CliDeps,
): Promise<number> {
  switch (command.kind) {
    case "version":
      deps.out(versionLine());
      return Promise.resolve(0);
    case "help":
      deps.out(helpText(command.topic));
      return Promise.resolve(0);
    case "usage":
      deps.err(`sluice: ${command.message}`);
      deps.err(`see ${helpCommand(command.topic)}`);
      return Promise.resolve(2);
    case "check-config":
      // Its probes print what endpoints answered: SQS's texts, a downstream's Location.
      return checkConfig(command, inertOutput(deps));
    case "dlq-stats":
      return dlqCommand(command.envFile, deps, (d) => dlqStats(command, d));
    case "dlq-peek":
      return dlqCommand(command.envFile, deps, (d) => dlqPeek(command, d));
    case "dlq-redrive":
      return dlqCommand(command.envFile, deps, (d) => dlqRedrive(command, d));
    case "dlq-purge":
      return dlqCommand(command.envFile, deps, (d) => dlqPurge(command, d));
  }
}

/**
 * Runs a dlq command with the environment `--env-file` names (the process's without it) and
 * output that escapes what the queue's messages carry.
 */
async function dlqCommand(
  envFile: string | undefined,
  deps: CliDeps,
  fn: (deps: CliDeps) => Promise<number>,
): Promise<number> {
  const env = await readEnv(envFile, deps);
  return typeof env === "number" ? env : await fn(inertOutput({ ...deps, env }));
}

/**
 * Runs a subcommand and returns its exit code, or undefined when there is
 * none and the worker should start. An unexpected error is one line and exit 1, not a stack trace.
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  const command = parseCommand(argv);
  if (command.kind === "worker") return undefined;
  const stop = new AbortController();
  const off = [
    runtime.onSignal("SIGINT", () => stop.abort(new Error("interrupted"))),
    runtime.onSignal("SIGTERM", () => stop.abort(new Error("terminated"))),
  ];
  try {
    return await dispatch(command, runtimeDeps(stop.signal));
  } catch (error) {
    err(
      `sluice: ${stop.signal.aborted ? "interrupted" : (error as Error)?.message ?? String(error)}`,
    );
    return 1;
  } finally {
    for (const remove of off) remove();
  }
}

/**
 * `sluice ARGS` in this process: parseCommand then dispatch, as the binary runs them, with a
 * chosen environment and what they print collected. Faster than a child process, and the
 * clock's sleeps and the status line can be watched.
 */
import { parseCommand } from "../../src/cli/cli_args.ts";
import { dispatch } from "../../src/cli/cli.ts";
import { type Clock, systemClock } from "../../src/lib/clock.ts";
import { type LocalSqs, startLocalSqs } from "./local_sqs.ts";

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Each call's line, as printed (stdout, then stderr): a line break inside one is a defect. */
  lines: string[];
  /** Each status line, in order ("" clears it). */
  status: string[];
  /** Each sleep asked for, ms. */
  sleeps: number[];
}

/** Runs one subcommand; it is aborted (exit 1) after `timeoutMs` so a loop cannot hang a test. */
export async function sluiceInProcess(
  args: string[],
  env: Record<string, string>,
  options: { timeoutMs?: number; sleep?: Clock["sleep"] } = {},
): Promise<InProcessRun> {
  const command = parseCommand(args);
  if (command.kind === "worker") throw new Error("sluiceInProcess runs subcommands only");
  const out: string[] = [];
  const err: string[] = [];
  const status: string[] = [];
  const sleeps: number[] = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error("timed out")), options.timeoutMs ?? 60_000);
  try {
    const code = await dispatch(command, {
      env,
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      status: (line) => status.push(line),
      fetch: (input, init) => fetch(input, init),
      clock: {
        ...systemClock,
        sleep: (ms, signal) => {
          sleeps.push(ms);
          return (options.sleep ?? systemClock.sleep)(ms, signal);
        },
      },
      readTextFile: (path) => Deno.readTextFile(path),
      homeDir: undefined,
      ask: () => undefined,
      signal: stop.signal,
    });
    const lines = [...out, ...err];
    return { code, stdout: out.join("\n"), stderr: err.join("\n"), lines, status, sleeps };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `fn` with SQS (local_sqs.ts) holding `queues` (name → attributes) and the environment of
 * the dlq commands on its queue "work"; SQS closes after `fn`.
 */
export async function withQueues(
  queues: Record<string, Record<string, string>>,
  fn: (sqs: LocalSqs, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const sqs = await startLocalSqs({ queues });
  try {
    await fn(sqs, {
      SQS_QUEUE_URL: sqs.queueUrl("work"),
      AWS_ENDPOINT_URL_SQS: sqs.url,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "t",
      AWS_SECRET_ACCESS_KEY: "t",
    });
  } finally {
    await sqs.close();
  }
}

/**
 * The command line, parsed before any configuration or network: a pure function from argv to a
 * Command, so `--help` works with nothing set and a bad argument exits 2 at once.
 */
import { ERROR_CATEGORIES, SluiceError } from "../lib/errors.ts";

export type Output = "text" | "json";

/** Which dead-lettered messages a dlq subcommand touches; empty means all. */
export interface DlqFilter {
  /** `sluice_error` values; "NONE" matches a message without one (moved by the redrive policy). */
  categories: string[];
  /** Tested against `sluice_reason`. */
  reasonMatch: RegExp | undefined;
  /** Only messages sent to the DLQ at least this long ago. */
  minAgeSeconds: number | undefined;
}

/** What every dlq subcommand takes. */
export interface DlqCommon {
  output: Output;
  envFile: string | undefined;
  /** Run on a DLQ_QUEUE_URL that cannot be shown to be the main queue's dead-letter queue. */
  allowAnyDlq: boolean;
}

export type Command =
  | { kind: "worker" }
  | { kind: "version" }
  | { kind: "help"; topic: HelpTopic }
  | { kind: "usage"; topic: HelpTopic; message: string }
  | {
    kind: "check-config";
    probe: boolean;
    envFile: string | undefined;
    json: boolean;
    s3Bucket: string | undefined;
  }
  | { kind: "dlq-stats" } & DlqCommon
  | { kind: "dlq-peek"; count: number; filter: DlqFilter } & DlqCommon
  | {
    kind: "dlq-redrive";
    filter: DlqFilter;
    /** At most this many; undefined = the DLQ's depth when the command starts. */
    max: number | undefined;
    /** Messages per second. */
    rate: number;
    /** Every message to this queue; undefined = each to its own source queue. */
    to: string | undefined;
    dryRun: boolean;
  } & DlqCommon
  | { kind: "dlq-purge"; filter: DlqFilter; yes: boolean } & DlqCommon;

/** `dlq redrive`'s pace unless --rate says otherwise, messages per second. */
export const DEFAULT_REDRIVE_RATE = 50;

export type HelpTopic = "main" | "check-config" | "dlq" | "stats" | "peek" | "redrive" | "purge";

class UsageError extends SluiceError {
  override name = "UsageError";
  constructor(message: string) {
    super(message, "PERMANENT");
  }
}

const DLQ_VERBS = ["stats", "peek", "redrive", "purge"] as const;

/** argv (after the program name) to the command it asks for. */
export function parseCommand(argv: readonly string[]): Command {
  const [command, ...rest] = argv;
  if (command === undefined) return { kind: "worker" };
  if (command === "--version" || command === "-V" || command === "version") {
    return { kind: "version" };
  }
  if (command === "--help" || command === "-h" || command === "help") {
    return { kind: "help", topic: "main" };
  }
  let topic: HelpTopic = "main";
  try {
    if (command === "check-config") {
      topic = "check-config";
      return parseCheckConfig(rest);
    }
    if (command === "dlq") {
      const [verb, ...args] = rest;
      if (verb === undefined || verb === "--help" || verb === "-h" || verb === "help") {
        return verb === undefined
          ? { kind: "usage", topic: "dlq", message: "dlq needs a subcommand" }
          : { kind: "help", topic: "dlq" };
      }
      if (!(DLQ_VERBS as readonly string[]).includes(verb)) {
        topic = "dlq";
        throw new UsageError(
          `Cannot parse the dlq subcommand: received ${
            JSON.stringify(verb)
          }, expected stats, peek, redrive or purge`,
        );
      }
      topic = verb as HelpTopic;
      return parseDlq(verb as typeof DLQ_VERBS[number], args);
    }
    throw new UsageError(
      `Cannot parse the command: received ${
        JSON.stringify(command)
      }, expected check-config, dlq, version or help`,
    );
  } catch (error) {
    if (error instanceof UsageError) return { kind: "usage", topic, message: error.message };
    throw error;
  }
}

/** Options every subcommand takes, besides its own. */
const COMMON_OPTIONS: Record<string, OptionSpec> = {
  "env-file": { type: "string", expected: "a file path" },
  help: { type: "boolean", short: "h" },
};

/**
 * An option: a string (`multiple`: each use adds one; `expected` says what value it takes) or a
 * boolean flag, maybe with a short name.
 */
type OptionSpec =
  | { type: "string"; expected: string; multiple?: boolean; short?: string }
  | { type: "boolean"; short?: string };

type OptionValues = Record<string, string | string[] | boolean | undefined>;

/**
 * A subcommand's arguments, in the grammar of node:util's strict parseArgs (without importing
 * node:util, which under Deno loads the Node compatibility layer): `--name value`,
 * `--name=value`, `--flag`, `-h`, positionals, and `--` before positionals that start with `-`.
 * A value that starts with `-` must be written `--name=value`, except a negative number, which
 * is taken as the value so that its own check names it.
 */
function parseSubcommand(
  args: string[],
  specs: Record<string, OptionSpec>,
): { values: OptionValues; positionals: string[] } {
  const options: Record<string, OptionSpec> = { ...COMMON_OPTIONS, ...specs };
  const values: OptionValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const { name, spec, inline } = optionOf(arg, options);
    if (spec.type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(
          `Cannot parse --${name}: received ${JSON.stringify(inline)}, expected no value`,
        );
      }
      values[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || inline === undefined && /^-(?!\d|\.\d)/.test(value)) {
      const received = value === undefined ? "nothing" : `the option ${JSON.stringify(value)}`;
      throw new UsageError(
        `Cannot parse --${name}: received ${received}, expected ${spec.expected}` +
          (value === undefined ? "" : ` (write --${name}=VALUE for a value that starts with -)`),
      );
    }
    values[name] = spec.multiple ? [...(values[name] as string[] | undefined) ?? [], value] : value;
  }
  return { values, positionals };
}

/** The option `arg` names (`--name`, `--name=value`, `-x`), or a usage error listing the known. */
function optionOf(arg: string, options: Record<string, OptionSpec>) {
  const equals = arg.indexOf("=");
  const written = equals === -1 ? arg : arg.slice(0, equals);
  const name = written.startsWith("--")
    ? written.slice(2)
    : Object.keys(options).find((n) => `-${options[n]!.short}` === written);
  const spec = name === undefined || !Object.hasOwn(options, name) ? undefined : options[name];
  if (name === undefined || spec === undefined || !written.startsWith("--") && equals !== -1) {
    const known = Object.keys(options).map((n) => `--${n}`).join(", ");
    throw new UsageError(
      `Cannot parse the arguments: received the unknown option ${
        JSON.stringify(written)
      }, expected one of ${known}`,
    );
  }
  return { name, spec, inline: equals === -1 ? undefined : arg.slice(equals + 1) };
}

/** More than `allowed` positionals is a usage error; `hint` says what to use instead. */
function refuseExtraPositionals(positionals: string[], allowed: number, hint = ""): void {
  if (positionals.length <= allowed) return;
  throw new UsageError(
    `Cannot parse the arguments: received ${JSON.stringify(positionals[allowed])}, expected ${
      allowed ? "at most N" : "none"
    }${hint}`,
  );
}

function parseCheckConfig(args: string[]): Command {
  const { values, positionals } = parseSubcommand(args, {
    probe: { type: "boolean" },
    json: { type: "boolean" },
    "s3-bucket": { type: "string", expected: "an S3 bucket name" },
  });
  if (values.help) return { kind: "help", topic: "check-config" };
  refuseExtraPositionals(positionals, 0);
  return {
    kind: "check-config",
    probe: values.probe === true,
    envFile: values["env-file"] as string | undefined,
    json: values.json === true,
    s3Bucket: values["s3-bucket"] as string | undefined,
  };
}

/** The values --category takes: the error categories, and NONE for the redrive policy's. */
export const CATEGORY_VALUES = [...ERROR_CATEGORIES, "NONE"] as const;

const FILTER_OPTIONS: Record<string, OptionSpec> = {
  category: { type: "string", multiple: true, expected: CATEGORY_VALUES.join(", ") },
  "reason-match": { type: "string", expected: "a regular expression" },
  "min-age": { type: "string", expected: "seconds, an integer 0-1209600" },
};

const VERB_OPTIONS: Record<typeof DLQ_VERBS[number], Record<string, OptionSpec>> = {
  stats: {},
  peek: FILTER_OPTIONS,
  redrive: {
    ...FILTER_OPTIONS,
    max: { type: "string", expected: "an integer 1-1000000000" },
    rate: { type: "string", expected: "messages per second, a number above 0" },
    to: { type: "string", expected: "a queue URL" },
    "dry-run": { type: "boolean" },
  },
  purge: { ...FILTER_OPTIONS, yes: { type: "boolean" } },
};

function parseDlq(verb: typeof DLQ_VERBS[number], args: string[]): Command {
  const { values, positionals } = parseSubcommand(args, {
    output: { type: "string", expected: "text or json" },
    "allow-any-dlq": { type: "boolean" },
    ...VERB_OPTIONS[verb],
  });
  if (values.help) return { kind: "help", topic: verb };
  const common: DlqCommon = {
    output: parseOutput(values.output as string | undefined),
    envFile: values["env-file"] as string | undefined,
    allowAnyDlq: values["allow-any-dlq"] === true,
  };
  refuseExtraPositionals(
    positionals,
    verb === "peek" ? 1 : 0,
    verb === "redrive" ? " (use --max N to limit the count)" : "",
  );
  if (verb === "stats") return { kind: "dlq-stats", ...common };
  const filter = parseFilter(values);
  if (verb === "peek") {
    const raw = positionals[0];
    const count = raw === undefined ? 10 : parseInteger("N", raw, 1, 10_000);
    return { kind: "dlq-peek", ...common, count, filter };
  }
  if (verb === "purge") return { kind: "dlq-purge", ...common, filter, yes: values.yes === true };
  const raw = (name: string) => values[name] as string | undefined;
  return {
    kind: "dlq-redrive",
    ...common,
    filter,
    max: raw("max") === undefined ? undefined : parseInteger("--max", raw("max")!, 1, 1e9),
    rate: raw("rate") === undefined
      ? DEFAULT_REDRIVE_RATE
      : parseNumber("--rate", raw("rate")!, 1e6),
    to: raw("to") === undefined ? undefined : parseQueueUrl("--to", raw("to")!),
    dryRun: values["dry-run"] === true,
  };
}

function parseOutput(raw: string | undefined): Output {
  if (raw === undefined || raw === "text" || raw === "json") return raw ?? "text";
  throw new UsageError(
    `Cannot parse --output: received ${JSON.stringify(raw)}, expected text or json`,
  );
}

function parseCategories(raw: string[]): string[] {
  const out: string[] = [];
  for (const written of raw.flatMap((c) => c.split(","))) {
    const c = written.trim().toUpperCase();
    if (c === "") continue;
    if (!(CATEGORY_VALUES as readonly string[]).includes(c)) {
      throw new UsageError(
        `Cannot parse --category: received ${JSON.stringify(written.trim())}, expected one of ${
          CATEGORY_VALUES.join(", ")
        }`,
      );
    }
    out.push(c);
  }
  return out;
}

function parseFilter(v: Record<string, unknown>): DlqFilter {
  const categories = parseCategories((v.category as string[] | undefined) ?? []);
  let reasonMatch: RegExp | undefined;
  const rawReason = v["reason-match"] as string | undefined;
  if (rawReason !== undefined) {
    try {
      reasonMatch = new RegExp(rawReason);
    } catch (error) {
      throw new UsageError(
        `Cannot parse --reason-match: received ${
          JSON.stringify(rawReason)
        }, expected a regular expression (${(error as Error).message})`,
      );
    }
  }
  const rawAge = v["min-age"] as string | undefined;
  const minAgeSeconds = rawAge === undefined
    ? undefined
    : parseInteger("--min-age", rawAge, 0, 1_209_600);
  return { categories, reasonMatch, minAgeSeconds };
}

function parseInteger(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new UsageError(
      `Cannot parse ${name}: received ${JSON.stringify(raw)}, expected an integer ${min}-${max}`,
    );
  }
  return n;
}

function parseNumber(name: string, raw: string, max: number): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new UsageError(
      `Cannot parse ${name}: received ${
        JSON.stringify(raw)
      }, expected a number above 0, at most ${max}`,
    );
  }
  return n;
}

function parseQueueUrl(name: string, raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (
    !url || !/^https?:$/.test(url.protocol) || url.pathname.split("/").filter(Boolean).length < 2
  ) {
    throw new UsageError(
      `Cannot parse ${name}: received ${
        JSON.stringify(raw)
      }, expected a queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders`,
    );
  }
  return raw;
}

/**
 * The command line, parsed before any configuration or network: a pure function from argv to a
 * Command, so `--help` works with nothing set and a bad argument exits 2 at once.
 */
import { SluiceError } from "../lib/errors.ts";

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

export type Command =
  | { kind: "worker" }
  | { kind: "version" }
  | { kind: "help"; topic: HelpTopic }
  | { kind: "usage"; topic: HelpTopic; message: string }
  | { kind: "check-config"; probe: boolean; envFile: string | undefined; json: boolean }
  | { kind: "dlq-stats"; output: Output; envFile: string | undefined }
  | {
    kind: "dlq-peek";
    output: Output;
    envFile: string | undefined;
    count: number;
    filter: DlqFilter;
  }
  | {
    kind: "dlq-redrive";
    output: Output;
    envFile: string | undefined;
    filter: DlqFilter;
    max: number | undefined;
    rate: number | undefined;
    dryRun: boolean;
  }
  | {
    kind: "dlq-purge";
    output: Output;
    envFile: string | undefined;
    filter: DlqFilter;
    yes: boolean;
  };

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
  "env-file": { type: "string" },
  help: { type: "boolean", short: "h" },
};

/** An option: a string (`multiple`: each use adds one) or a boolean flag, maybe with a short name. */
interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
}

type OptionValues = Record<string, string | string[] | boolean | undefined>;

/**
 * A subcommand's arguments, as node:util's strict parseArgs reads them (without importing
 * node:util, which under Deno loads the Node compatibility layer): `--name value`,
 * `--name=value`, `--flag`, `-h`, positionals, and `--` before positionals that start with `-`.
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
    const equals = arg.indexOf("=");
    const written = equals === -1 ? arg : arg.slice(0, equals);
    const name = written.startsWith("--")
      ? written.slice(2)
      : Object.keys(options).find((n) => `-${options[n]!.short}` === written);
    const spec = name === undefined ? undefined : options[name];
    if (name === undefined || spec === undefined || !written.startsWith("--") && equals !== -1) {
      throw new UsageError(
        `Unknown option '${written}'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- "${written}"'`,
      );
    }
    if (spec.type === "boolean") {
      if (equals !== -1) throw new UsageError(`Option '--${name}' does not take an argument`);
      values[name] = true;
      continue;
    }
    let value: string;
    if (equals !== -1) value = arg.slice(equals + 1);
    else {
      const next = args[i + 1];
      if (next === undefined) throw new UsageError(`Option '--${name} <value>' argument missing`);
      if (next.startsWith("-")) throw new UsageError(`Option '--${name}' argument is ambiguous.`);
      value = next;
      i++;
    }
    values[name] = spec.multiple ? [...(values[name] as string[] | undefined) ?? [], value] : value;
  }
  return { values, positionals };
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
  });
  if (values.help) return { kind: "help", topic: "check-config" };
  refuseExtraPositionals(positionals, 0);
  return {
    kind: "check-config",
    probe: values.probe === true,
    envFile: values["env-file"] as string | undefined,
    json: values.json === true,
  };
}

const FILTER_OPTIONS: Record<string, OptionSpec> = {
  category: { type: "string", multiple: true },
  "reason-match": { type: "string" },
  "min-age": { type: "string" },
};

function parseDlq(verb: typeof DLQ_VERBS[number], args: string[]): Command {
  const { values, positionals } = parseSubcommand(args, {
    output: { type: "string" },
    ...(verb === "stats" ? {} : FILTER_OPTIONS),
    ...(verb === "redrive"
      ? { max: { type: "string" }, rate: { type: "string" }, "dry-run": { type: "boolean" } }
      : {}),
    ...(verb === "purge" ? { yes: { type: "boolean" } } : {}),
  });
  if (values.help) return { kind: "help", topic: verb };
  const output = parseOutput(values.output as string | undefined);
  const envFile = values["env-file"] as string | undefined;
  refuseExtraPositionals(
    positionals,
    verb === "peek" ? 1 : 0,
    verb === "redrive" ? " (use --max N to limit the count)" : "",
  );
  if (verb === "stats") return { kind: "dlq-stats", output, envFile };
  const filter = parseFilter(values);
  if (verb === "peek") {
    const raw = positionals[0];
    const count = raw === undefined ? 10 : parseInteger("N", raw, 1, 10_000);
    return { kind: "dlq-peek", output, envFile, count, filter };
  }
  if (verb === "purge") {
    return { kind: "dlq-purge", output, envFile, filter, yes: values.yes === true };
  }
  const max = values.max === undefined
    ? undefined
    : parseInteger("--max", values.max as string, 1, 1e9);
  const rate = values.rate === undefined
    ? undefined
    : parseNumber("--rate", values.rate as string, 1e6);
  return {
    kind: "dlq-redrive",
    output,
    envFile,
    filter,
    max,
    rate,
    dryRun: values["dry-run"] === true,
  };
}

function parseOutput(raw: string | undefined): Output {
  if (raw === undefined || raw === "text" || raw === "json") return raw ?? "text";
  throw new UsageError(
    `Cannot parse --output: received ${JSON.stringify(raw)}, expected text or json`,
  );
}

const CATEGORY = /^[A-Z_]+$/;

function parseFilter(v: Record<string, unknown>): DlqFilter {
  const categories = ((v.category as string[] | undefined) ?? [])
    .flatMap((c) => c.split(","))
    .map((c) => c.trim().toUpperCase())
    .filter((c) => c !== "");
  for (const c of categories) {
    if (!CATEGORY.test(c)) {
      throw new UsageError(
        `Cannot parse --category: received ${
          JSON.stringify(c)
        }, expected a category such as VALIDATION`,
      );
    }
  }
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

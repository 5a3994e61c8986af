import assert from "node:assert/strict";
import { DEFAULT_REDRIVE_RATE, parseCommand } from "../../src/cli/cli_args.ts";

const kinds: Array<[string[], string]> = [
  [[], "worker"],
  [["--version"], "version"],
  [["-V"], "version"],
  [["--help"], "help"],
  [["check-config", "--help"], "help"],
  [["dlq", "--help"], "help"],
  [["dlq", "redrive", "--help"], "help"],
  [["dlq", "purge", "-h"], "help"],
  [["check-config"], "check-config"],
  [["check-config", "--probe", "--env-file", "/etc/sluice/sluice.env", "--json"], "check-config"],
  [["dlq", "stats"], "dlq-stats"],
  [["dlq", "stats", "--output", "json"], "dlq-stats"],
  [["dlq", "peek"], "dlq-peek"],
  [["dlq", "peek", "5"], "dlq-peek"],
  [["dlq", "redrive", "--category", "VALIDATION", "--dry-run"], "dlq-redrive"],
  [["dlq", "purge", "--yes"], "dlq-purge"],
  // Usage errors, each found before any configuration or network.
  [["dlq", "peek", "abc"], "usage"],
  [["dlq", "peek", "0"], "usage"],
  [["dlq", "frobnicate"], "usage"],
  [["dlq"], "usage"],
  [["dlq", "redrive", "5"], "usage"],
  [["dlq", "redrive", "--max", "-1"], "usage"],
  [["dlq", "redrive", "--rate", "0"], "usage"],
  [["dlq", "redrive", "--rate", "fast"], "usage"],
  [["dlq", "redrive", "--reason-match", "("], "usage"],
  [["dlq", "redrive", "--min-age", "1h"], "usage"],
  [["dlq", "redrive", "--category", "bad category"], "usage"],
  [["dlq", "peek", "--category", "FOO"], "usage"],
  [["dlq", "purge", "--category", "none,validation"], "dlq-purge"],
  [["dlq", "stats", "--output", "yaml"], "usage"],
  [["dlq", "stats", "--category", "VALIDATION"], "usage"],
  [["dlq", "purge", "--dry-run"], "usage"],
  [["check-config", "--prob"], "usage"],
  [["check-config", "extra"], "usage"],
  [["frobnicate"], "usage"],
  // The option grammar of node:util's strict parseArgs, which cli_args.ts follows.
  [["check-config", "--probe=1"], "usage"],
  [["check-config", "--env-file"], "usage"],
  [["check-config", "-x"], "usage"],
  [["check-config", "-h=1"], "usage"],
  [["check-config", "--env-file=/etc/sluice/sluice.env"], "check-config"],
  [["dlq", "peek", "--", "5"], "dlq-peek"],
  [["dlq", "peek", "--", "--5"], "usage"],
];

for (const [argv, kind] of kinds) {
  Deno.test(`parseCommand: ${JSON.stringify(argv)} → ${kind}`, () => {
    assert.equal(parseCommand(argv).kind, kind);
  });
}

Deno.test("parseCommand: redrive options are parsed into values", () => {
  const c = parseCommand([
    "dlq",
    "redrive",
    "--category",
    "validation,UNKNOWN_USER",
    "--category",
    "REJECTED",
    "--reason-match",
    "^invalid",
    "--min-age",
    "60",
    "--max",
    "100",
    "--rate",
    "2.5",
    "--output",
    "json",
  ]);
  assert.equal(c.kind, "dlq-redrive");
  if (c.kind !== "dlq-redrive") return;
  assert.deepEqual(c.filter.categories, ["VALIDATION", "UNKNOWN_USER", "REJECTED"]);
  assert.ok(c.filter.reasonMatch?.test("invalid json"));
  assert.equal(c.filter.minAgeSeconds, 60);
  assert.equal(c.max, 100);
  assert.equal(c.rate, 2.5);
  assert.equal(c.output, "json");
  assert.equal(c.dryRun, false);
});

Deno.test("parseCommand: usage errors say what was wrong and which help applies", () => {
  const peek = parseCommand(["dlq", "peek", "abc"]);
  assert.deepEqual(peek.kind === "usage" && [peek.topic, peek.message], [
    "peek",
    'Cannot parse N: received "abc", expected an integer 1-10000',
  ]);
  const verb = parseCommand(["dlq", "frobnicate"]);
  assert.match(
    verb.kind === "usage" ? verb.message : "",
    /Cannot parse the dlq subcommand: received "frobnicate"/,
  );
  const redrive = parseCommand(["dlq", "redrive", "5"]);
  assert.match(redrive.kind === "usage" ? redrive.message : "", /--max N/);
});

Deno.test("parseCommand: --name=value and repeated options; a value may not look like an option", () => {
  const c = parseCommand([
    "dlq",
    "purge",
    "--category=VALIDATION",
    "--category",
    "REJECTED",
    "--yes",
  ]);
  assert.equal(c.kind, "dlq-purge");
  if (c.kind === "dlq-purge") assert.deepEqual(c.filter.categories, ["VALIDATION", "REJECTED"]);
  const env = parseCommand(["check-config", "--env-file=/x=y"]);
  assert.equal(env.kind === "check-config" && env.envFile, "/x=y");
  const ambiguous = parseCommand(["dlq", "redrive", "--max", "--dry-run"]);
  assert.equal(
    ambiguous.kind === "usage" && ambiguous.message,
    'Cannot parse --max: received the option "--dry-run", expected an integer 1-1000000000 ' +
      "(write --max=VALUE for a value that starts with -)",
  );
});

const messages: Array<[string[], string]> = [
  [
    ["dlq", "peek", "--category", "FOO"],
    'Cannot parse --category: received "FOO", expected one of VALIDATION, UNKNOWN_USER, ' +
    "REJECTED, TRANSIENT, TIMEOUT, PERMANENT, NONE",
  ],
  [
    ["dlq", "redrive", "--category", "validation,nope"],
    'Cannot parse --category: received "nope", expected one of VALIDATION, UNKNOWN_USER, ' +
    "REJECTED, TRANSIENT, TIMEOUT, PERMANENT, NONE",
  ],
  [
    ["dlq", "purge", "--category=bad category"],
    'Cannot parse --category: received "bad category", expected one of VALIDATION, ' +
    "UNKNOWN_USER, REJECTED, TRANSIENT, TIMEOUT, PERMANENT, NONE",
  ],
  [
    ["dlq", "peek", "--min-age", "-5"],
    'Cannot parse --min-age: received "-5", expected an integer 0-1209600',
  ],
  [
    ["dlq", "redrive", "--rate", "-2"],
    'Cannot parse --rate: received "-2", expected a number above 0, at most 1000000',
  ],
  [
    ["dlq", "redrive", "--max"],
    "Cannot parse --max: received nothing, expected an integer 1-1000000000",
  ],
  [
    ["check-config", "--prob"],
    'Cannot parse the arguments: received the unknown option "--prob", expected one of ' +
    "--env-file, --help, --probe, --json, --s3-bucket",
  ],
  [["check-config", "--probe=1"], 'Cannot parse --probe: received "1", expected no value'],
  [
    ["dlq", "redrive", "--to", "orders"],
    'Cannot parse --to: received "orders", expected a queue URL such as ' +
    "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
  ],
];
for (const [argv, message] of messages) {
  Deno.test(`parseCommand: ${JSON.stringify(argv)} says what it received and what it expects`, () => {
    const c = parseCommand(argv);
    assert.equal(c.kind === "usage" && c.message, message);
    assert.doesNotMatch(message, /ambiguous|Unknown option|positional/);
  });
}

Deno.test("parseCommand: redrive paces by default, sends home by default, --to and --allow-any-dlq", () => {
  const plain = parseCommand(["dlq", "redrive"]);
  assert.ok(plain.kind === "dlq-redrive");
  assert.deepEqual([plain.rate, plain.to, plain.max, plain.allowAnyDlq], [
    DEFAULT_REDRIVE_RATE,
    undefined,
    undefined,
    false,
  ]);
  assert.ok(DEFAULT_REDRIVE_RATE > 0 && DEFAULT_REDRIVE_RATE <= 100);
  const to = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders";
  const c = parseCommand(["dlq", "redrive", "--to", to, "--allow-any-dlq"]);
  assert.ok(c.kind === "dlq-redrive");
  assert.deepEqual([c.to, c.allowAnyDlq], [to, true]);
  for (const verb of ["stats", "peek", "purge"]) {
    const d = parseCommand(["dlq", verb, "--allow-any-dlq"]);
    assert.ok("allowAnyDlq" in d && d.allowAnyDlq, verb);
  }
});

Deno.test("parseCommand: --help shows what each variable accepts beside its default", async () => {
  const { helpText } = await import("../../src/cli/help.ts");
  const help = helpText("main");
  assert.match(
    help,
    /UNKNOWN_USER_POLICY +.*; accepts submit, dead-letter or drop; default submit$/m,
  );
  assert.match(help, /SQS_MAX_BATCH +.*; accepts an integer 1-10; default 10$/m);
  assert.match(
    help,
    /DELETE_ON_4XX +.*; accepts true or false \(or yes\/no, on\/off, 1\/0\); default false$/m,
  );
});

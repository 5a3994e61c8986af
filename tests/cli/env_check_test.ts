import assert from "node:assert/strict";
import { CONFIG_VARS } from "../../src/app/config.ts";
import { parseEnvFile } from "../../src/cli/env_file.ts";
import { editDistance, lintEnvNames, nearestName } from "../../src/app/env_lint.ts";

const KNOWN = CONFIG_VARS.map((v) => v.name);

Deno.test("env check: editDistance: insertions, deletions, substitutions", () => {
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("SQS_MAX_BATCH", "SQS_MAX_BATCH"), 0);
});

const lintRows: Array<[Record<string, string>, string[]]> = [
  [{ SQS_VISIBILITY_TIMEOUT: "60" }, ["SQS_VISIBILITY_TIMEOUT_SECONDS"]],
  [{ ENRICH_ULR: "x" }, ["ENRICH_URL"]],
  [{ LOG_LEVL: "x" }, ["LOG_LEVEL"]],
  [{ DLQ_URL: "x" }, ["DLQ_QUEUE_URL"]],
  [{ AWS_REGOIN: "x" }, ["AWS_REGION"]],
  [{ AWS_PAGER: "", AWS_DEFAULT_OUTPUT: "json", HOME: "/root", PATH: "/bin" }, []],
  [{ SQS_QUEUE_URL: "x", LOG_LEVEL: "info" }, []],
];
for (const [env, nearest] of lintRows) {
  Deno.test(`env check: lintEnvNames: ${Object.keys(env).join(",")}`, () => {
    const warnings = lintEnvNames(env, KNOWN);
    assert.equal(warnings.length, nearest.length, warnings.join("\n"));
    nearest.forEach((name, i) => assert.match(warnings[i]!, new RegExp(`did you mean ${name}\\?`)));
  });
}

Deno.test("env check: lintEnvNames: unsupported credential sources are named as such", () => {
  const [w] = lintEnvNames({ AWS_CONFIG_FILE: "/x" }, KNOWN);
  assert.match(w!, /AWS_CONFIG_FILE is set but ignored: ~\/.aws\/config is not read/);
  assert.equal(nearestName("SQS_MAXBATCH", KNOWN), "SQS_MAX_BATCH");
});

Deno.test("env check: parseEnvFile: systemd's KEY=VALUE lines, comments, optional quotes", () => {
  const { env, problems } = parseEnvFile(
    [
      "# sluice",
      "; also a comment",
      "",
      "SQS_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/1/q",
      'ENRICH_URL="http://10.0.0.5:9102"',
      "VALIDATOR_URL='http://10.0.0.5:9200'",
      '  LOG_LEVEL = "wa\\"rn"  ',
      "EMPTY=",
      "this is not a variable",
    ].join("\n"),
  );
  assert.deepEqual(env, {
    SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/1/q",
    ENRICH_URL: "http://10.0.0.5:9102",
    VALIDATOR_URL: "http://10.0.0.5:9200",
    LOG_LEVEL: 'wa"rn',
    EMPTY: "",
  });
  assert.deepEqual(problems, ['line 9: expected KEY=VALUE, got "this is not a variable"']);
});

/**
 * The binary's commands as an operator meets them: the real entry in a child process, with an
 * environment of our choosing, against the lab's simulators, its SQS (fauxqs behind the proxy) or
 * the fakes.
 */
import { startDynalite } from "../../lab/dynalite.ts";
import assert from "node:assert/strict";
import { buildDataset } from "../../lab/dataset.ts";
import { startEnrichSim } from "../../lab/enrich_sim.ts";
import { startValidatorSim } from "../../lab/validator_sim.ts";
import { type LocalSqs, startLocalSqs } from "../support/local_sqs.ts";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { serveJson } from "../support/lab_env.ts";
import { sluice, STACK_TRACE } from "../support/sluice_cli.ts";
import { freePort } from "../support/command.ts";

const BASE = {
  SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
  ENRICH_URL: "http://127.0.0.1:9",
  VALIDATOR_URL: "http://127.0.0.1:9",
};

/** A queue on 127.0.0.1 with test keys in us-east-1; the downstreams as in BASE. */
function localEnv(queueUrl: string) {
  return {
    ...BASE,
    SQS_QUEUE_URL: queueUrl,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "t",
    AWS_SECRET_ACCESS_KEY: "t",
  };
}

Deno.test("cli: per-command --help works with nothing set", async () => {
  for (
    const args of [["--help"], ["dlq", "--help"], ["dlq", "redrive", "--help"], [
      "check-config",
      "--help",
    ]]
  ) {
    const r = await sluice(args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, /Usage/);
    assert.doesNotMatch(r.stdout + r.stderr, /SQS_QUEUE_URL: it is required/);
  }
  const redrive = await sluice(["dlq", "redrive", "--help"]);
  assert.match(redrive.stdout, /--dry-run/);
  assert.match(redrive.stdout, /start-message-move-task/);
});

Deno.test("cli: bad arguments exit 2 at once, before config or network", async () => {
  // SQS_QUEUE_URL points at a port where nothing listens: any network call would show.
  const env = {
    ...BASE,
    SQS_QUEUE_URL: "http://127.0.0.1:9/000000000000/q",
    AWS_REGION: "us-east-1",
  };
  for (
    const args of [["dlq", "peek", "abc"], ["dlq", "frobnicate"], ["dlq", "redrive", "5"], ["nope"]]
  ) {
    const r = await sluice(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stderr, /unreachable|dead-letter queue:/, args.join(" "));
  }
  const peek = await sluice(["dlq", "peek", "abc"]);
  assert.match(peek.stderr, /N: received "abc", expected an integer/);
});

Deno.test("cli: a usage error is one line and a pointer to the command's --help, not the whole help", async () => {
  const rows: Array<[string[], string]> = [
    [["dlq", "peek", "--category", "FOO"], "see sluice dlq peek --help"],
    [["dlq", "redrive", "--min-age", "-5"], "see sluice dlq redrive --help"],
    [["dlq", "frobnicate"], "see sluice dlq --help"],
    [["check-config", "--prob"], "see sluice check-config --help"],
    [["nope"], "see sluice --help"],
  ];
  for (const [args, pointer] of rows) {
    const r = await sluice(args);
    assert.equal(r.code, 2, args.join(" "));
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0]!, /^sluice: Cannot parse .*: received .*, expected /);
    assert.equal(lines[1], pointer);
    assert.equal(r.stdout, "");
  }
});

Deno.test("cli: check-config names every problem at once and warns about look-alike names", async () => {
  const r = await sluice(["check-config"], { SQS_VISIBILITY_TIMEOUT: "60", SQS_MAX_BATCH: "abc" });
  assert.equal(r.code, 2);
  for (
    const want of [
      "Missing SQS_QUEUE_URL",
      "Cannot parse SQS_MAX_BATCH",
      "Missing ENRICH_URL",
      "Missing VALIDATOR_URL",
    ]
  ) {
    assert.match(r.stdout, new RegExp(want));
  }
  assert.match(
    r.stdout,
    /SQS_VISIBILITY_TIMEOUT is not a sluice variable.*did you mean SQS_VISIBILITY_TIMEOUT_SECONDS\?/,
  );
});

Deno.test("cli: check-config accepts LOG_LEVEL=warning and prints the resolved values", async () => {
  const r = await sluice(["check-config"], {
    ...BASE,
    LOG_LEVEL: "warning",
    AWS_ACCESS_KEY_ID: "AK",
    AWS_SECRET_ACCESS_KEY: "S",
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok {3}configuration/);
  assert.match(r.stdout, /region\s+eu-west-1 \(from the queue URL\)/);
  assert.match(r.stdout, /credentials\s+environment \(AWS_ACCESS_KEY_ID\)/);
  assert.match(r.stdout, /dlq\s+the target of the queue's RedrivePolicy/);
  assert.match(r.stdout, /log\s+warn, json/);
  assert.match(r.stdout, /policies\s+UNKNOWN_USER_POLICY=submit, DELETE_ON_4XX=false/);
  assert.doesNotMatch(r.stdout, /"S"|AK\b/, "no secret printed");
  const json = await sluice(["check-config", "--json"], { ...BASE, LOG_LEVEL: "warning" });
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.ok, true);
  assert.match(doc.resolved.credentials, /EC2 instance role through IMDSv2/);
  // Keys a script can name; the policies the worker would follow.
  assert.deepEqual(Object.keys(doc.resolved), [
    "queue",
    "region",
    "sqs_endpoint",
    "dlq",
    "credentials",
    "enrichment_api",
    "validator",
    "health_server",
    "policies",
    "log",
    "traces",
  ]);
  assert.equal(
    doc.resolved.policies,
    "UNKNOWN_USER_POLICY=submit, DELETE_ON_4XX=false, DELETE_ON_5XX=false",
  );
});

Deno.test("cli: check-config says where spans go and how they are sampled, never the export headers", async () => {
  const off = await sluice(["check-config"], BASE);
  assert.match(off.stdout, /traces\s+propagated, not exported; parentbased_always_on/);
  const on = await sluice(["check-config"], {
    ...BASE,
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
    OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20s3cret",
    OTEL_TRACES_SAMPLER: "traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.1",
  });
  assert.equal(on.code, 0, on.stdout + on.stderr);
  assert.match(
    on.stdout,
    /traces\s+exported to http:\/\/127\.0\.0\.1:4318\/v1\/traces \(http\/protobuf\); traceidratio 0\.1/,
  );
  assert.doesNotMatch(on.stdout + on.stderr, /s3cret/);
});

Deno.test("cli: a URL with user:password@ stops the worker and check-config, never printing the password", async () => {
  const env = { ...BASE, ENRICH_URL: "https://sluice:hunter2secret@enrich.example/" };
  const check = await sluice(["check-config"], env);
  assert.equal(check.code, 2);
  assert.match(
    check.stdout,
    /FAIL Cannot use ENRICH_URL: received "https:\/\/<hidden>@enrich\.example\/", expected a URL without user:password@/,
  );
  const worker = await sluice([], env);
  assert.equal(worker.code, 2);
  assert.match(
    worker.stderr,
    /Cannot use ENRICH_URL: received "https:\/\/<hidden>@enrich\.example\/"/,
  );
  assert.equal(worker.stderr.trim().split("\n").length, 1, `one line: ${worker.stderr}`);
  for (const r of [check, worker]) {
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2secret/);
  }
});

Deno.test("cli: check-config --env-file reads a systemd EnvironmentFile only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/sluice.env`;
    await Deno.writeTextFile(
      file,
      `# sluice\nSQS_QUEUE_URL="${BASE.SQS_QUEUE_URL}"\nENRICH_URL=${BASE.ENRICH_URL}\nVALIDATOR_URL='${BASE.VALIDATOR_URL}'\nLOG_LEVEL=warning\n`,
    );
    const r = await sluice(["check-config", "--env-file", file], { SQS_MAX_BATCH: "abc" });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`variables from ${file} only`));
    const missing = await sluice(["check-config", "--env-file", `${dir}/none.env`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --env-file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function withLab<T>(
  fn: (sqs: LocalSqs, enrich: string, validator: string) => Promise<T>,
) {
  const dataset = buildDataset({ users: 10 });
  const enrich = startEnrichSim({ dataset, instant: true });
  const validator = startValidatorSim({ dataset, expected: new Map(), instant: true });
  const sqs = await startLocalSqs();
  try {
    return await fn(sqs, enrich.url, validator.url);
  } finally {
    await Promise.all([enrich.close(), validator.close(), sqs.close()]);
  }
}

async function sqsEnv(sqs: LocalSqs) {
  const dlq = await sqs.createQueue("dlq");
  const queue = await sqs.createQueue("work", {
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
      maxReceiveCount: 3,
    }),
  });
  return {
    dlq,
    // The downstream URLs are set as on the VM; the dlq subcommands never call them.
    env: localEnv(queue),
  };
}

/** `check-config --probe` against the lab's queues (sqsEnv), with `vars` on top. */
async function probe(sqs: LocalSqs, vars: Record<string, string>) {
  return sluice(["check-config", "--probe"], { ...(await sqsEnv(sqs)).env, ...vars });
}

Deno.test("cli: check-config --probe passes against the lab's enrichment API and validator", async () => {
  await withLab(async (sqs, enrich, validator) => {
    const r = await probe(sqs, { ENRICH_URL: enrich, VALIDATOR_URL: validator });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok {3}enrichment API/);
    assert.match(r.stdout, /ok {3}validator: .*\/ingest exists/);
    assert.match(
      r.stdout,
      /ok {3}SQS DLQ: .*dlq \(from the queue's RedrivePolicy, maxReceiveCount 3/,
    );
  });
});

Deno.test("cli: check-config --probe fails on swapped ENRICH_URL and VALIDATOR_URL, naming which is which", async () => {
  await withLab(async (sqs, enrich, validator) => {
    const r = await probe(sqs, { ENRICH_URL: validator, VALIDATOR_URL: enrich });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL ENRICH_URL .* looks like the validator.*swapped/);
    assert.match(r.stdout, /FAIL VALIDATOR_URL .* looks like the enrichment API.*swapped/);
  });
});

Deno.test("cli: check-config --probe reports a validator redirect with its Location", async () => {
  await withLab(async (sqs, enrich) => {
    const proxy = serveJson(() =>
      new Response(null, { status: 301, headers: { location: "https://login.example/ingest" } })
    );
    try {
      const r = await probe(sqs, { ENRICH_URL: enrich, VALIDATOR_URL: proxy.url });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /FAIL VALIDATOR_URL redirects to https:\/\/login.example\/ingest/);
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("cli: dlq stats with SQS unreachable says so, not 'no dead-letter queue'", async () => {
  const r = await sluice(["dlq", "stats"], localEnv("http://127.0.0.1:9/000000000000/q"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SQS is unreachable \(\w+\): no answer from 127\.0\.0\.1:9\b/);
  assert.doesNotMatch(r.stderr, /no dead-letter queue/);
  assert.doesNotMatch(r.stderr, STACK_TRACE);
});

Deno.test("cli: dlq stats and peek speak text or JSON", async () => {
  await withLab(async (sqs) => {
    const { env } = await sqsEnv(sqs);
    await sqs.send("dlq", '{"bad": true}', {
      sluice_error: "VALIDATION",
      sluice_reason: "missing message_id",
    });
    const text = await sluice(["dlq", "stats"], env);
    assert.match(text.stdout, /visible\s+1/);
    const json = JSON.parse((await sluice(["dlq", "stats", "--output", "json"], env)).stdout);
    assert.equal(json.visible, 1);
    assert.match(json.found_by, /RedrivePolicy/);
    const peek = JSON.parse((await sluice(["dlq", "peek", "--output", "json"], env)).stdout);
    assert.equal(peek.messages.length, 1);
    assert.equal(peek.messages[0].category, "VALIDATION");
    assert.equal(
      (await sqs.messages("dlq")).filter((m) => m.visible).length,
      1,
      "peek makes it visible again",
    );
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/sluice.env`;
      await Deno.writeTextFile(
        file,
        Object.entries(env).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n",
      );
      const fromFile = await sluice(["dlq", "stats", "--env-file", file, "--output", "json"]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.equal(JSON.parse(fromFile.stdout).visible, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("cli: destructive commands refuse a DLQ that is the main queue", async () => {
  await withLab(async (sqs) => {
    const { env } = await sqsEnv(sqs);
    await sqs.send("work", "keep me");
    const r = await sluice(["dlq", "purge", "--yes"], { ...env, DLQ_QUEUE_URL: env.SQS_QUEUE_URL });
    assert.equal(r.code, 2);
    // Config refuses it first (exit 2); the dlq commands would refuse it on their own too.
    assert.match(r.stderr, /is the main queue|expected a queue other than SQS_QUEUE_URL/);
    assert.equal((await sqs.messages("work")).length, 1);
    assert.equal(sqs.requestsFor("PurgeQueue").length, 0);
  });
});

Deno.test("cli: dlq purge names the queue and the count, and wants --yes without a terminal", async () => {
  await withLab(async (sqs) => {
    const { env, dlq } = await sqsEnv(sqs);
    for (let i = 0; i < 3; i++) {
      await sqs.send("dlq", `m${i}`, { sluice_error: i ? "VALIDATION" : "REJECTED" });
    }
    const refused = await sluice(["dlq", "purge"], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`dlq ${dlq} .*3 visible`));
    assert.match(refused.stderr, /would delete 3 message\(s\).*add --yes/);
    assert.equal((await sqs.messages("dlq")).length, 3);
    const some = await sluice(["dlq", "purge", "--category", "VALIDATION", "--yes"], env);
    assert.equal(some.code, 0, some.stderr);
    assert.deepEqual(
      (await sqs.messages("dlq")).map((m) => m.messageAttributes.sluice_error?.StringValue),
      ["REJECTED"],
    );
    assert.equal((await sqs.messages("dlq"))[0]!.visible, true);
  });
});

Deno.test("cli: a 500 on the DLQ delete after the send reports 'in both queues', exit 1, no stack trace", async () => {
  await withLab(async (sqs) => {
    const { env } = await sqsEnv(sqs);
    const ids: string[] = [];
    for (const i of [0, 1, 2]) {
      ids.push(await sqs.send("dlq", `{"message_id":"m${i}"}`, { sluice_error: "TRANSIENT" }));
    }
    sqs.setDefault("DeleteMessageBatch", sqsFaults.internalError());
    const r = await sluice(["dlq", "redrive"], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, STACK_TRACE);
    const line = r.stderr.split("\n").find((l) => l.includes("in both queues:")) ?? "";
    for (const id of ids) assert.ok(line.includes(id), `${id} named in: ${r.stderr}`);
    assert.equal((await sqs.messages("work")).length, 3, "sent before the delete");
    assert.equal((await sqs.messages("dlq")).length, 3, "still in the DLQ");
    assert.ok(sqs.requestsFor("DeleteMessageBatch").length >= 2, "the delete was retried");
    assert.equal(
      sqs.requestsFor("SendMessageBatch").length,
      1,
      "one batch, not a call per message",
    );
    assert.equal(sqs.requestsFor("SendMessage").length, 0);
  });
});

Deno.test("cli: a health port in use exits 2 naming the port, before any receive", async () => {
  const taken = serveJson(() => new Response("busy"));
  const sqs = await startLocalSqs();
  try {
    const queue = await sqs.createQueue("work");
    const port = new URL(taken.url).port;
    const r = await sluice([], { ...localEnv(queue), HTTP_PORT: port });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`cannot listen on 127.0.0.1:${port}`));
    assert.equal(sqs.requestsFor("ReceiveMessage").length, 0, "intake never started");
  } finally {
    await taken.close();
    await sqs.close();
  }
});

Deno.test("cli: a redrive send that loses its answer says the messages may be in both queues", async () => {
  await withLab(async (sqs) => {
    const { env } = await sqsEnv(sqs);
    const id = await sqs.send("dlq", '{"message_id":"m0"}', { sluice_error: "TRANSIENT" });
    sqs.setDefault("SendMessageBatch", sqsFaults.brokenConnection());
    const r = await sluice(["dlq", "redrive"], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, STACK_TRACE);
    assert.match(r.stderr, new RegExp(`SQS is unreachable.*may be in both queues: ${id}`));
    assert.equal(sqs.requestsFor("DeleteMessageBatch").length, 0, "never deleted without a send");
    assert.deepEqual(
      (await sqs.messages("dlq")).map((m) => m.visible),
      [true],
      "made visible again",
    );
  });
});

Deno.test("cli: check-config --probe checks IDEMPOTENCY_TABLE exists with the id key, and names a missing one", async () => {
  const db = await startDynalite("sluice-probe");
  try {
    await withLab(async (sqs, enrich, validator) => {
      const base = {
        ENRICH_URL: enrich,
        VALIDATOR_URL: validator,
        AWS_ENDPOINT_URL_DYNAMODB: db.url,
      };
      const ok = await probe(sqs, { ...base, IDEMPOTENCY_TABLE: "sluice-probe" });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /ok {3}IDEMPOTENCY_TABLE: sluice-probe \(exists, key id, ACTIVE\)/);
      const missing = await probe(sqs, { ...base, IDEMPOTENCY_TABLE: "no-such-table" });
      assert.equal(missing.code, 1, missing.stdout + missing.stderr);
      assert.match(missing.stdout, /FAIL IDEMPOTENCY_TABLE "no-such-table" does not exist/);
    });
  } finally {
    await db.close();
  }
});

Deno.test("cli: check-config and its probe name an AWS_REGION that is not the queue URL's", async () => {
  const env = {
    ...BASE,
    SQS_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "t",
    AWS_SECRET_ACCESS_KEY: "t",
  };
  const mismatch =
    /AWS_REGION=eu-west-1 does not match the queue URL's region us-east-1: .*set AWS_REGION=us-east-1/;
  const check = await sluice(["check-config"], env);
  assert.match(check.stdout, new RegExp(`^warn ${mismatch.source}`, "m"));
  // Nothing listens on port 9: the SQS line fails, and says the region too.
  const probe = await sluice(["check-config", "--probe"], {
    ...env,
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9",
  });
  assert.equal(probe.code, 1, probe.stdout + probe.stderr);
  assert.match(probe.stdout, new RegExp(`^FAIL SQS is unreachable .*; ${mismatch.source}`, "m"));
});

Deno.test("cli: check-config --probe says which network failure met each endpoint, once, with its host", async () => {
  const host = `127.0.0.1:${freePort()}`;
  const r = await sluice(["check-config", "--probe"], {
    ...localEnv(`http://${host}/000000000000/q`),
    ENRICH_URL: `http://${host}`,
    VALIDATOR_URL: "http://sluice-no-such-host.invalid:8080",
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const refused = `connection refused by ${host} \\(nothing listens there\\)`;
  assert.match(
    r.stdout,
    new RegExp(`^FAIL SQS is unreachable \\(GetQueueAttributes\\): ${refused}$`, "m"),
  );
  assert.match(
    r.stdout,
    new RegExp(`^FAIL ENRICH_URL http://${host} gave no answer: ${refused}$`, "m"),
  );
  assert.match(
    r.stdout,
    /^FAIL VALIDATOR_URL \S+ gave no answer: DNS lookup of sluice-no-such-host\.invalid failed$/m,
  );
  assert.doesNotMatch(r.stdout, /fetch failed|HTTP 0/);
});

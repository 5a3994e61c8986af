/**
 * The acceptance, as a test: the worker started as `deno task start` with
 * environment variables only (keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * AWS_ENDPOINT_URL_SQS at an SQS endpoint that verifies SigV4) processes a queue
 * that someone else's producer filled, serves /healthz and Prometheus /metrics,
 * and a bad config value stops it with one line and exit code 2.
 */
import assert from "node:assert/strict";
import { assertAcceptedOnce, spawnWorker, startSqsRig } from "../support/fault_kit.ts";
import { startCommand } from "../../lab/start_command.ts";
import { waitFor } from "../support/lab_env.ts";

const KEYS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

Deno.test("deno task start: env vars only, signed requests verified, queue drained, health and metrics", async () => {
  const rig = await startSqsRig({
    verifyWith: KEYS,
    queues: {
      dlq: {},
      main: {
        VisibilityTimeout: "30",
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
          maxReceiveCount: 3,
        }),
      },
    },
  });
  const { sqs, enrich, validator } = rig;
  // Someone else's producer: messages put straight into the queue.
  const ids = Array.from({ length: 40 }, (_, i) => `p-${i}`);
  await rig.send(ids);
  await sqs.send("main", "{not json");
  const worker = spawnWorker({
    SQS_QUEUE_URL: sqs.queueUrl("main"),
    AWS_ENDPOINT_URL_SQS: sqs.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: KEYS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: KEYS.secretAccessKey,
    ENRICH_URL: enrich.url,
    VALIDATOR_URL: `${validator.url}/ingest`,
    SQS_RECEIVE_WAIT_SECONDS: "1",
    HTTP_PORT: "0",
    LOG_LEVEL: "info",
  });
  try {
    await waitFor(
      async () =>
        (await sqs.messages("main")).length === 0 && (await sqs.messages("dlq")).length === 1,
      "the queue drained and the poison body dead-lettered",
    );
    assertAcceptedOnce(validator, ids);
    assert.equal((await sqs.messages("dlq"))[0]?.body, "{not json");
    const signed = sqs.requests.filter((r) => r.action !== "unknown");
    assert.ok(signed.length > 0);
    assert.deepEqual(signed.filter((r) => !r.signatureValid).map((r) => r.action), []);

    const health = await worker.get("/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { status: "ok" });
    // The queue can be empty a moment before the last outcome is counted.
    let metrics = await worker.get("/metrics");
    await waitFor(
      async () => {
        metrics = await worker.get("/metrics");
        return /^sluice_messages_total\{outcome="accepted"\} 40$/m.test(metrics.text);
      },
      "40 accepted outcomes counted",
      10_000,
    );
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^# HELP sluice_messages_total /m);
    assert.match(metrics.text, /^sluice_messages_total\{outcome="accepted"\} 40$/m);
    assert.match(metrics.text, /^sluice_messages_total\{outcome="dead_lettered"\} 1$/m);
    assert.match(metrics.text, /^process_resident_memory_bytes \d+/m);
    assert.ok(
      !worker.lines.join("\n").includes(KEYS.secretAccessKey),
      "the secret is never logged",
    );

    worker.kill("SIGTERM");
    const status = await worker.status;
    assert.equal(status.code, 0);
  } finally {
    await worker.close();
    await rig.close();
  }
});

Deno.test("deno task start: a bad value gives one line naming the variable and exit code 2", async () => {
  const [program, ...args] = startCommand();
  const output = await new Deno.Command(program!, {
    args,
    cwd: new URL("../../", import.meta.url).pathname,
    env: {
      SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
      ENRICH_URL: "http://127.0.0.1:1",
      VALIDATOR_URL: "http://127.0.0.1:1",
      SQS_MAX_BATCH: "abc",
      AWS_SECRET_ACCESS_KEY: "do-not-print-me",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 2);
  const stderr = new TextDecoder().decode(output.stderr).trim();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    'sluice: Cannot parse SQS_MAX_BATCH: received "abc", expected an integer 1-10',
  );
});

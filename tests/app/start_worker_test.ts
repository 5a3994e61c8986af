/**
 * The composition root's own duties: the RedrivePolicy read (retried in the
 * background), readiness, and the optional queue-depth poll. Against fauxqs
 * behind the lab's SQS proxy on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { runWorker, waitFor } from "../support/lab_env.ts";
import { parsedLines, startSqsRig } from "../support/fault_kit.ts";
import { freePort } from "../support/command.ts";

const KEYS = { accessKeyId: "test", secretAccessKey: "test" };
const accessDenied = () =>
  sqsFaults.accessDenied(
    "User: arn:aws:sts::000000000000:assumed-role/sluice/i-0 is not authorized to perform: " +
      "sqs:getqueueattributes on resource: arn:aws:sqs:us-east-1:000000000000:main",
  );

const QUEUES = {
  dlq: {},
  main: {
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
      maxReceiveCount: 10,
    }),
  },
};

async function readyz(worker: { app: { request(path: string): Response | Promise<Response> } }) {
  const res = await worker.app.request("/readyz");
  return { status: res.status, body: await res.json() as { reasons?: string[] } };
}

Deno.test("start worker: a startup AccessDenied on the RedrivePolicy is retried in the background; /readyz says so until it is read", async () => {
  const rig = await startSqsRig({ verifyWith: KEYS, queues: QUEUES });
  const { sqs } = rig;
  // The role is still propagating: every GetQueueAttributes is refused for now.
  sqs.setDefault("GetQueueAttributes", accessDenied());
  const worker = runWorker(rig.env());
  try {
    await waitFor(async () => {
      const r = await readyz(worker);
      return r.status === 503 &&
        (r.body.reasons ?? []).some((x) => /^redrive policy not read yet: .*AccessDenied/.test(x));
    }, "/readyz: redrive policy not read yet");
    const lines = parsedLines(worker.lines);
    assert.ok(
      lines.some((l) =>
        l.level === "warn" && /cannot read the queue's RedrivePolicy yet/.test(String(l.msg))
      ),
      "a warning says so",
    );
    assert.ok(worker.metrics.registry.render().includes("sluice_dedupe_window_seconds 3600"));
    // Still refused a little later: retried, not given up.
    const before = sqs.requestsFor("GetQueueAttributes").length;
    await waitFor(() => sqs.requestsFor("GetQueueAttributes").length > before, "a retry", 5000);
    sqs.setDefault("GetQueueAttributes", undefined); // the role has propagated
    await waitFor(async () => (await readyz(worker)).status === 200, "ready once read", 15_000);
    assert.ok(
      parsedLines(worker.lines).some((l) => /read the queue's RedrivePolicy/.test(String(l.msg))),
    );
    // The DLQ found late is used: poison goes there with its reason.
    await sqs.send("main", "not json");
    await waitFor(
      async () => (await sqs.messages("dlq")).length === 1,
      "poison dead-lettered",
      10_000,
    );
    assert.ok((await sqs.messages("dlq"))[0]?.messageAttributes.sluice_error);
  } finally {
    await worker.stop();
    await rig.close();
  }
});

Deno.test("start worker: /readyz does not flap on an AccessDenied from the queue-depth poll", async () => {
  const rig = await startSqsRig({ verifyWith: KEYS, queues: QUEUES });
  const { sqs } = rig;
  // The first GetQueueAttributes (the RedrivePolicy) passes; the depth polls are refused.
  sqs.respond("GetQueueAttributes", { passThrough: true }, accessDenied(), accessDenied());
  const worker = runWorker(
    rig.env({
      // A long poll in progress while the depth poll fails: no receive answers meanwhile.
      SQS_RECEIVE_WAIT_SECONDS: "5",
      // Not bound here (app.request only): the startup warning is what is checked.
      HTTP_HOST: "0.0.0.0",
    }),
  );
  try {
    await waitFor(
      () => sqs.requestsFor("GetQueueAttributes").filter((r) => r.status === 403).length === 2,
      "both depth polls refused",
    );
    for (let i = 0; i < 5; i++) {
      const r = await readyz(worker);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const warned = parsedLines(worker.lines).filter((l) =>
      /queue depth poll failed/.test(String(l.msg)) && l.level === "warn"
    );
    assert.equal(warned.length, 2, "one warning per queue");
    assert.ok(
      parsedLines(worker.lines).some((l) =>
        l.level === "warn" &&
        /HTTP_HOST=0\.0\.0\.0 is not loopback: \/metrics, \/healthz and \/readyz/.test(
          String(l.msg),
        )
      ),
      "HTTP_HOST off loopback is warned about at startup",
    );
  } finally {
    await worker.stop();
    await rig.close();
  }
});

Deno.test("start worker: a misspelled variable is warned about at startup with the name it resembles, as check-config does", async () => {
  const rig = await startSqsRig({ verifyWith: KEYS, queues: QUEUES });
  const worker = runWorker(rig.env({ MAX_INFLIGHT: "10", SQS_VISIBILITY_TIMEOUT: "60" }));
  try {
    await waitFor(() => rig.sqs.requestsFor("ReceiveMessage").length > 0, "a receive");
    const warned = parsedLines(worker.lines).filter((l) => l.level === "warn").map((l) => l.msg);
    assert.ok(
      warned.includes(
        "MAX_INFLIGHT is not a sluice variable and is ignored; did you mean MAX_IN_FLIGHT?",
      ),
      JSON.stringify(warned),
    );
    assert.ok(
      warned.some((m) =>
        /SQS_VISIBILITY_TIMEOUT .*SQS_VISIBILITY_TIMEOUT_SECONDS\?/.test(String(m))
      ),
    );
  } finally {
    await worker.stop();
    await rig.close();
  }
});

Deno.test("start worker: /readyz and the breaker's log line say which network failure met SQS, and where", async () => {
  const host = `127.0.0.1:${freePort()}`;
  const worker = runWorker({
    SQS_QUEUE_URL: `http://${host}/000000000000/main`,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    ENRICH_URL: "http://127.0.0.1:1",
    VALIDATOR_URL: "http://127.0.0.1:1",
    SQS_RECEIVE_WAIT_SECONDS: "1",
  });
  const refused = `connection refused by ${host} (nothing listens there)`;
  try {
    await waitFor(
      async () => {
        const r = await readyz(worker);
        return (r.body.reasons ?? []).some((x) => x.includes(refused));
      },
      "/readyz names the refusal",
      15_000,
    );
    const r = await readyz(worker);
    assert.doesNotMatch(JSON.stringify(r.body), /fetch failed|: network\b/);
  } finally {
    await worker.stop();
  }
});

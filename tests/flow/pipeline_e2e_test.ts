/**
 * The worker end to end, in process, against fauxqs and fake downstreams on
 * 127.0.0.1: one test per outcome row of docs/outcomes.md.
 */
import assert from "node:assert/strict";
import {
  type LabEnv,
  receiveUnsettled,
  runWorker,
  runWorkerUntil,
  sendBodies,
  startLabEnv,
  waitFor,
} from "../support/lab_env.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";

const PROFILES: Record<string, Record<string, unknown>> = {
  "00123": { user_id: "00123", segment: "power_user", country: "DE", interests: ["ml"] },
  "7": { user_id: "7", segment: "casual", country: "FR", interests: [] },
};

const msg = (id: string, user: string | number = "00123", extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    message_id: id,
    user_id: user,
    event_ts: "2025-01-01T01:00:00+01:00",
    payload: { n: id },
    ...extra,
  });

async function withLab(
  options: { redrive?: boolean; retryAfter?: string },
  fn: (
    lab: LabEnv,
    enrich: { url: string },
    validator: { url: string; docs: Array<Record<string, unknown>> },
  ) => Promise<void>,
  answer: (doc: Record<string, unknown>) => number = () => 200,
) {
  const lab = await startLabEnv(options.redrive === undefined ? {} : { redrive: options.redrive });
  // Known users from PROFILES (404 / `missing` otherwise); `answer` decides each submission.
  const enrich = startEnrichFake({ known: (id) => id in PROFILES, profile: (id) => PROFILES[id]! });
  const validator = startValidatorFake({
    statusFor: answer,
    failBody: { reason: "user.segment mismatch" },
  });
  validator.retryAfter = options.retryAfter;
  // Every document submitted, whatever its answer.
  const submitted = {
    url: validator.url,
    get docs() {
      return validator.arrivals.map((a) => a.doc);
    },
  };
  try {
    await fn(lab, enrich, submitted);
  } finally {
    await enrich.close();
    await validator.close();
    await lab.close();
  }
}

Deno.test("e2e: valid messages are submitted once with the exact document, then deleted", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("a"), msg("b", 7), msg("c", "00123", { extra: true })]);
    const worker = await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }),
      async () => validator.docs.length === 3 && (await lab.depth()) === 0,
      "3 accepted and an empty queue",
    );
    const a = validator.docs.find((d) => d.message_id === "a");
    assert.deepEqual(a, {
      message_id: "a",
      user_id: "00123",
      event_ts: 1735689600,
      payload: { n: "a" },
      user: { user_id: "00123", segment: "power_user", country: "DE", interests: ["ml"] },
      enrichment: { status: "ok" },
    });
    assert.equal(validator.docs.find((d) => d.message_id === "b")?.user_id, "7");
    assert.equal(worker.metrics.messages.get({ outcome: "accepted" }), 3);
    // One outcome log line per message with the section 6 fields.
    const outcomes = worker.lines.map((l) => JSON.parse(l)).filter((l) => l.outcome);
    assert.equal(outcomes.length, 0, "accepted lines are info; the test logs at error");
  });
});

Deno.test("e2e: poison goes to the DLQ byte for byte with sluice_error and sluice_reason", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    const poison = [
      "not json",
      '{"message_id":"x","user_id":"1","event_ts":"2025-01-01T00:00:00","payload":{}}',
      "[1]",
    ];
    await sendBodies(lab, [...poison, msg("ok")]);
    const worker = await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }, { LOG_LEVEL: "warn" }),
      async () => (await lab.depth()) === 0 && validator.docs.length === 1,
      "queue drained",
    );
    const dlq = await lab.drainDlq();
    assert.deepEqual(dlq.map((m) => m.body).sort(), [...poison].sort());
    for (const m of dlq) {
      assert.equal(m.error, "VALIDATION");
      assert.ok(m.reason && m.reason.length <= 256);
    }
    assert.equal(worker.metrics.messages.get({ outcome: "dead_lettered" }), 3);
    const lines = worker.lines.map((l) => JSON.parse(l)).filter((l) =>
      l.outcome === "dead_lettered"
    );
    assert.equal(lines.length, 3);
    for (
      const key of [
        "message_id",
        "user_id",
        "outcome",
        "category",
        "reason",
        "receive_count",
        "duration_ms",
      ]
    ) {
      assert.ok(key in lines[0], `log line has ${key}`);
    }
  });
});

Deno.test("e2e: producer duplicates and redeliveries are submitted once", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("d1"), msg("d1"), msg("d2"), msg("d1")]);
    const worker = runWorker(lab.env({ enrich: enrich.url, validator: validator.url }));
    try {
      await waitFor(async () => (await lab.depth()) === 0, "queue drained");
      await sendBodies(lab, [msg("d2")]); // a later redelivery-like copy
      await waitFor(async () => (await lab.depth()) === 0, "queue drained again");
    } finally {
      await worker.stop();
    }
    assert.deepEqual(validator.docs.map((d) => d.message_id).sort(), ["d1", "d2"]);
    assert.equal(worker.metrics.messages.get({ outcome: "duplicate" }), 3);
  });
});

Deno.test("e2e: unknown user, default policy submits user null", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("u1", "999")]);
    await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }),
      async () => validator.docs.length === 1 && (await lab.depth()) === 0,
      "accepted",
    );
    assert.equal(validator.docs[0]?.user, null);
    assert.deepEqual(validator.docs[0]?.enrichment, { status: "unknown_user" });
  });
});

Deno.test("e2e: unknown user with dead-letter and drop policies", async () => {
  for (const policy of ["dead-letter", "drop"]) {
    await withLab({}, async (lab, enrich, validator) => {
      await sendBodies(lab, [msg("u2", "999")]);
      const worker = await runWorkerUntil(
        lab.env({ enrich: enrich.url, validator: validator.url }, { UNKNOWN_USER_POLICY: policy }),
        async () => (await lab.depth()) === 0,
        "settled",
      );
      assert.equal(validator.docs.length, 0, "nothing submitted");
      const dlq = await lab.drainDlq();
      if (policy === "drop") {
        assert.equal(dlq.length, 0);
        assert.equal(worker.metrics.messages.get({ outcome: "dropped" }), 1);
      } else {
        assert.equal(dlq.length, 1);
        assert.equal(dlq[0]?.error, "UNKNOWN_USER");
      }
    });
  }
});

Deno.test("e2e: validator 4xx with DELETE_ON_4XX=true deletes; false releases it", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("r1")]);
    const worker = await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }, { DELETE_ON_4XX: "true" }),
      async () => (await lab.depth()) === 0,
      "deleted",
    );
    assert.equal(worker.metrics.messages.get({ outcome: "rejected_deleted" }), 1);
    assert.equal((await lab.drainDlq()).length, 0);
  }, () => 400);

  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("r2")]);
    const worker = runWorker(lab.env({ enrich: enrich.url, validator: validator.url }));
    try {
      await waitFor(() => worker.metrics.messages.get({ outcome: "released" }) === 1, "released");
      const d = await lab.admin.depth(lab.queueUrl);
      assert.equal(d.visible, 0, "released with a backoff, not visible at once");
      assert.equal(d.inFlight, 1, "still in the queue");
    } finally {
      await worker.stop();
    }
  }, () => 422);
});

Deno.test("e2e: 4xx on the last allowed receive is dead-lettered with the reason", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("r3")]);
    await receiveUnsettled(lab, 2); // the worker's receive is the 3rd, the last allowed
    await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }),
      async () => (await lab.depth()) === 0,
      "settled",
    );
    const dlq = await lab.drainDlq();
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0]?.error, "REJECTED");
    assert.match(dlq[0]?.reason ?? "", /user.segment mismatch/);
  }, () => 400);
});

Deno.test("e2e: no DLQ: poison is released for as long as SQS allows, never deleted", async () => {
  await withLab({ redrive: false }, async (lab, enrich, validator) => {
    await sendBodies(lab, ["garbage"]);
    await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }),
      (w) => w.metrics.messages.get({ outcome: "released" }) === 1,
      "released",
    );
    const d = await lab.admin.depth(lab.queueUrl);
    assert.equal(d.visible + d.inFlight, 1, "still in the queue");
    assert.equal((await lab.drainDlq()).length, 0);
  });
});

Deno.test("e2e: validator 5xx past the budget with DELETE_ON_5XX=true deletes", async () => {
  // Retry-After spaces the tries a second apart, so the budget (1.6 s) ends them, not the
  // validator's breaker: five failures in a row open it, and a message waiting out an open
  // breaker gets a fresh budget (docs/failure-handling.md).
  await withLab({ retryAfter: "1" }, async (lab, enrich, validator) => {
    await sendBodies(lab, [msg("f1")]);
    const worker = await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: validator.url }, {
        DELETE_ON_5XX: "true",
        SQS_VISIBILITY_TIMEOUT_SECONDS: "2",
      }),
      async () => (await lab.depth()) === 0,
      "deleted",
      20_000,
    );
    assert.equal(worker.metrics.messages.get({ outcome: "deleted_5xx" }), 1);
    assert.ok(validator.docs.length > 1, "retried in process before giving up");
  }, () => 503);
});

Deno.test("e2e: the health server answers through app.request()", async () => {
  await withLab({}, async (lab, enrich, validator) => {
    const worker = runWorker(lab.env({ enrich: enrich.url, validator: validator.url }));
    try {
      await waitFor(async () => (await worker.app.request("/readyz")).status === 200, "ready");
      const health = await worker.app.request("/healthz");
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: "ok" });
      const metrics = await worker.app.request("/metrics");
      assert.match(metrics.headers.get("content-type") ?? "", /text\/plain/);
      const text = await metrics.text();
      for (
        const name of [
          "sluice_messages_total",
          "sluice_in_flight",
          "sluice_breaker_state",
          "sluice_sqs_requests_total",
        ]
      ) {
        assert.match(text, new RegExp(`# TYPE ${name} `));
      }
    } finally {
      await worker.stop();
    }
  });
});

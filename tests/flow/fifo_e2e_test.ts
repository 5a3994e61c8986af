/**
 * FIFO queues end to end: the worker in process against the lab's SQS proxy keeping FIFO queues as
 * SQS serves them (several messages of one group per receive, in order, none more of a group while
 * any is in flight, ReceiveRequestAttemptId replays) and the shared downstream fakes.
 */
import assert from "node:assert/strict";
import { runWorkerUntil, workerEnv } from "../support/lab_env.ts";
import { fifoQueues, type LocalSqs, startLocalSqs } from "../support/local_sqs.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import type { ValidatorFake } from "../support/fake_downstreams.ts";

const Q = "work.fifo";

const msg = (id: string) =>
  JSON.stringify({
    message_id: id,
    user_id: "u-1",
    event_ts: 1735689600,
    payload: { n: id },
  });

async function withFifo(
  validatorOptions: Parameters<typeof startValidatorFake>[0],
  fn: (sqs: LocalSqs, env: Record<string, string>, validator: ValidatorFake) => Promise<void>,
) {
  const sqs = await startLocalSqs({
    queues: fifoQueues(Q, 5),
  });
  const enrich = startEnrichFake();
  const validator = startValidatorFake(validatorOptions);
  try {
    const env = workerEnv(sqs.queueUrl(Q), { enrich: enrich.url, validator: validator.url }, {
      AWS_ENDPOINT_URL_SQS: sqs.url,
      SQS_VISIBILITY_TIMEOUT_SECONDS: "30",
      LOG_LEVEL: "error",
    });
    await fn(sqs, env, validator);
  } finally {
    await enrich.close();
    await validator.close();
    await sqs.close();
  }
}

/** Sends "<group>-<n>" bodies in order, each to its group. */
async function sendAll(sqs: LocalSqs, ids: string[]) {
  for (const id of ids) await sqs.send(Q, msg(id), {}, { groupId: id.split("-")[0]! });
}

const ids = (group: string, n: number) => Array.from({ length: n }, (_, i) => `${group}-${i + 1}`);

/** Interleaves the groups' ids: a-1, b-1, a-2, b-2, ... */
function interleave(...lists: string[][]): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(...lists.map((l) => l.length)); i++) {
    for (const l of lists) if (l[i]) out.push(l[i]!);
  }
  return out;
}

async function depth(sqs: LocalSqs): Promise<number> {
  const got = await sqs.call("GetQueueAttributes", {
    QueueUrl: sqs.queueUrl(Q),
    AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
  });
  const a = (got.body as { Attributes: Record<string, string> }).Attributes;
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

const acceptedOrder = (v: ValidatorFake, group: string) =>
  v.requests.filter((r) => r.status === 200 && r.id.startsWith(`${group}-`)).map((r) => r.id);

Deno.test("fifo e2e: several of a group per receive are submitted in order, each after the one before is answered; groups side by side", async () => {
  await withFifo({}, async (sqs, env, validator) => {
    validator.delayMs = 15;
    await sendAll(sqs, interleave(ids("a", 6), ids("b", 6), ids("c", 6)));
    await runWorkerUntil(
      env,
      async () => validator.docs.length === 18 && (await depth(sqs)) === 0,
      "18 accepted and an empty queue",
    );
    for (const group of ["a", "b", "c"]) {
      assert.deepEqual(acceptedOrder(validator, group), ids(group, 6), `group ${group} in order`);
      const arrivals = validator.arrivals.filter((a) => a.id.startsWith(`${group}-`));
      const answers = validator.requests.filter((r) => r.id.startsWith(`${group}-`));
      for (let i = 1; i < arrivals.length; i++) {
        assert.ok(
          arrivals[i]!.at >= answers[i - 1]!.at,
          `${arrivals[i]!.id} waited for the one before`,
        );
      }
    }
    // The groups ran side by side: b and c did not wait for the whole of a.
    const aLast = validator.requests.find((r) => r.id === "a-6")!.at;
    assert.ok(validator.requests.find((r) => r.id === "b-1")!.at < aLast);
  });
});

Deno.test("fifo e2e: a group whose first message keeps failing holds only itself; it ends in order, each accepted once", async () => {
  let failUntil = Infinity;
  await withFifo(
    { statusFor: (doc) => (doc.message_id === "a-1" && Date.now() < failUntil ? 503 : 200) },
    async (sqs, env, validator) => {
      await sendAll(sqs, interleave(ids("a", 3), ids("b", 5)));
      failUntil = Date.now() + 2500;
      await runWorkerUntil(
        env,
        async () => validator.docs.length === 8 && (await depth(sqs)) === 0,
        "8 accepted and an empty queue",
        60_000,
      );
      assert.deepEqual(acceptedOrder(validator, "a"), ids("a", 3));
      assert.deepEqual(acceptedOrder(validator, "b"), ids("b", 5));
      const at = (id: string) =>
        validator.requests.find((r) => r.id === id && r.status === 200)!.at;
      assert.ok(at("b-5") < at("a-1"), "b was done while a-1 still failed");
      assert.ok(
        !validator.arrivals.some((a) => a.id === "a-2" && a.at < at("a-1")),
        "a-2 was not submitted before a-1 was accepted",
      );
      for (const [id, n] of validator.accepted) assert.equal(n, 1, `${id} accepted once`);
    },
  );
});

Deno.test("fifo e2e: a receive whose answer was lost is retried with its attempt id and SQS answers the same messages at once", async () => {
  await withFifo({}, async (sqs, env, validator) => {
    await sendAll(sqs, ids("a", 3));
    // SQS takes the messages for the first receive, then the answer is lost on the way.
    sqs.respond("ReceiveMessage", async (call) => {
      await call.forward();
      return { breakConnection: true };
    });
    const started = Date.now();
    await runWorkerUntil(
      env,
      async () => validator.docs.length === 3 && (await depth(sqs)) === 0,
      "3 accepted and an empty queue",
    );
    // Without the replay the three would stay in flight for the 30 s visibility timeout.
    assert.ok(Date.now() - started < 15_000, `done in ${Date.now() - started} ms`);
    const receives = sqs.requestsFor("ReceiveMessage").map((r) => r.body?.ReceiveRequestAttemptId);
    assert.ok(receives[0], "an attempt id");
    assert.ok(receives.slice(1).includes(receives[0]), "the lost receive was asked again");
    assert.deepEqual(acceptedOrder(validator, "a"), ids("a", 3));
  });
});

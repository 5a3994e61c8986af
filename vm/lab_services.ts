/**
 * The lab's pieces on host loopback for the VM's worker: fauxqs behind the
 * counting SQS proxy, the enrichment and validator simulators, and one
 * deterministic message set sent in slices (one per VM step), each judged on
 * its own: every valid message accepted, submitted at most `allowed` times
 * more than once, every poison body in the DLQ, nothing left in the queue.
 */
import { buildApp } from "fauxqs";
import { buildDataset } from "../lab/dataset.ts";
import { startEnrichSim } from "../lab/enrich_sim.ts";
import { generateMessages, type OutgoingMessage, sendMessages } from "../lab/generator.ts";
import { createSqsAdmin } from "../lab/sqs_admin.ts";
import { startSqsProxy } from "../lab/sqs_proxy.ts";
import { startValidatorSim } from "../lab/validator_sim.ts";
import { GUEST_HOST_IP } from "./qemu.ts";
import { waitFor } from "./exec.ts";

export interface SliceResult {
  valid: number;
  accepted: number;
  /** acceptances beyond the first, for this slice's message ids */
  duplicates: number;
  poison: number;
  poisonInDlq: number;
  leftInQueue: number;
  seconds: number;
}

export type LabServices = Awaited<ReturnType<typeof startLabServices>>;

/** Starts the services; `messages` is the size of the whole set that the steps slice. */
export async function startLabServices(messages: number, seed = 15) {
  const dataset = buildDataset({ users: 500, seed });
  // No producer duplicates: a copy landing after a restart (dedupe memory gone) would blur the
  // duplicate count each step is judged on.
  const set = generateMessages({ dataset, messages, seed, duplicateShare: 0 });
  const fauxqs = buildApp({ logger: false });
  await fauxqs.listen({ port: 0, host: "127.0.0.1" });
  const address = fauxqs.server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs did not bind");
  const sqs = createSqsAdmin({ endpoint: `http://127.0.0.1:${address.port}` });
  const dlqUrl = await sqs.createQueue("sluice-vm-dlq");
  const queueUrl = await sqs.createQueue("sluice-vm", {
    VisibilityTimeout: "30",
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:sluice-vm-dlq",
      maxReceiveCount: 3,
    }),
  });
  const proxy = startSqsProxy({ target: `http://127.0.0.1:${address.port}` });
  const enrich = startEnrichSim({ dataset, scenario: "io_mild", seed });
  // A slow validator (0.3-1.5 s a submission) keeps messages in flight whenever a stop comes:
  // with the lab's 1-4 ms the worker settles each before a restart can catch it.
  const validator = startValidatorSim({
    dataset,
    expected: set.expected,
    seed,
    latencyMs: [300, 1500],
  });
  const portOf = (url: string) => Number(new URL(url).port);
  const inGuest = (url: string) => `http://${GUEST_HOST_IP}:${portOf(url)}`;
  const dlqBodies = new Set<string>();

  /** Moves what is in the DLQ into dlqBodies (read once each: an hour's visibility hides them). */
  const readDlq = async () => {
    for (let empty = 0; empty < 2;) {
      const r = await sqs.call<{ Messages?: Array<{ Body?: string }> }>("ReceiveMessage", {
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 3600,
      });
      const got = r.Messages ?? [];
      empty = got.length === 0 ? empty + 1 : 0;
      for (const m of got) dlqBodies.add(String(m.Body ?? ""));
    }
  };

  const judge = async (slice: readonly OutgoingMessage[], startedAt: number) => {
    await readDlq();
    const ids = new Set(slice.flatMap((m) => (m.messageId ? [m.messageId] : [])));
    const poison = new Set(slice.flatMap((m) => (m.poisonKind ? [m.body] : [])));
    const depth = await sqs.depth(queueUrl);
    let accepted = 0;
    let duplicates = 0;
    for (const id of ids) {
      const n = validator.acceptCount.get(id) ?? 0;
      if (n > 0) accepted++;
      duplicates += Math.max(0, n - 1);
    }
    return {
      valid: ids.size,
      accepted,
      duplicates,
      poison: poison.size,
      poisonInDlq: [...poison].filter((b) => dlqBodies.has(b)).length,
      leftInQueue: depth.visible + depth.inFlight + depth.delayed,
      seconds: (Date.now() - startedAt) / 1000,
    } satisfies SliceResult;
  };

  return {
    /** host loopback ports the guest must reach */
    ports: [portOf(proxy.url), portOf(enrich.url), portOf(validator.url)],
    /** the lab part of /etc/sluice/sluice.env, as the guest sees the services */
    guestEnv: {
      SQS_QUEUE_URL: queueUrl,
      AWS_ENDPOINT_URL_SQS: inGuest(proxy.url),
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "lab",
      AWS_SECRET_ACCESS_KEY: "lab-secret",
      ENRICH_URL: inGuest(enrich.url),
      VALIDATOR_URL: inGuest(validator.url),
    },
    /** outgoing messages [from, to) of the set */
    slice: (from: number, to: number) => set.outgoing.slice(from, to),
    total: set.outgoing.length,
    send: (slice: readonly OutgoingMessage[], rate = 0) =>
      sendMessages({ sqs, queueUrl, outgoing: slice, rate }),
    judge,
    /** waits until the slice is settled (or `timeoutSeconds` pass) and judges it */
    drained: async (
      slice: readonly OutgoingMessage[],
      startedAt: number,
      timeoutSeconds: number,
    ) => {
      const done = await waitFor(
        async () => {
          const r = await judge(slice, startedAt);
          return r.accepted === r.valid && r.poisonInDlq === r.poison && r.leftInQueue === 0
            ? r
            : undefined;
        },
        timeoutSeconds,
        1000,
      );
      return done ?? await judge(slice, startedAt);
    },
    /** validator submissions received and not yet answered */
    submissionsOnTheWire: () => {
      const s = validator.stats();
      return s.requests - s.accepted - s.duplicates - s.rejected - s.errors5xx;
    },
    heldByWorker: () => proxy.inFlight(),
    close: async () => {
      for (
        const close of [
          () => proxy.close(),
          () => enrich.close(),
          () => validator.close(),
          () => fauxqs.close(),
        ]
      ) {
        await Promise.resolve().then(close).catch(() => {});
      }
    },
  };
}

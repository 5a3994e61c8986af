/**
 * The lab's pieces on host loopback for the VM's worker: fauxqs behind the
 * counting SQS proxy, the enrichment and validator simulators, and one
 * deterministic message set sent in slices (one per VM step), each judged on
 * its own: every valid message accepted, submitted at most `allowed` times
 * more than once, every poison body in the DLQ, nothing left in the queue.
 */
import { buildApp } from "fauxqs";
import { buildDataset } from "../lab/dataset.ts";
import { type EnrichSim, startEnrichSim } from "../lab/enrich_sim.ts";
import { generateMessages, type OutgoingMessage, sendMessages } from "../lab/generator.ts";
import { createSqsAdmin, type SqsAdmin } from "../lab/sqs_admin.ts";
import { type SqsProxy, startSqsProxy } from "../lab/sqs_proxy.ts";
import { startValidatorSim, type ValidatorSim } from "../lab/validator_sim.ts";
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

/** Queue depth as createSqsAdmin's depth() reports it. */
type Depth = Awaited<ReturnType<SqsAdmin["depth"]>>;

/**
 * Judges one slice from what was observed: acceptances per message id at the validator, the
 * bodies found in the DLQ so far and the queue's depth.
 */
export function judgeSlice(
  slice: readonly OutgoingMessage[],
  observed: {
    acceptCount: ReadonlyMap<string, number>;
    dlqBodies: ReadonlySet<string>;
    depth: Depth;
    seconds: number;
  },
): SliceResult {
  const ids = new Set(slice.flatMap((m) => (m.messageId ? [m.messageId] : [])));
  const poison = new Set(slice.flatMap((m) => (m.poisonKind ? [m.body] : [])));
  let accepted = 0;
  let duplicates = 0;
  for (const id of ids) {
    const n = observed.acceptCount.get(id) ?? 0;
    if (n > 0) accepted++;
    duplicates += Math.max(0, n - 1);
  }
  const { depth } = observed;
  return {
    valid: ids.size,
    accepted,
    duplicates,
    poison: poison.size,
    poisonInDlq: [...poison].filter((b) => observed.dlqBodies.has(b)).length,
    leftInQueue: depth.visible + depth.inFlight + depth.delayed,
    seconds: observed.seconds,
  };
}

/** A slice is settled when every valid message is accepted, all poison is in the DLQ and nothing is left. */
export function isSettled(r: SliceResult): boolean {
  return r.accepted === r.valid && r.poisonInDlq === r.poison && r.leftInQueue === 0;
}

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
  const { queueUrl, dlqUrl } = await createQueues(sqs);
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
  const dlq = dlqCollector(sqs, dlqUrl);
  const judge = async (slice: readonly OutgoingMessage[], startedAt: number) => {
    await dlq.read();
    const depth = await sqs.depth(queueUrl);
    return judgeSlice(slice, {
      acceptCount: validator.acceptCount,
      dlqBodies: dlq.bodies,
      depth,
      seconds: (Date.now() - startedAt) / 1000,
    });
  };
  const services = { sqs, queueUrl, proxy, enrich, validator };
  return {
    ...labFacade(services, set.outgoing, judge),
    close: () =>
      closeAll([
        () => proxy.close(),
        () => enrich.close(),
        () => validator.close(),
        () => fauxqs.close(),
      ]),
  };
}

/** The work queue and its DLQ (a message goes there after its third receive). */
function createQueues(sqs: SqsAdmin): Promise<{ queueUrl: string; dlqUrl: string }> {
  return sqs.createQueueWithDlq("sluice-vm", "sluice-vm-dlq", 3);
}

/** The DLQ's bodies seen so far; read() moves what is in the DLQ into them. */
function dlqCollector(sqs: SqsAdmin, dlqUrl: string) {
  const bodies = new Set<string>();
  /** Read once each: an hour's visibility hides them. */
  const read = async () => {
    for (let empty = 0; empty < 2;) {
      const r = await sqs.call<{ Messages?: Array<{ Body?: string }> }>("ReceiveMessage", {
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 3600,
      });
      const got = r.Messages ?? [];
      empty = got.length === 0 ? empty + 1 : 0;
      for (const m of got) bodies.add(String(m.Body ?? ""));
    }
  };
  return { bodies, read };
}

/** What the VM steps use of the running services (everything but close). */
function labFacade(
  s: {
    sqs: SqsAdmin;
    queueUrl: string;
    proxy: SqsProxy;
    enrich: EnrichSim;
    validator: ValidatorSim;
  },
  outgoing: readonly OutgoingMessage[],
  judge: (slice: readonly OutgoingMessage[], startedAt: number) => Promise<SliceResult>,
) {
  const portOf = (url: string) => Number(new URL(url).port);
  const inGuest = (url: string) => `http://${GUEST_HOST_IP}:${portOf(url)}`;
  return {
    /** host loopback ports the guest must reach */
    ports: [portOf(s.proxy.url), portOf(s.enrich.url), portOf(s.validator.url)],
    /** the lab part of /etc/sluice/sluice.env, as the guest sees the services */
    guestEnv: {
      SQS_QUEUE_URL: s.queueUrl,
      AWS_ENDPOINT_URL_SQS: inGuest(s.proxy.url),
      // The lab's SQS is plain http at the host's guestfwd address, not loopback in the guest:
      // sluice refuses that unless allowed (the lab's keys are not secrets).
      AWS_ALLOW_HTTP_ENDPOINT: "true",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "lab",
      AWS_SECRET_ACCESS_KEY: "lab-secret",
      ENRICH_URL: inGuest(s.enrich.url),
      VALIDATOR_URL: inGuest(s.validator.url),
    },
    /** outgoing messages [from, to) of the set */
    slice: (from: number, to: number) => outgoing.slice(from, to),
    total: outgoing.length,
    send: (slice: readonly OutgoingMessage[], rate = 0) =>
      sendMessages({ sqs: s.sqs, queueUrl: s.queueUrl, outgoing: slice, rate }),
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
          return isSettled(r) ? r : undefined;
        },
        timeoutSeconds,
        1000,
      );
      return done ?? await judge(slice, startedAt);
    },
    /** validator submissions received and not yet answered */
    submissionsOnTheWire: () => {
      const st = s.validator.stats();
      return st.requests - st.accepted - st.duplicates - st.rejected - st.errors5xx;
    },
    heldByWorker: () => s.proxy.inFlight(),
  };
}

/** Closes each in turn; one failing close does not keep the others open. */
async function closeAll(closers: ReadonlyArray<() => unknown>): Promise<void> {
  for (const close of closers) await Promise.resolve().then(close).catch(() => {});
}

/**
 * Run by tests/e2e/bun_core_test.ts under Bun: the core of sluice outside Deno.
 * Pure parts (parseMessage, route, releaseVisibilitySeconds,
 * buildOutputDocument) are run on fixed inputs and reported as they came out,
 * so the test can compare them with Deno's answers. Then a whole worker
 * (`startWorker`) drains a queue on fauxqs behind the lab's SQS proxy (its plain
 * handler), an enrichment API and a validator, served by `Bun.serve`, and the
 * probe reports what each of them saw as one JSON line on stdout.
 *
 * Imports src/, fauxqs, the proxy's handler and node: builtins; no Deno API (it
 * runs where there is none).
 */
import process from "node:process";
import { loadConfig } from "../../src/app/config.ts";
import { parseMessage } from "../../src/domain/message_schema.ts";
import {
  type ReleaseVisibility,
  releaseVisibilitySeconds,
  route,
  type RouteContext,
  type Verdict,
} from "../../src/domain/outcome.ts";
import { buildOutputDocument, type Enrichment } from "../../src/domain/output_document.ts";
import { startWorker } from "../../src/app/start_worker.ts";
import { nativeSha256 } from "../../src/cli/runtime.ts";
import { SIGNING_CASES } from "./signing_cases.ts";
import { SigningKeyCache, signRequest } from "../../src/adapters/sigv4.ts";
import { bunVersion, serve, startFauxqs } from "./bun_shared.ts";
import { createSqsProxy } from "../../lab/sqs_proxy.ts";
import { createEnrichFake, createValidatorFake } from "./fake_downstreams.ts";

const BUN_VERSION = bunVersion();

const ACCOUNT = "000000000000";
const REGION = "us-east-1";
/** How long the worker may take to settle every message before the probe gives up and reports. */
const SETTLE_DEADLINE_MS = 30_000;

// ---------------------------------------------------------------------------
// Pure parts: fixed inputs, outputs reported verbatim.

/** Bodies for parseMessage: valid ones in each accepted form, and poison of each kind. */
const PARSE_CASES: readonly string[] = [
  JSON.stringify({ message_id: "a", user_id: "u1", event_ts: 1700000000, payload: { x: 1 } }),
  JSON.stringify({
    message_id: "b",
    user_id: 42,
    event_ts: "2024-02-29T12:30:45.999+02:00",
    payload: {},
  }),
  '{"message_id":"c","user_id":"u2","event_ts":1.5,"payload":{"__proto__":{"p":1},"s":"é🙂"}}',
  '{"message_id":"d","user_id":"u1","event_ts":"2023-02-29T00:00:00Z","payload":{}}',
  '{"message_id":"e","user_id":"u1","event_ts":"2024-01-01T00:00:00","payload":{}}',
  '{"message_id":"f","user_id":-1,"event_ts":1,"payload":{}}',
  '{"message_id":"g","user_id":1.5,"event_ts":1,"payload":{}}',
  '{"message_id":"","user_id":"u1","event_ts":1,"payload":{}}',
  '{"message_id":"h","event_ts":1,"payload":{}}',
  '{"message_id":"i","user_id":"u1","event_ts":1,"payload":[1]}',
  '{"message_id":"j","user_id":"u1","event_ts":1,"payload":{}',
  "[1,2,3]",
  "null",
  "",
  "not json at all ✗",
  `${"[".repeat(600)}${"]".repeat(600)}`,
];

const VERDICTS: readonly Verdict[] = [
  { kind: "accepted" },
  { kind: "duplicate" },
  { kind: "poison", reason: "invalid JSON" },
  { kind: "unknown_user" },
  { kind: "rejected", reason: "schema mismatch" },
  {
    kind: "gave_up",
    target: "enrichment",
    category: "TRANSIENT",
    reason: "timeout",
    validator5xx: false,
  },
  {
    kind: "gave_up",
    target: "validator",
    category: "TRANSIENT",
    reason: "503",
    validator5xx: true,
  },
  {
    kind: "gave_up",
    target: "enrichment",
    category: "PERMANENT",
    reason: "401",
    validator5xx: false,
  },
  { kind: "stale" },
  { kind: "hand_back", reason: "shutdown" },
  { kind: "failed", reason: "TypeError" },
];

/** Every verdict under every combination of the context's switches. */
function routeRows(): Array<{ verdict: Verdict; ctx: RouteContext; action: unknown }> {
  const rows = [];
  for (const verdict of VERDICTS) {
    for (const receiveCount of [1, 5]) {
      for (
        const [redriveKnown, maxReceiveCount] of [[true, 5], [true, undefined], [
          false,
          undefined,
        ]] as const
      ) {
        for (const hasDlq of [true, false]) {
          for (const deleteOn4xx of [false, true]) {
            for (const deleteOn5xx of [false, true]) {
              for (const unknownUserPolicy of ["submit", "dead-letter", "drop"] as const) {
                const ctx: RouteContext = {
                  receiveCount,
                  redriveKnown,
                  maxReceiveCount,
                  hasDlq,
                  deleteOn4xx,
                  deleteOn5xx,
                  unknownUserPolicy,
                };
                rows.push({ verdict, ctx, action: route(verdict, ctx) });
              }
            }
          }
        }
      }
    }
  }
  return rows;
}

function visibilityRows(): Array<{ args: [number, number, ReleaseVisibility]; seconds: number }> {
  const rows: Array<{ args: [number, number, ReleaseVisibility]; seconds: number }> = [];
  for (const receiveCount of [0, 1, 2, 5, 30]) {
    for (const since of [0, 100, 43190]) {
      for (const visibility of ["backoff", "longest", "now"] as const) {
        rows.push({
          args: [receiveCount, since, visibility],
          seconds: releaseVisibilitySeconds(receiveCount, since, { visibility }),
        });
      }
    }
  }
  return rows;
}

function documents(): unknown[] {
  const message = {
    message_id: "m",
    user_id: "7",
    event_ts: 1700000000,
    payload: { z: 1, a: [true, null], "ü": "✓" },
  };
  const profile = { user_id: "7", name: "Ada", tier: "gold" };
  const cases: Enrichment[] = [
    { status: "ok", profile },
    { status: "stale", profile },
    { status: "unknown_user" },
  ];
  // Serialised, so key order (part of the contract) reaches the test.
  return cases.map((enrichment) => JSON.stringify(buildOutputDocument(message, enrichment)));
}

// ---------------------------------------------------------------------------
// The worker, end to end.

/** The messages sent, in order: tag says what the test should expect of each. */
function workload(): Array<{ tag: string; body: string }> {
  const out: Array<{ tag: string; body: string }> = [];
  for (let i = 1; i <= 24; i++) {
    const id = `m${String(i).padStart(2, "0")}`;
    const userId = i === 7 ? 42 : `u${(i % 6) + 1}`;
    const eventTs = i === 9 ? "2024-05-01T10:00:00.5Z" : 1_700_000_000 + i;
    out.push({
      tag: "valid",
      body: JSON.stringify({
        message_id: id,
        user_id: userId,
        event_ts: eventTs,
        payload: { n: i, note: "grüß dich ✓" },
      }),
    });
  }
  // Producer duplicates: the same bodies again.
  for (const i of [0, 1, 2]) out.push({ tag: "duplicate", body: out[i]!.body });
  out.push({ tag: "poison", body: '{"message_id":"p1","user_id":"u1", oops ✗ 🙂' });
  out.push({
    tag: "poison",
    body: '{"message_id":"p2","user_id":"u1","event_ts":"yesterday","payload":{}}',
  });
  out.push({
    tag: "unknown",
    body: JSON.stringify({ message_id: "m25", user_id: "ghost", event_ts: 1, payload: {} }),
  });
  return out;
}

async function pipelineRun() {
  const fauxqs = await startFauxqs();
  const sqs = createSqsProxy({
    target: fauxqs.endpoint,
    record: true,
    ownQueueUrls: true,
    fifo: true,
  });
  const call = async (action: string, body: Record<string, unknown>) => {
    const got = await sqs.call(action, body);
    if (got.status !== 200) throw new Error(`SQS ${action}: ${JSON.stringify(got.body)}`);
    return got.body as Record<string, unknown>;
  };
  // Known users; any other id is unknown (404 / `missing`). The first batch call answers 503.
  const known = new Set(["u1", "u2", "u3", "u4", "u5", "u6", "42"]);
  const enrichment = createEnrichFake({
    known: (id) => known.has(id),
    profile: (id) => ({ user_id: id, name: `user ${id}`, tier: "gold" }),
  });
  enrichment.failBatches.push(503);
  enrichment.retryAfter = "0";
  // Accepts every document with a 202; the first submission of m05 answers 503.
  const validator = createValidatorFake({ acceptStatus: 202 });
  validator.failFirst.set("m05", 503);
  validator.retryAfter = "0";
  const servers = {
    sqs: serve(sqs.handle),
    enrichment: serve(enrichment.handle),
    validator: serve(validator.handle),
  };
  const logs: string[] = [];
  try {
    sqs.listening(`http://127.0.0.1:${servers.sqs.port}`);
    await call("CreateQueue", { QueueName: "work-dlq" });
    const { QueueUrl: mainUrl } = await call("CreateQueue", {
      QueueName: "work",
      Attributes: {
        VisibilityTimeout: "30",
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:work-dlq`,
          maxReceiveCount: 5,
        }),
      },
    });
    const sent = workload();
    for (const item of sent) {
      await call("SendMessage", { QueueUrl: mainUrl, MessageBody: item.body });
    }

    const env: Record<string, string> = {
      SQS_QUEUE_URL: String(mainUrl),
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "AKIDPROBE",
      AWS_SECRET_ACCESS_KEY: "probe-secret",
      ENRICH_URL: `http://127.0.0.1:${servers.enrichment.port}`,
      VALIDATOR_URL: `http://127.0.0.1:${servers.validator.port}`,
      SQS_RECEIVE_WAIT_SECONDS: "1",
      SHUTDOWN_GRACE_SECONDS: "5",
      HTTP_TIMEOUT_MS: "5000",
      LOG_LEVEL: "debug", // one "message" line per outcome, accepted ones included
    };
    // Signed as the binary signs: with Bun's own hasher (src/cli/runtime.ts).
    const sha256 = nativeSha256();
    if (!sha256) throw new Error("no native SHA-256 under Bun");
    const worker = startWorker(loadConfig(env), { env, sha256, write: (line) => logs.push(line) });
    const started = Date.now();
    let settled = false;
    try {
      while (Date.now() - started < SETTLE_DEADLINE_MS) {
        const left = (await sqs.messages("work")).length;
        if (left === 0 && (await sqs.messages("work-dlq")).length >= 2) {
          settled = true;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const probe = async (path: string) => {
        const response = await worker.app.request(path);
        return { status: response.status, body: await response.text() };
      };
      const healthz = await probe("/healthz");
      const readyz = await probe("/readyz");
      await worker.stop(5_000);
      await worker.done;
      // After the drain: the queue can be empty a moment before the last outcome is counted.
      const metrics = await probe("/metrics");
      const healthzAfterStop = await probe("/healthz");
      return {
        settled,
        sent,
        // Raw text, so the test sees the exact key order the worker sent.
        accepted: validator.texts,
        submissions: validator.requests.map((r) => r.id),
        dlq: (await sqs.messages("work-dlq")).map((m) => ({
          body: m.body,
          attributes: m.messageAttributes,
        })),
        leftInQueue: (await sqs.messages("work")).map((m) => m.body),
        sqsRequests: sqs.requests.reduce<Record<string, number>>(
          (n, r) => ({ ...n, [r.action]: (n[r.action] ?? 0) + 1 }),
          {},
        ),
        staleReceipts: metrics.body.split("\n")
          .filter((l) => l.startsWith("sluice_stale_receipts_total"))
          .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0),
        enrichBatches: enrichment.requests.filter((r) => r.batch).map((r) => r.ids),
        enrichSingles: enrichment.requests.filter((r) => !r.batch).map((r) => r.ids[0]),
        healthz,
        readyz,
        healthzAfterStop,
        outcomes: metrics.body.split("\n").filter((l) => l.startsWith("sluice_messages_total{")),
        logs: logs.map((line) => JSON.parse(line) as Record<string, unknown>),
      };
    } finally {
      await worker.stop(1_000);
    }
  } finally {
    enrichment.abort();
    validator.abort();
    sqs.abort();
    await Promise.all(Object.values(servers).map((s) => s.stop(true)));
    await fauxqs.close();
  }
}

const report = {
  bun: BUN_VERSION,
  parse: PARSE_CASES.map((body) => ({ body, result: parseMessage(body) })),
  routes: routeRows(),
  visibility: visibilityRows(),
  documents: documents(),
  signatures: SIGNING_CASES.map((input) => {
    const cache = new SigningKeyCache(nativeSha256());
    // Twice: the second signature comes from the cached derived key.
    return [signRequest(input, cache).headers, signRequest(input, cache).headers];
  }),
  pipeline: await pipelineRun(),
};
process.stdout.write(`${JSON.stringify(report)}\n`);

/**
 * The core pipeline under Bun ("src/ runs under both runtimes; a test
 * runs the core pipeline tests under Bun too"). tests/support/bun_core_probe.ts
 * runs in bun@1.4.5 from npm: it reports parseMessage, route,
 * releaseVisibilitySeconds and buildOutputDocument answers on fixed inputs, and
 * a whole worker's run against fauxqs behind the lab's SQS proxy, an enrichment
 * API and a validator, served by Bun. This test recomputes the pure answers here under Deno and
 * requires them to agree, and checks every message's end in the worker run.
 */
import assert from "node:assert/strict";
import { BUN_VERSION, bunPath, REPO } from "../support/command.ts";
import { parseMessage, type ParseResult } from "../../src/domain/message_schema.ts";
import {
  type ReleaseVisibility,
  releaseVisibilitySeconds,
  route,
  type RouteContext,
  type Verdict,
} from "../../src/domain/outcome.ts";
import { buildOutputDocument } from "../../src/domain/output_document.ts";
import { SigningKeyCache, signRequest } from "../../src/adapters/sigv4.ts";
import { SIGNING_CASES } from "../support/signing_cases.ts";

const PROBE = "tests/support/bun_core_probe.ts";
/** Bound on the whole probe run (it takes about 2 s; the probe's own deadline is 30 s). */
const PROBE_TIMEOUT_MS = 120_000;

interface SqsAttribute {
  DataType: string;
  StringValue?: string;
}

interface Report {
  bun: string;
  parse: Array<{ body: string; result: ParseResult }>;
  routes: Array<{ verdict: Verdict; ctx: RouteContext; action: unknown }>;
  visibility: Array<{ args: [number, number, ReleaseVisibility]; seconds: number }>;
  documents: string[];
  signatures: Array<[Record<string, string>, Record<string, string>]>;
  pipeline: {
    settled: boolean;
    sent: Array<{ tag: string; body: string }>;
    accepted: string[];
    submissions: string[];
    dlq: Array<{ body: string; attributes: Record<string, SqsAttribute> | undefined }>;
    leftInQueue: string[];
    sqsRequests: Record<string, number>;
    staleReceipts: number;
    enrichBatches: string[][];
    enrichSingles: string[];
    healthz: { status: number; body: string };
    readyz: { status: number; body: string };
    healthzAfterStop: { status: number; body: string };
    outcomes: string[];
    logs: Array<Record<string, unknown>>;
  };
}

async function runProbe(): Promise<Report> {
  const bun = await bunPath();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
  try {
    const out = await new Deno.Command(bun, {
      args: ["run", PROBE],
      cwd: REPO,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(!abort.signal.aborted, `the probe ran past ${PROBE_TIMEOUT_MS} ms:\n${stderr}`);
    assert.equal(out.code, 0, `the probe failed (exit ${out.code}):\n${stdout}\n${stderr}`);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    assert.ok(line.startsWith("{"), `the probe printed no report:\n${stdout}\n${stderr}`);
    return JSON.parse(line) as Report;
  } finally {
    clearTimeout(timer);
  }
}

/** As it would come back through JSON (undefined properties dropped). */
const viaJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const PROFILE_KEYS = ["user_id", "name", "tier"];

Deno.test("bun core: the core pipeline under Bun", async (t) => {
  const report = await runProbe();
  assert.equal(report.bun, BUN_VERSION);

  await t.step("parseMessage agrees with Deno", () => {
    assert.equal(report.parse.length, 16);
    for (const { body, result } of report.parse) {
      const here = parseMessage(body);
      if (!here.ok && here.reason.startsWith("invalid JSON:")) {
        // The JSON parser's own message differs between V8 and JavaScriptCore.
        assert.equal(result.ok, false, body);
        assert.match((result as { reason: string }).reason, /^invalid JSON: ./, body);
        continue;
      }
      assert.deepEqual(result, viaJson(here), body);
    }
    const [a, b, c] = report.parse;
    assert.deepEqual(a?.result, {
      ok: true,
      message: { message_id: "a", user_id: "u1", event_ts: 1700000000, payload: { x: 1 } },
    });
    assert.deepEqual(b?.result, {
      ok: true,
      message: { message_id: "b", user_id: "42", event_ts: 1709202645, payload: {} },
    });
    // `__proto__` stays plain data.
    assert.equal(
      JSON.stringify(c?.result),
      '{"ok":true,"message":{"message_id":"c","user_id":"u2","event_ts":1.5,' +
        '"payload":{"__proto__":{"p":1},"s":"é🙂"}}}',
    );
    assert.deepEqual(
      report.parse.map((p) => p.result.ok),
      [true, true, true, ...new Array(13).fill(false)],
    );
  });

  await t.step("route() and release visibility agree with Deno", () => {
    // verdicts × receive counts × redrive (known with 5, known without, not read yet) × switches
    assert.equal(report.routes.length, 11 * 2 * 3 * 2 * 2 * 2 * 3);
    for (const { verdict, ctx, action } of report.routes) {
      assert.deepEqual(action, viaJson(route(verdict, ctx)), JSON.stringify({ verdict, ctx }));
    }
    const kinds = new Set(report.routes.map((r) => (r.action as { kind: string }).kind));
    assert.deepEqual([...kinds].sort(), [
      "dead_letter",
      "delete",
      "hold",
      "let_go",
      "release",
      "requeue",
    ]);
    const poison = report.routes.find((r) => r.verdict.kind === "poison" && r.ctx.hasDlq);
    assert.deepEqual(poison?.action, {
      kind: "dead_letter",
      category: "VALIDATION",
      reason: "invalid JSON",
    });
    assert.equal(report.visibility.length, 45);
    for (const { args: [count, since, visibility], seconds } of report.visibility) {
      assert.equal(
        seconds,
        releaseVisibilitySeconds(count, since, { visibility }),
        `${[count, since, visibility]}`,
      );
    }
  });

  await t.step("buildOutputDocument: same keys in the same order", () => {
    const prefix = '{"message_id":"m","user_id":"7","event_ts":1700000000,' +
      '"payload":{"z":1,"a":[true,null],"ü":"✓"},"user":';
    const profile = '{"user_id":"7","name":"Ada","tier":"gold"}';
    assert.deepEqual(report.documents, [
      `${prefix}${profile},"enrichment":{"status":"ok"}}`,
      `${prefix}${profile},"enrichment":{"status":"stale"}}`,
      `${prefix}null,"enrichment":{"status":"unknown_user"}}`,
    ]);
  });

  await t.step("signing with Bun's native SHA-256 gives @noble/hashes' signatures", () => {
    assert.equal(report.signatures.length, SIGNING_CASES.length);
    SIGNING_CASES.forEach((input, i) => {
      const expected = signRequest(input, new SigningKeyCache()).headers;
      assert.deepEqual(report.signatures[i], [expected, expected], `case ${i}`);
    });
  });

  await t.step("a worker drains a queue under Bun", () => {
    const p = report.pipeline;
    const tags = p.sent.map((s) => s.tag);
    const count = (tag: string) => tags.filter((x) => x === tag).length;
    assert.deepEqual(
      [count("valid"), count("duplicate"), count("poison"), count("unknown"), tags.length],
      [24, 3, 2, 1, 30],
    );
    assert.equal(p.settled, true, `not settled in time: ${JSON.stringify(p.leftInQueue)}`);
    assert.deepEqual(p.leftInQueue, []);
    assert.equal(p.staleReceipts, 0);

    // Every valid message accepted exactly once, with the document Deno would build.
    const docs = new Map<string, string>();
    for (const text of p.accepted) {
      const id = (JSON.parse(text) as { message_id: string }).message_id;
      assert.ok(!docs.has(id), `${id} accepted twice`);
      docs.set(id, text);
    }
    const valid = p.sent.filter((s) => s.tag === "valid");
    const unknown = p.sent.filter((s) => s.tag === "unknown");
    assert.equal(docs.size, valid.length + unknown.length);
    for (const { body } of valid) {
      const parsed = parseMessage(body);
      assert.ok(parsed.ok, body);
      const user = JSON.parse(docs.get(parsed.message.message_id) ?? "null")?.user;
      assert.deepEqual(Object.keys(user ?? {}), PROFILE_KEYS, "profile without meta");
      assert.equal(user.user_id, parsed.message.user_id);
      const expected = buildOutputDocument(parsed.message, { status: "ok", profile: user });
      assert.equal(docs.get(parsed.message.message_id), JSON.stringify(expected));
    }
    // The unknown user is submitted with `user: null`.
    for (const { body } of unknown) {
      const parsed = parseMessage(body);
      assert.ok(parsed.ok, body);
      const expected = buildOutputDocument(parsed.message, { status: "unknown_user" });
      assert.equal(docs.get(parsed.message.message_id), JSON.stringify(expected));
    }

    // Duplicates were not submitted again; the one validator 503 was retried once.
    const submitted = new Map<string, number>();
    for (const id of p.submissions) submitted.set(id, (submitted.get(id) ?? 0) + 1);
    for (const [id, n] of submitted) assert.equal(n, id === "m05" ? 2 : 1, `${id} submitted ${n}×`);
    assert.equal(submitted.size, 25);

    // Poison in the DLQ byte for byte, marked VALIDATION with the reason.
    const poison = p.sent.filter((s) => s.tag === "poison").map((s) => s.body);
    assert.ok(
      poison.some((body) => [...body].some((ch) => ch.codePointAt(0)! > 127)),
      "a poison body is not ASCII",
    );
    assert.deepEqual(p.dlq.map((m) => m.body).sort(), [...poison].sort());
    for (const m of p.dlq) {
      assert.deepEqual(m.attributes?.sluice_error, {
        DataType: "String",
        StringValue: "VALIDATION",
      });
      const here = parseMessage(m.body);
      assert.ok(!here.ok);
      const reason = m.attributes?.sluice_reason?.StringValue ?? "";
      if (here.reason.startsWith("invalid JSON:")) assert.match(reason, /^invalid JSON: ./);
      else assert.equal(reason, here.reason);
    }
    assert.equal(p.sqsRequests.SendMessage, 2);

    // The enrichment's 503 on the first batch was survived.
    assert.ok(p.enrichBatches.length >= 2, JSON.stringify(p.enrichBatches));
    assert.ok([...p.enrichBatches.flat(), ...p.enrichSingles].includes("ghost"));

    // Outcomes: metrics and (at debug) one log line per SQS message; nothing logged as an error.
    assert.deepEqual(p.outcomes.sort(), [
      'sluice_messages_total{outcome="accepted"} 25',
      'sluice_messages_total{outcome="dead_lettered"} 2',
      'sluice_messages_total{outcome="deferred"} 0',
      'sluice_messages_total{outcome="deleted_5xx"} 0',
      'sluice_messages_total{outcome="dropped"} 0',
      'sluice_messages_total{outcome="duplicate"} 3',
      'sluice_messages_total{outcome="rejected_deleted"} 0',
      'sluice_messages_total{outcome="released"} 0',
    ]);
    const outcomeLines = p.logs.filter((l) => l.msg === "message");
    assert.equal(new Set(outcomeLines.map((l) => l.sqs_message_id)).size, 30);
    assert.equal(outcomeLines.length, 30);
    assert.deepEqual(p.logs.filter((l) => l.level === "error"), []);
    assert.ok(p.logs.some((l) => l.msg === "stopped"));

    assert.deepEqual(p.healthz, { status: 200, body: '{"status":"ok"}' });
    assert.deepEqual(p.readyz, { status: 200, body: '{"status":"ready"}' });
    assert.deepEqual(p.healthzAfterStop, { status: 503, body: '{"status":"stopped"}' });
  });
});

/**
 * Tracing under Bun (the binary's fallback build): tests/support/bun_trace_probe.ts runs a
 * worker with span export on in bun@1.4.5; its submissions' traceparents and its OTLP exports
 * are checked here, the exports decoded by the official definitions (lab/otlp_receiver.ts).
 */
import assert from "node:assert/strict";
import { bunPath, REPO } from "../support/command.ts";
import { decodeExport } from "../../lab/otlp_receiver.ts";

Deno.test("bun tracing: under Bun every submission carries a traceparent and the spans reach the receiver whole", async () => {
  const out = await new Deno.Command(await bunPath(), {
    args: ["run", "tests/support/bun_trace_probe.ts"],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${stdout}\n${new TextDecoder().decode(out.stderr)}`);
  const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    submissions: Array<{ id: string; traceparent: string | null }>;
    exports: Array<{ contentType: string; body: string }>;
  };
  assert.equal(report.submissions.length, 6);
  for (const s of report.submissions) {
    assert.match(s.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, s.id);
  }
  const m0 = report.submissions.find((s) => s.id === "m0")!;
  assert.equal(m0.traceparent!.slice(3, 35), "4bf92f3577b34da6a3ce929d0e0e4736");
  const spans = report.exports.flatMap((e) =>
    decodeExport(Uint8Array.from(atob(e.body), (c) => c.charCodeAt(0)), e.contentType)
  ).flatMap((e) => e.spans);
  const messages = spans.filter((s) => s.name === "process traced");
  assert.equal(messages.length, 6);
  for (const m of messages) {
    const children = new Set(spans.filter((s) => s.parentSpanId === m.spanId).map((s) => s.name));
    assert.deepEqual(
      [...children].sort(),
      ["DeleteMessage", "GET enrichment", "POST validator"],
      String(m.attributes["sluice.message_id"]),
    );
  }
});

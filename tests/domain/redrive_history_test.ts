import assert from "node:assert/strict";
import { withRedriveHistory } from "../../src/domain/redrive_history.ts";

const s = (v: string) => ({ StringValue: v });
const DLQ = { sluice_error: "VALIDATION", sluice_reason: "invalid JSON" };
const HISTORY = {
  sluice_redrive_run: s("run-1"),
  sluice_redriven_at: s("2026-01-01T00:00:00.000Z"),
  sluice_last_error: s("REJECTED"),
  sluice_last_reason: s("HTTP 400"),
};

Deno.test("redrive history: nothing to carry: the same attributes object", () => {
  assert.equal(withRedriveHistory("x", DLQ, undefined), DLQ);
  assert.equal(withRedriveHistory("x", DLQ, { trace_id: s("t") }), DLQ);
});

Deno.test("redrive history: the four history attributes carried, producer attributes not", () => {
  assert.deepEqual(withRedriveHistory("x", DLQ, { ...HISTORY, trace_id: s("t") }), {
    ...DLQ,
    sluice_redrive_run: "run-1",
    sluice_redriven_at: "2026-01-01T00:00:00.000Z",
    sluice_last_error: "REJECTED",
    sluice_last_reason: "HTTP 400",
  });
});

Deno.test("redrive history: the worker's fresh attributes win over carried ones of the same name", () => {
  const out = withRedriveHistory("x", { ...DLQ, sluice_last_error: "NEW" }, HISTORY);
  assert.equal(out.sluice_last_error, "NEW");
});

Deno.test("redrive history: within 10 attributes, most needed first", () => {
  const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`a${i}`, "v"]));
  assert.deepEqual(Object.keys(withRedriveHistory("x", many, HISTORY)).slice(8), [
    "sluice_redrive_run",
    "sluice_redriven_at",
  ]);
});

Deno.test("redrive history: within 1 MiB: what does not fit is left out, an empty value never sent", () => {
  const body = "b".repeat(1024 * 1024 - 100);
  const out = withRedriveHistory(body, DLQ, { ...HISTORY, sluice_last_reason: s("") });
  assert.ok("sluice_redrive_run" in out, "its 29 bytes fit");
  assert.ok(!("sluice_redriven_at" in out), "48 more do not");
  assert.ok(!("sluice_last_reason" in out));
});

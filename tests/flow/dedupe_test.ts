/** Dedupe, alone: accepted ids, the copy at work, and a second copy waiting for the first. */
import assert from "node:assert/strict";
import { Dedupe, type WorkClaim } from "../../src/flow/dedupe.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import { createLogger } from "../../src/lib/logger.ts";

function dedupe(ttlSeconds = 3600) {
  const clock = new FakeClock();
  const it = new Dedupe({ dedupTtlSeconds: ttlSeconds }, {
    metrics: createSluiceMetrics(),
    logger: QUIET_LOGGER,
    clock,
  });
  return { it, clock };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("dedupe: the first copy claims at once; an accepted id is a duplicate until its TTL ends", () => {
  const { it, clock } = dedupe(60);
  const first = it.claim("m");
  assert.equal(typeof first, "object");
  (first as WorkClaim).done(true);
  it.remember("m");
  assert.equal(it.claim("m"), "duplicate");
  clock.advance(61_000);
  assert.equal(typeof it.claim("m"), "object", "forgotten after DEDUP_TTL_SECONDS");
});

Deno.test("dedupe: a second copy is behind the first and learns it was accepted: a duplicate", async () => {
  const { it } = dedupe();
  const first = it.claim("m") as WorkClaim;
  assert.equal(it.claim("m"), "behind");
  let answer: unknown;
  const waiting = it.afterFirst("m").then((a) => answer = a);
  await settled();
  assert.equal(answer, undefined, "waits while the first is at work");
  it.remember("m");
  first.done(true);
  await waiting;
  assert.equal(answer, "duplicate");
});

Deno.test("dedupe: a second copy behind a first that was not accepted becomes the copy at work", async () => {
  const { it } = dedupe();
  const first = it.claim("m") as WorkClaim;
  const waiting = it.afterFirst("m");
  first.done(false);
  const second = await waiting;
  assert.equal(typeof second, "object", "now its turn");
  assert.equal(it.claim("m"), "behind", "and a third copy waits for it");
  (second as WorkClaim).done(false);
});

Deno.test("dedupe: with DEDUP_TTL_SECONDS=0 a copy behind an accepted first is still a duplicate", async () => {
  const { it } = dedupe(0);
  const first = it.claim("m") as WorkClaim;
  const waiting = it.afterFirst("m");
  it.remember("m");
  first.done(true);
  assert.equal(await waiting, "duplicate");
});

Deno.test("dedupe: at the default settings the startup says the window's capacity once at info, with what to set, and warns of nothing", () => {
  const lines: Array<Record<string, unknown>> = [];
  const clock = new FakeClock();
  const write = (l: string) => lines.push(JSON.parse(l));
  new Dedupe({ dedupTtlSeconds: 3600 }, {
    metrics: createSluiceMetrics(),
    logger: createLogger({ level: "debug", write, clock }),
    clock,
  });
  assert.deepEqual(lines.filter((l) => l.level !== "info" && l.level !== "debug"), []);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.match(String(lines[0]!.msg), /DEDUP_TTL_SECONDS=3600 up to 436 msg\/s/);
  assert.match(String(lines[0]!.msg), /set IDEMPOTENCY_TABLE, or DEDUP_TTL_SECONDS=524/);
});

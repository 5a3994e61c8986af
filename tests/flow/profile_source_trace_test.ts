import assert from "node:assert/strict";
import type { BatchLookup, Profile } from "../../src/adapters/enrich_client.ts";
import { ProfileSource } from "../../src/flow/profile_source.ts";
import { SPAN_KIND, type Traced } from "../../src/lib/tracer.ts";
import { recordingTracer } from "../support/trace_kit.ts";

function rig(batchMax: number) {
  const { clock, added, tracer } = recordingTracer();
  const calls: Array<{ ids: string[]; trace: Traced | undefined }> = [];
  const profile = (id: string): Profile => ({ user_id: id, segment: "s" });
  const source = new ProfileSource({
    client: {
      getUser: (id, _signal, trace) => {
        calls.push({ ids: [id], trace });
        return Promise.resolve(profile(id));
      },
      getUsers: (ids, _signal, trace) => {
        calls.push({ ids: [...ids], trace });
        const answer: BatchLookup = {
          users: new Map(ids.map((id) => [id, profile(id)])),
          missing: new Set(),
          retry: new Map(),
        };
        return Promise.resolve(answer);
      },
    },
    breaker: { run: (fn) => fn(), canPass: () => true },
    limiter: { run: (fn) => fn() },
    cacheTtlMs: 60_000,
    cacheMaxEntries: 100,
    batchMax,
    batchWaitMs: 5,
    clock,
    tracer,
  });
  const message = () => tracer.begin(undefined, "process q", SPAN_KIND.consumer);
  return { clock, added, calls, source, message };
}

Deno.test("profile source tracing: a batch lookup is its own trace, linked to every message it serves", async () => {
  const { clock, added, calls, source, message } = rig(10);
  const [a, b, c] = [message(), message(), message()];
  const lookups = [source.lookup("u1", a), source.lookup("u2", b), source.lookup("u2", c)];
  clock.advance(5);
  await Promise.all(lookups);
  assert.equal(calls.length, 1);
  const batch = calls[0]!.trace!;
  assert.ok(batch.span, "recorded");
  assert.ok(![a, b, c].some((m) => m.traceId === batch.traceId), "its own trace");
  assert.deepEqual(
    batch.span.links?.map((l) => l.spanId).sort(),
    [a, b, c].map((m) => m.spanId).sort(),
    "a link to each waiting message, the one that joined a lookup in flight too",
  );
  assert.ok(added.includes(batch.span), "ended and exported");
});

Deno.test("profile source tracing: a single lookup is a child of the message that asked", async () => {
  const { clock, calls, source, message } = rig(1);
  const a = message();
  const lookup = source.lookup("u1", a);
  clock.advance(5);
  await lookup;
  assert.equal(calls[0]!.trace, a);
});

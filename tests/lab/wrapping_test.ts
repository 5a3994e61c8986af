import assert from "node:assert/strict";
import { buildDataset } from "../../lab/dataset.ts";
import { generateMessages } from "../../lab/generator.ts";
import { parseLabFlags } from "../../lab/main.ts";
import { LAB_BUCKET, planWrapping, splitForSending } from "../../lab/wrapping.ts";

const dataset = buildDataset({ users: 200, seed: 3 });
const set = generateMessages({ dataset, messages: 2000, seed: 3, duplicateShare: 0.05 });
const shares = { envelopes: 0.25, pointers: 0.05, seed: 3 };

Deno.test("lab wrapping: about the shares asked, poison never, a duplicate as its original", () => {
  const plan = planWrapping(set.outgoing, shares);
  const valid = set.outgoing.filter((m) => m.messageId !== undefined).length;
  const sns = plan.filter((w) => w?.sns).length / valid;
  const pointers = plan.filter((w) => w?.object).length / valid;
  assert.ok(sns > 0.2 && sns < 0.3, `envelopes ${sns}`);
  assert.ok(pointers > 0.03 && pointers < 0.07, `pointers ${pointers}`);
  set.outgoing.forEach((m, i) => {
    if (m.poisonKind) assert.equal(plan[i], undefined, "poison stays plain");
  });
  const byId = new Map<string, unknown>();
  set.outgoing.forEach((m, i) => {
    if (!m.messageId) return;
    if (byId.has(m.messageId)) assert.equal(plan[i], byId.get(m.messageId), m.messageId);
    byId.set(m.messageId, plan[i]);
  });
  assert.ok(plan.some((w) => (w?.object?.body.length ?? 0) > 2_000_000), "some objects are 2 MB");
  assert.deepEqual(planWrapping(set.outgoing, shares), plan, "the same seed, the same plan");
});

Deno.test("lab wrapping: pointers go to the queue with their size attribute, envelopes to the topic", () => {
  const plan = planWrapping(set.outgoing, shares);
  const { queue, topic } = splitForSending(set.outgoing, plan);
  assert.equal(queue.length + topic.length, set.outgoing.length);
  const pointer = queue.find((m) => m.attributes !== undefined)!;
  const size = pointer.attributes!.ExtendedPayloadSize ?? pointer.attributes!.SQSLargePayloadSize;
  assert.match(size!, /^\d+$/);
  assert.match(pointer.body, new RegExp(`"s3BucketName":"${LAB_BUCKET}"`));
  assert.ok(topic.some((t) => t.body.includes("s3BucketName")), "pointers published to SNS too");
});

Deno.test("lab wrapping: a producer's traceparent goes with the message to the topic and in a pointer", () => {
  const traced = set.outgoing.map((m, i) => ({ ...m, traceparent: `00-${"1".repeat(32)}-${i}` }));
  const plan = planWrapping(traced, shares);
  const { queue, topic } = splitForSending(traced, plan);
  assert.ok(topic.length > 0);
  for (const t of topic) assert.match(t.attributes.traceparent ?? "", /^00-1{32}-\d+$/);
  const pointers = queue.filter((m) =>
    m.attributes?.ExtendedPayloadSize ?? m.attributes?.SQSLargePayloadSize
  );
  assert.ok(pointers.length > 0);
  for (const m of pointers) assert.equal(m.attributes?.traceparent, m.traceparent);
});

Deno.test("lab wrapping: --envelopes and --pointers take a share and refuse --fifo", () => {
  const flags = parseLabFlags(["--envelopes", "0.25", "--pointers", "0.05"]);
  assert.equal(flags.envelopeShare, 0.25);
  assert.equal(flags.pointerShare, 0.05);
  assert.throws(() => parseLabFlags(["--fifo", "--pointers", "0.1"]), /need a standard queue/);
  assert.throws(() => parseLabFlags(["--envelopes", "2"]));
});

/**
 * `--envelopes X --pointers Y`: a share of the valid messages reaches the queue through an SNS
 * topic (the queue subscribed without raw delivery: fauxqs writes the real envelope), and a share
 * as an SQS Extended Client S3 pointer to the message put in a bucket (every tenth of them padded
 * to about 2 MB with an ignored top-level field). Both shares may overlap: a pointer published to
 * SNS. Poison bodies stay plain, so the judge still finds them byte for byte in the DLQ. The
 * choice is a function of the seed and the message_id, so a producer duplicate is wrapped as its
 * original is.
 */
import type { OutgoingMessage } from "./generator.ts";
import { createRng, deriveSeed } from "./prng.ts";
import { extendedSizeAttribute, pointerBody, type SnsS3Admin } from "./sns_s3_admin.ts";

export const LAB_BUCKET = "sluice-lab-payloads";
/** Every this many pointers, one object is padded to BIG_BYTES. */
const BIG_EVERY = 10;
const BIG_BYTES = 2 * 1024 * 1024;

export interface WrapShares {
  /** share of valid messages published to SNS */
  envelopes: number;
  /** share of valid messages sent as S3 pointers */
  pointers: number;
  seed: number;
}

/** How one message travels, beside its body. */
export interface Wrapped {
  /** published to the lab's SNS topic instead of sent to the queue */
  sns: boolean;
  /** sent as a pointer to this object (the message, maybe padded) */
  object?: { key: string; body: string; legacy: boolean };
}

/** The wrapping of every outgoing message (undefined: plain, as before), in order. */
export function planWrapping(
  outgoing: readonly OutgoingMessage[],
  shares: WrapShares,
): Array<Wrapped | undefined> {
  let pointers = 0;
  const decided = new Map<string, Wrapped | undefined>();
  return outgoing.map((m) => {
    if (m.messageId === undefined || m.group !== undefined) return undefined;
    if (decided.has(m.messageId)) return decided.get(m.messageId);
    const rng = createRng(deriveSeed(shares.seed, `wrap:${m.messageId}`));
    const sns = rng.chance(shares.envelopes);
    const pointer = rng.chance(shares.pointers);
    let wrapped: Wrapped | undefined;
    if (sns || pointer) {
      wrapped = { sns };
      if (pointer) {
        const big = ++pointers % BIG_EVERY === 0;
        const body = big ? padded(m.body, BIG_BYTES) : m.body;
        wrapped.object = { key: `lab/${m.messageId}.json`, body, legacy: rng.chance(0.3) };
      }
    }
    decided.set(m.messageId, wrapped);
    return wrapped;
  });
}

/** The body with an ignored top-level field that brings it to about `bytes`. */
function padded(body: string, bytes: number): string {
  const doc = JSON.parse(body) as Record<string, unknown>;
  doc.padding = "x".repeat(Math.max(0, bytes - body.length));
  return JSON.stringify(doc);
}

/** What goes on the wire for a wrapped message: its body (a pointer or the message) and attributes. */
export function wireForm(
  m: OutgoingMessage,
  w: Wrapped,
): { body: string; attributes: Record<string, string> } {
  // The producer's own attributes go with it (to SNS they are the envelope's MessageAttributes).
  const own = { ...m.attributes, ...(m.traceparent ? { traceparent: m.traceparent } : {}) };
  if (!w.object) return { body: m.body, attributes: own };
  return {
    body: pointerBody(LAB_BUCKET, w.object.key, w.object.legacy),
    attributes: {
      ...own,
      ...extendedSizeAttribute(new TextEncoder().encode(w.object.body).length, w.object.legacy),
    },
  };
}

/** Puts every pointed-to object in the bucket (once each). */
export async function putObjects(
  s3: SnsS3Admin,
  plan: ReadonlyArray<Wrapped | undefined>,
  signal?: AbortSignal,
): Promise<void> {
  const keys = new Map<string, string>();
  for (const w of plan) if (w?.object) keys.set(w.object.key, w.object.body);
  const entries = [...keys];
  let next = 0;
  const lane = async () => {
    while (next < entries.length) {
      signal?.throwIfAborted();
      const [key, body] = entries[next++]!;
      await s3.putObject(LAB_BUCKET, key, body);
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
}

/** The messages for the queue (pointers with their size attribute) and those for the topic. */
export function splitForSending(
  outgoing: readonly OutgoingMessage[],
  plan: ReadonlyArray<Wrapped | undefined>,
): {
  queue: OutgoingMessage[];
  topic: Array<{ body: string; attributes: Record<string, string> }>;
} {
  const queue: OutgoingMessage[] = [];
  const topic: Array<{ body: string; attributes: Record<string, string> }> = [];
  outgoing.forEach((m, i) => {
    const w = plan[i];
    if (!w) return void queue.push(m);
    const wire = wireForm(m, w);
    if (w.sns) topic.push(wire);
    else queue.push({ ...m, body: wire.body, attributes: wire.attributes });
  });
  return { queue, topic };
}

/** Publishes to the topic, 8 at a time; `onSent` after each with the running total. */
export async function publishAll(
  s3: SnsS3Admin,
  topicArn: string,
  items: ReadonlyArray<{ body: string; attributes: Record<string, string> }>,
  onSent: (sent: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0, sent = 0;
  const lane = async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const item = items[next++]!;
      await s3.publish(topicArn, item.body, item.attributes);
      onSent(++sent);
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
}

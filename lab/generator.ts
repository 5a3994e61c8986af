/**
 * The message set of a lab run, deterministic from the seed: valid messages in
 * every shape docs/messages.md allows (string or integer user ids, numeric
 * or ISO timestamps with a zone), poison bodies of every kind it forbids,
 * producer duplicates, unknown users and a hot-user skew. Each valid message
 * records what the validator must receive for it.
 */
import type { Dataset } from "./dataset.ts";
import { createRng, deriveSeed, type Rng } from "./prng.ts";
import type { SqsAdmin } from "./sqs_admin.ts";
import { sleep as defaultSleep } from "../src/lib/clock.ts";

/** What the validator expects for one valid message. */
export interface ExpectedMessage {
  message_id: string;
  /** the user id as the output must carry it (always a string) */
  user_id: string;
  /** epoch seconds exactly as the output must carry them */
  event_ts: number;
  payload: Record<string, unknown>;
  /** false for an unknown user: the output has user null and enrichment.status "unknown_user" */
  known: boolean;
  /** FIFO runs: the message group (one per user) and the message's place in it, from 1 */
  group?: string;
  seq?: number;
}

/** One SendMessage body, in send order. */
export interface OutgoingMessage {
  body: string;
  /** the message_id of a valid message (undefined for poison) */
  messageId?: string;
  /** the poison kind, e.g. "invalid_json", for poison bodies */
  poisonKind?: string;
  /** true for the second copy of a producer duplicate */
  duplicate: boolean;
  /** FIFO runs: its MessageGroupId */
  group?: string;
  /** String (Number for digits) message attributes to send with it, e.g. ExtendedPayloadSize */
  attributes?: Record<string, string>;
  /** `--trace`: the producer's W3C traceparent, sent as a message attribute */
  traceparent?: string;
}

export interface GeneratorOptions {
  dataset: Dataset;
  /** distinct messages (valid + poison), not counting producer duplicates */
  messages: number;
  /** default 1 */
  seed?: number;
  /** share of poison bodies, default 0.02 */
  poisonShare?: number;
  /** share of valid messages the producer sends twice, default 0.01 */
  duplicateShare?: number;
  /** share of valid messages for unknown users, default 0.01 */
  unknownShare?: number;
  /** share of messages on the hot users, default 0.2 */
  hotShare?: number;
  /** how many hot users, default 1% of the known users */
  hotUsers?: number;
  /** a FIFO queue: each message in its user's group, valid ones numbered in send order */
  fifo?: boolean;
  /** FIFO runs: this many message groups, users spread over them; default one per user */
  groups?: number;
}

/** A generated run: what to send and what must come out. */
export interface MessageSet {
  outgoing: OutgoingMessage[];
  /** by message_id, valid messages only */
  expected: Map<string, ExpectedMessage>;
  /** poison bodies, byte for byte, once each */
  poisonBodies: string[];
  valid: number;
  poison: number;
  producerDuplicates: number;
  /** the hot users' ids */
  hot: readonly string[];
}

const BASE_TS = 1_735_689_600; // 2025-01-01T00:00:00Z

/** Builds the message set; the same options always give the same bodies in the same order. */
export function generateMessages(options: GeneratorOptions): MessageSet {
  const { dataset, messages } = options;
  const seed = options.seed ?? 1;
  const rng = createRng(deriveSeed(seed, "generator"));
  const poison = Math.min(messages, Math.round(messages * (options.poisonShare ?? 0.02)));
  const valid = messages - poison;
  const unknownShare = options.unknownShare ?? 0.01;
  const hotShare = options.hotShare ?? 0.2;
  const hotCount = options.hotUsers ?? Math.max(1, Math.floor(dataset.knownIds.length / 100));
  const hot = dataset.knownIds.slice(0, hotCount);

  const expected = new Map<string, ExpectedMessage>();
  const firsts: OutgoingMessage[] = [];
  let unknownSeq = 0;
  for (let i = 0; i < valid; i++) {
    const messageId = `m-${seed}-${i.toString().padStart(6, "0")}`;
    let userId: string;
    let known = true;
    if (rng.chance(unknownShare)) {
      userId = dataset.unknownId(unknownSeq++);
      known = false;
    } else if (rng.chance(hotShare)) {
      userId = rng.pick(hot);
    } else {
      userId = rng.pick(dataset.knownIds);
    }
    const { wire: eventWire, expected: eventTs } = makeEventTs(rng);
    const payload = makePayload(rng, i);
    // Integers only where the string has no leading zero and the number stays the same string.
    const userWire = /^[1-9]\d{0,14}$/.test(userId) && rng.chance(0.3) ? Number(userId) : userId;
    const doc: Record<string, unknown> = {
      message_id: messageId,
      user_id: userWire,
      event_ts: eventWire,
      payload,
    };
    // Unknown top-level fields must be ignored by the worker (docs/messages.md).
    if (rng.chance(0.1)) doc.schema_version = rng.int(1, 3);
    if (rng.chance(0.05)) doc.source = { producer: "lab", host: "gen-1" };
    expected.set(messageId, {
      message_id: messageId,
      user_id: userId,
      event_ts: eventTs,
      payload,
      known,
    });
    firsts.push({ body: JSON.stringify(doc), messageId, duplicate: false });
  }
  const poisonBodies: string[] = [];
  for (let i = 0; i < poison; i++) {
    const { kind, body } = makePoison(rng, i, seed);
    poisonBodies.push(body);
    firsts.push({ body, poisonKind: kind, duplicate: false });
  }
  rng.shuffle(firsts);
  if (options.fifo) {
    const groupOf = groupNamer(options.groups);
    numberGroups(firsts, expected, () => groupOf(rng.pick(dataset.knownIds)), groupOf);
  }

  // Producer duplicates: the same body again, a little later in the stream, as a producer retry would.
  const dupCount = Math.round(valid * (options.duplicateShare ?? 0.01));
  const validPositions = firsts.flatMap((m, idx) => (m.messageId ? [idx] : []));
  const dupSources = new Set(rng.shuffle(validPositions).slice(0, dupCount));
  const outgoing: OutgoingMessage[] = [];
  const pendingCopies: Array<{ at: number; msg: OutgoingMessage }> = [];
  firsts.forEach((m, idx) => {
    outgoing.push(m);
    if (dupSources.has(idx)) {
      pendingCopies.push({ at: idx + rng.int(1, 50), msg: { ...m, duplicate: true } });
    }
    for (let k = pendingCopies.length - 1; k >= 0; k--) {
      const copy = pendingCopies[k]!;
      if (copy.at <= idx) {
        outgoing.push(copy.msg);
        pendingCopies.splice(k, 1);
      }
    }
  });
  for (const copy of pendingCopies) outgoing.push(copy.msg);

  return { outgoing, expected, poisonBodies, valid, poison, producerDuplicates: dupCount, hot };
}

/**
 * The same set without the hot users' messages (`--without-hot`): the quiet traffic alone, byte
 * for byte and in the same order, to compare the quiet users' latency with and without the hot.
 */
export function withoutHot(set: MessageSet): MessageSet {
  const hot = new Set(set.hot);
  const isHot = (m: OutgoingMessage) =>
    m.messageId !== undefined && hot.has(set.expected.get(m.messageId)?.user_id ?? "");
  const expected = new Map([...set.expected].filter(([, e]) => !hot.has(e.user_id)));
  const outgoing = set.outgoing.filter((m) => !isHot(m));
  return {
    ...set,
    outgoing,
    expected,
    valid: expected.size,
    producerDuplicates: outgoing.filter((m) => m.duplicate).length,
  };
}

/**
 * FIFO runs: each message in the group of its user (poison in a random user's), and each valid
 * one numbered in send order within its group (`payload.fifo_seq`), so the judge can tell an
 * inversion. Its body is written again with the number.
 */
function numberGroups(
  outgoing: OutgoingMessage[],
  expected: Map<string, ExpectedMessage>,
  someGroup: () => string,
  groupOf: (userId: string) => string,
): void {
  const next = new Map<string, number>();
  for (const m of outgoing) {
    const e = m.messageId === undefined ? undefined : expected.get(m.messageId);
    if (!e) {
      m.group = someGroup();
      continue;
    }
    const group = groupOf(e.user_id);
    const seq = (next.get(group) ?? 0) + 1;
    next.set(group, seq);
    Object.assign(e, { group, seq });
    e.payload.fifo_seq = seq;
    const doc = JSON.parse(m.body) as { payload: Record<string, unknown> };
    doc.payload.fifo_seq = seq;
    m.body = JSON.stringify(doc);
    m.group = group;
  }
}

/** A user's message group: its own, or one of `groups` by a hash of the id. */
function groupNamer(groups: number | undefined): (userId: string) => string {
  if (!groups) return (userId) => `g-${userId}`;
  return (userId) => {
    let h = 0;
    for (let i = 0; i < userId.length; i++) h = (h * 31 + userId.charCodeAt(i)) >>> 0;
    return `g-${h % groups}`;
  };
}

/** A valid event_ts on the wire and the epoch seconds the output must carry. */
function makeEventTs(rng: Rng): { wire: number | string; expected: number } {
  const seconds = BASE_TS + rng.int(0, 60 * 86_400);
  const roll = rng.next();
  if (roll < 0.4) return { wire: seconds, expected: seconds };
  if (roll < 0.55) {
    // Fractional seconds are copied unchanged, not floored.
    const v = seconds + rng.int(1, 999) / 1000;
    return { wire: v, expected: v };
  }
  const iso = new Date(seconds * 1000).toISOString(); // ...Z with .000 millis
  if (roll < 0.7) return { wire: iso.replace(".000Z", "Z"), expected: seconds };
  if (roll < 0.8) {
    // Milliseconds are floored away.
    return {
      wire: iso.replace(".000Z", `.${rng.int(1, 999).toString().padStart(3, "0")}Z`),
      expected: seconds,
    };
  }
  // An offset: the same instant written in another zone.
  const offsetMin = rng.pick([120, -300, 330, -570, 0, 60]);
  const local = new Date((seconds + offsetMin * 60) * 1000).toISOString().slice(0, 19);
  const sign = offsetMin < 0 ? "-" : "+";
  const abs = Math.abs(offsetMin);
  const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${
    String(abs % 60).padStart(2, "0")
  }`;
  return { wire: `${local}${zone}`, expected: seconds };
}

/**
 * A payload that must pass through unchanged: nesting, unicode, floats, nulls, awkward keys.
 * Only BMP characters: fauxqs 2.4.1 rejects astral ones (emoji) that real SQS accepts.
 */
function makePayload(rng: Rng, i: number): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    event: rng.pick(["click", "view", "purchase", "signup", "logout"]),
    seq: i,
    amount: Math.round(rng.next() * 1e6) / 100,
    tags: ["a", "b", "c"].filter(() => rng.chance(0.5)),
  };
  if (rng.chance(0.2)) {
    payload.note = rng.pick([
      "héllo wörld",
      "日本語テキスト",
      "symbols ✓★☃€",
      'quote " and \\ backslash',
      "line\nbreak\ttab",
    ]);
  }
  if (rng.chance(0.1)) {
    payload.nested = { level1: { level2: { level3: [1, { x: null }, [true, false]] } } };
  }
  if (rng.chance(0.05)) payload.tiny = 1e-7;
  if (rng.chance(0.05)) payload.big = 9_007_199_254_740_991;
  if (rng.chance(0.03)) payload.empty = {};
  if (rng.chance(0.02)) payload.constructor_name = "Object"; // harmless look-alike of a risky key
  if (rng.chance(0.01)) {
    let deep: Record<string, unknown> = { leaf: i };
    for (let d = 0; d < 60; d++) deep = { d: deep };
    payload.deep = deep;
  }
  return payload;
}

const POISON_KINDS = [
  "invalid_json",
  "truncated_json",
  "not_object_array",
  "not_object_string",
  "not_object_number",
  "missing_message_id",
  "empty_message_id",
  "numeric_message_id",
  "missing_user_id",
  "negative_user_id",
  "float_user_id",
  "unsafe_user_id",
  "bool_user_id",
  "empty_user_id",
  "missing_event_ts",
  "zoneless_iso",
  "numeric_string_ts",
  "garbage_ts",
  "infinite_ts",
  "null_ts",
  "payload_array",
  "payload_null",
  "payload_string_huge",
  "missing_payload",
  "deep_nesting",
  "proto_keys",
] as const;

/** One poison body; each embeds its index so bodies are unique and can be matched in the DLQ. */
function makePoison(rng: Rng, i: number, seed: number): { kind: string; body: string } {
  const kind = POISON_KINDS[i % POISON_KINDS.length]!;
  const id = `p-${seed}-${i}`;
  const base = () => ({ message_id: id, user_id: "123", event_ts: BASE_TS + i, payload: { i } });
  const without = (key: string) => {
    const o: Record<string, unknown> = base();
    delete o[key];
    return JSON.stringify(o);
  };
  const withField = (key: string, value: unknown) => JSON.stringify({ ...base(), [key]: value });
  switch (kind) {
    case "invalid_json":
      return { kind, body: `{message_id: '${id}', user_id: 123}` };
    case "truncated_json":
      return { kind, body: JSON.stringify(base()).slice(0, 30 + rng.int(0, 10)) };
    case "not_object_array":
      return { kind, body: JSON.stringify([id, "123", BASE_TS, {}]) };
    case "not_object_string":
      return { kind, body: JSON.stringify(`message ${id}`) };
    case "not_object_number":
      return { kind, body: String(1_000_000 + i) };
    case "missing_message_id":
      return { kind, body: JSON.stringify({ id, user_id: "123", event_ts: BASE_TS, payload: {} }) };
    case "empty_message_id":
      return { kind, body: JSON.stringify({ ...base(), message_id: "", note: id }) };
    case "numeric_message_id":
      return { kind, body: JSON.stringify({ ...base(), message_id: 7_000_000 + i }) };
    case "missing_user_id":
      return { kind, body: without("user_id") };
    case "negative_user_id":
      return { kind, body: withField("user_id", -1 - i) };
    case "float_user_id":
      return { kind, body: withField("user_id", 12.5 + i) };
    case "unsafe_user_id":
      return { kind, body: withField("user_id", 2 ** 53 + 2 * (i + 1)) };
    case "bool_user_id":
      return { kind, body: withField("user_id", true) };
    case "empty_user_id":
      return { kind, body: withField("user_id", "") };
    case "missing_event_ts":
      return { kind, body: without("event_ts") };
    case "zoneless_iso":
      return { kind, body: withField("event_ts", "2025-01-01T00:00:00") };
    case "numeric_string_ts":
      return { kind, body: withField("event_ts", String(BASE_TS + i)) };
    case "garbage_ts":
      return { kind, body: withField("event_ts", "yesterday at noon") };
    case "infinite_ts":
      // 1e400 is valid JSON that parses to Infinity: not a finite number.
      return { kind, body: JSON.stringify(base()).replace(/"event_ts":\d+/, '"event_ts":1e400') };
    case "null_ts":
      return { kind, body: withField("event_ts", null) };
    case "payload_array":
      return { kind, body: withField("payload", [1, 2, 3]) };
    case "payload_null":
      return { kind, body: withField("payload", null) };
    case "payload_string_huge":
      // 200 KB: large but far below the 1 MiB limit that the DLQ copy must also fit.
      return { kind, body: withField("payload", "x".repeat(200_000)) };
    case "missing_payload":
      return { kind, body: without("payload") };
    case "deep_nesting":
      // Deeply nested arrays: valid JSON, not an object, and hard on recursive code.
      return { kind, body: `${"[".repeat(5000)}"${id}"${"]".repeat(5000)}` };
    case "proto_keys":
      // The fields exist only under __proto__; a parser that merges objects naively would see them.
      return { kind, body: `{"__proto__":${JSON.stringify(base())},"note":"${id}"}` };
  }
}

export interface SendOptions {
  sqs: SqsAdmin;
  queueUrl: string;
  outgoing: readonly OutgoingMessage[];
  /** messages per second; 0 = as fast as possible, default 0 */
  rate?: number;
  /** concurrent SendMessageBatch calls when rate is 0, default 8 */
  concurrency?: number;
  signal?: AbortSignal;
  /** called after each successful batch with the running total */
  onSent?: (sent: number) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Largest sum of bodies per SendMessageBatch call (SQS allows 1 MiB per call). */
const MAX_BATCH_BYTES = 900_000;

/** Groups messages into SendMessageBatch calls: at most 10 entries and 900 KB each. */
export function toBatches(outgoing: readonly OutgoingMessage[]): OutgoingMessage[][] {
  const batches: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of outgoing) {
    const size = new TextEncoder().encode(m.body).length;
    if (current.length === 10 || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Sends the messages with SendMessageBatch, retrying failed entries, at a rate or all at once. */
export async function sendMessages(options: SendOptions): Promise<number> {
  const rate = options.rate ?? 0;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const batches = toBatches(options.outgoing);
  let sent = 0;
  let dedupSeq = 0;
  // A FIFO queue orders a group by arrival: one batch at a time keeps the send order.
  const fifo = options.outgoing.some((m) => m.group !== undefined);
  const sendOne = async (batch: OutgoingMessage[]) => {
    let entries = batch.map((m, idx) => ({
      Id: String(idx),
      MessageBody: m.body,
      // A copy of a producer duplicate is another message to SQS: a deduplication id of its own.
      ...(m.group ? { MessageGroupId: m.group, MessageDeduplicationId: `d-${dedupSeq++}` } : {}),
      ...(m.attributes || m.traceparent
        ? {
          MessageAttributes: sqsAttributes({
            ...m.attributes,
            ...(m.traceparent ? { traceparent: m.traceparent } : {}),
          }),
        }
        : {}),
    }));
    for (let attempt = 1; entries.length > 0; attempt++) {
      options.signal?.throwIfAborted();
      const result = await options.sqs.call<{ Failed?: Array<{ Id: string; Message?: string }> }>(
        "SendMessageBatch",
        { QueueUrl: options.queueUrl, Entries: entries },
      );
      const failed = new Set((result.Failed ?? []).map((f) => f.Id));
      sent += entries.length - failed.size;
      if (failed.size > 0 && attempt >= 5) {
        throw new Error(
          `SendMessageBatch kept failing: ${JSON.stringify(result.Failed).slice(0, 300)}`,
        );
      }
      entries = entries.filter((e) => failed.has(e.Id));
      if (entries.length > 0) await sleep(50 * attempt, options.signal);
    }
    options.onSent?.(sent);
  };
  if (rate > 0) {
    // Paced by the clock, not by summed sleeps, so slow calls do not lower the rate.
    const start = now();
    let queued = 0;
    const inFlight = new Set<Promise<void>>();
    // A failed batch is held here until the loop looks: never a rejection nobody awaits.
    let failure: { error: unknown } | undefined;
    for (const batch of batches) {
      const due = start + (queued / rate) * 1000;
      const wait = due - now();
      if (wait > 0) await sleep(wait, options.signal);
      if (failure) break;
      queued += batch.length;
      const p = sendOne(batch).catch((error) => void (failure ??= { error }))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= (fifo ? 1 : 16)) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure) throw failure.error;
  } else {
    let next = 0;
    const lane = async () => {
      while (next < batches.length) await sendOne(batches[next++]!);
    };
    await Promise.all(Array.from({ length: fifo ? 1 : options.concurrency ?? 8 }, lane));
  }
  return sent;
}

/** String attributes in SendMessage's form; digits only are a Number. */
function sqsAttributes(attributes: Record<string, string>) {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      { DataType: /^\d+$/.test(value) ? "Number" : "String", StringValue: value },
    ]),
  );
}

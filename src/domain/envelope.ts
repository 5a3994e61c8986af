/**
 * What a body is before the input message is read (docs/payloads.md): an SNS notification
 * envelope, an Amazon SQS Extended Client S3 pointer (in its current or legacy form, also inside
 * an envelope), or the message itself. Pure: the S3 fetch is the flow's (flow/payloads.ts).
 */

/** A message attribute as SQS delivers it. */
export interface MessageAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}
export type MessageAttributes = Record<string, MessageAttribute>;

/** SNS_ENVELOPE and S3_PAYLOADS: `auto` is true. */
export interface UnwrapSettings {
  sns: boolean;
  s3: boolean;
}

/** Where an extended client put the body. */
export interface S3Pointer {
  bucket: string;
  key: string;
  /** ExtendedPayloadSize / SQSLargePayloadSize, when it is a byte count. */
  declaredBytes: number | undefined;
}

export type Unwrapped =
  /** Nothing to unwrap: the SQS body is the message. */
  | { kind: "plain" }
  /** The envelope's `Message` is the message. */
  | { kind: "body"; body: string; attributes: MessageAttributes }
  | { kind: "pointer"; pointer: S3Pointer; attributes: MessageAttributes; enveloped: boolean }
  | { kind: "poison"; reason: string; attributes: MessageAttributes };

/** The Java 2.x, Python and other ports' marker of a pointer: the first element of a pair. */
export const POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer";
/** The message attributes the extended clients mark a pointer with (new name, then legacy). */
export const SIZE_ATTRIBUTES = ["ExtendedPayloadSize", "SQSLargePayloadSize"] as const;

const SPACE = 32, TAB = 9, LF = 10, CR = 13, BRACE = 123, BRACKET = 91, QUOTE = 34;

/** The index of the first character at or after `at` that is not JSON whitespace. */
function skipSpace(text: string, at: number): number {
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i++;
  }
}

/**
 * Whether a body may be wrapped, read from its first characters only (no allocation): a JSON
 * array (a pointer pair), an object whose first key is `Type` (SNS writes it first), or any
 * body marked with a size attribute (a legacy pointer). A plain message is none of these.
 */
export function mayBeWrapped(body: string, attributes: MessageAttributes): boolean {
  const first = skipSpace(body, 0);
  const c = body.charCodeAt(first);
  if (c === BRACKET) return true;
  if (attributes.ExtendedPayloadSize !== undefined) return true;
  if (attributes.SQSLargePayloadSize !== undefined) return true;
  if (c !== BRACE) return false;
  const key = skipSpace(body, first + 1);
  return body.charCodeAt(key) === QUOTE && body.startsWith('Type"', key + 1);
}

/**
 * A body that failed as a message but may still be an envelope whose keys came in another order
 * (a producer re-serialised it): asked only of poison, so it costs a valid message nothing.
 */
export function mayBeEnvelope(body: string): boolean {
  return body.includes('"Notification"') && body.includes('"TopicArn"');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An SNS notification: `Type` "Notification", a string `Message`, `MessageId` and `TopicArn`. */
function envelopeOf(data: unknown): Record<string, unknown> | undefined {
  if (!isRecord(data) || data.Type !== "Notification") return undefined;
  const { Message, MessageId, TopicArn } = data;
  if (typeof Message !== "string" || typeof MessageId !== "string") return undefined;
  return typeof TopicArn === "string" ? data : undefined;
}

/**
 * The envelope's `MessageAttributes` (`{"Type": "String", "Value": …}`) as SQS would deliver
 * them, under the SQS message's own (which win on a clash).
 */
export function envelopeAttributes(
  envelope: Record<string, unknown>,
  own: MessageAttributes,
): MessageAttributes {
  const given = envelope.MessageAttributes;
  if (!isRecord(given)) return own;
  const out: MessageAttributes = {};
  for (const name of Object.keys(given)) {
    const value = given[name];
    if (!isRecord(value) || typeof value.Type !== "string" || typeof value.Value !== "string") {
      continue;
    }
    out[name] = value.Type.startsWith("Binary")
      ? { DataType: value.Type, BinaryValue: value.Value }
      : { DataType: value.Type, StringValue: value.Value };
  }
  return { ...out, ...own };
}

/** The declared size of a pointed-to object, when an attribute says it as a byte count. */
function declaredBytes(attributes: MessageAttributes): number | undefined {
  for (const name of SIZE_ATTRIBUTES) {
    const text = attributes[name]?.StringValue;
    if (text !== undefined && /^\d{1,15}$/.test(text.trim())) return Number(text);
  }
  return undefined;
}

function isMarked(attributes: MessageAttributes): boolean {
  return SIZE_ATTRIBUTES.some((name) => attributes[name] !== undefined);
}

/**
 * The pointer a parsed body is, its problem when it is a broken one, or undefined when it is
 * none: the pair `[POINTER_CLASS, {s3BucketName, s3Key}]`, or the legacy object (only when a
 * size attribute marks it, as the Java 1.x client does).
 */
function pointerOf(
  data: unknown,
  attributes: MessageAttributes,
): S3Pointer | { problem: string } | undefined {
  let fields: unknown;
  if (Array.isArray(data)) {
    if (data[0] !== POINTER_CLASS) return undefined;
    fields = data[1];
  } else if (isRecord(data) && "s3BucketName" in data && isMarked(attributes)) fields = data;
  else return undefined;
  if (!isRecord(fields)) return { problem: "S3 pointer without its {s3BucketName, s3Key} object" };
  const { s3BucketName: bucket, s3Key: key } = fields;
  if (typeof bucket !== "string" || bucket === "" || typeof key !== "string" || key === "") {
    return { problem: "S3 pointer without a non-empty string s3BucketName and s3Key" };
  }
  return { bucket, key, declaredBytes: declaredBytes(attributes) };
}

/** `s3://bucket/key`, cut so a reason still fits the DLQ's 256 characters. */
export function s3Location(pointer: Pick<S3Pointer, "bucket" | "key">): string {
  const text = `s3://${pointer.bucket}/${pointer.key}`;
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

/** The pointer a parsed SQS body or envelope Message is, a broken one as poison. */
function pointerStep(
  data: unknown,
  attributes: MessageAttributes,
  settings: UnwrapSettings,
  enveloped: boolean,
): Unwrapped | undefined {
  const found = pointerOf(data, attributes);
  if (found === undefined) return undefined;
  if ("problem" in found) return { kind: "poison", reason: found.problem, attributes };
  if (!settings.s3) {
    const reason = `body is an S3 pointer to ${s3Location(found)} and S3_PAYLOADS=off`;
    return { kind: "poison", reason, attributes };
  }
  return { kind: "pointer", pointer: found, attributes, enveloped };
}

/**
 * Unwraps a body, at most once each: the SNS envelope (when `settings.sns`), then the S3 pointer,
 * in the SQS body or in the envelope's Message. `plain` when there is nothing to unwrap.
 */
export function unwrapBody(
  body: string,
  own: MessageAttributes,
  settings: UnwrapSettings,
): Unwrapped {
  const data = parseJson(body);
  const envelope = settings.sns ? envelopeOf(data) : undefined;
  if (envelope === undefined) return pointerStep(data, own, settings, false) ?? PLAIN;
  const attributes = envelopeAttributes(envelope, own);
  const inner = envelope.Message as string;
  const first = inner.charCodeAt(skipSpace(inner, 0));
  // Only a JSON array or object can be a pointer: the inner message is parsed once, later.
  const maybePointer = first === BRACKET || (first === BRACE && isMarked(attributes));
  const pointer = maybePointer
    ? pointerStep(parseJson(inner), attributes, settings, true)
    : undefined;
  return pointer ?? { kind: "body", body: inner, attributes };
}

const PLAIN: Unwrapped = { kind: "plain" };

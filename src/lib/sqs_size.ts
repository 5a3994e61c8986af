/**
 * A message's size as SQS counts it against its limits: the body plus, per message attribute,
 * its name, data type and value, in UTF-8 bytes. One message may hold 1 MiB, and so may all the
 * entries of one SendMessageBatch together (SQS answers `BatchRequestTooLong` beyond that).
 */

/** The limit for one message, and for the sum of a SendMessageBatch's entries. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** A message attribute as SQS carries it; a plain string is a String attribute. */
export type SizedAttribute = string | {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
};

/** UTF-8 length of `text` without encoding it (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** The bytes one attribute adds to a message. A BinaryValue counts as its base64 text (an upper bound). */
export function attributeBytes(name: string, value: SizedAttribute): number {
  if (typeof value === "string") return utf8Bytes(name) + "String".length + utf8Bytes(value);
  return utf8Bytes(name) + utf8Bytes(value.DataType) + utf8Bytes(value.StringValue ?? "") +
    utf8Bytes(value.BinaryValue ?? "");
}

/** Body plus every attribute, in bytes, as SQS counts them. */
export function messageBytes(body: string, attributes: Record<string, SizedAttribute>): number {
  let size = utf8Bytes(body);
  for (const [name, value] of Object.entries(attributes)) size += attributeBytes(name, value);
  return size;
}

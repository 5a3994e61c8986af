/**
 * What SQS and DynamoDB share as AWS JSON-protocol services: the x-amz-date stamp, the
 * error `__type` code, clock-skew answers, and error bodies that may be empty or not JSON.
 */

/** `20261128T210000Z`, as SigV4 wants it. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

/** "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist" (some services append ":url"). */
export function shortCode(type: unknown): string {
  if (typeof type !== "string" || type === "") return "";
  const afterHash = type.slice(type.lastIndexOf("#") + 1);
  return afterHash.split(":")[0] ?? "";
}

/** The answer says our clock is off: sign again with the server's Date. */
export function isSkewError(code: string, message: string): boolean {
  if (code === "RequestTimeTooSkewed" || code === "RequestExpired") return true;
  if (code === "SignatureDoesNotMatch" || code === "InvalidSignatureException") {
    return /signature expired|expired|not yet current|skew/i.test(message);
  }
  return false;
}

/** A JSON object body; `{}` for an empty one (void actions), undefined when not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A small DynamoDB client for the JSON 1.0 protocol (`X-Amz-Target: DynamoDB_20120810.<Action>`),
 * signed with SigV4 (service `dynamodb`, adapters/sigv4.ts) through an injected `fetch`, like the SQS
 * client. Only the actions the idempotency store and the fleet rate limit need. It does not retry (except once after
 * a clock-skew or an ExpiredToken answer): the store decides what a failure means.
 */
import type { Clock } from "../lib/clock.ts";
import { type SharedTimeouts, timeoutsOf } from "../lib/shared_timeouts.ts";
import type { AwsCredentials } from "./aws_credentials.ts";
import {
  isExpiredToken,
  isSkewError,
  parseJsonObject,
  sendSignedJson,
  shortCode,
  transportResult,
} from "./aws_json_protocol.ts";
import { scrubAwsText } from "./aws_error_text.ts";
import { type Sha256, SigningKeyCache } from "./sigv4.ts";
import { AwsError, type AwsErrorArgs } from "../lib/errors.ts";
import { globalFetch } from "../lib/guarded_fetch.ts";

/** A DynamoDB attribute value in the wire format: `{S: "x"}`, `{N: "1"}`, ... */
export type AttributeValue = { S: string } | { N: string } | { BOOL: boolean } | {
  NULL: true;
};
export type Item = Record<string, AttributeValue>;

/** An error answer or a transport failure; `conditionFailed` for ConditionalCheckFailedException. */
export class DynamoDbError extends AwsError {
  override name = "DynamoDbError";
  constructor(...args: AwsErrorArgs) {
    super("DynamoDB", (status) => status === 0 || status >= 500, ...args);
  }

  /** The condition of a conditional write did not hold: a fact about the item, not a failure. */
  get conditionFailed(): boolean {
    return this.code === "ConditionalCheckFailedException";
  }
}

/** Codes that mean "slow down" (HTTP 400 on DynamoDB, yet transient). */
const THROTTLING_CODES = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "LimitExceededException",
  "TransactionConflictException",
]);

export interface DynamoDbClientOptions {
  region: string;
  /** AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL, else https://dynamodb.<region>.amazonaws.com */
  endpoint?: string | undefined;
  credentials: () => Promise<AwsCredentials>;
  /** An ExpiredTokenException for `used`: the request is signed once more after this. */
  credentialsExpired?: (used: AwsCredentials) => void;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** The hasher requests are signed with (sigv4.ts). Default @noble/hashes. */
  sha256?: Sha256;
  /** Signing dates (its wall clock), durations and request timeouts. */
  clock: Clock;
  /** Per request, default 5000 ms. */
  timeoutMs?: number;
  /** After every request: action, result ("ok", the error code, "timeout", "network", "aborted"), ms. */
  onRequest?: (action: string, result: string, durationMs: number) => void;
}

/** Parameters shared by the conditional writes. */
export interface Condition {
  conditionExpression?: string;
  expressionAttributeNames?: Record<string, string>;
  expressionAttributeValues?: Item;
}

export class DynamoDbClient {
  readonly #o: DynamoDbClientOptions;
  readonly #endpoint: string;
  readonly #fetch: typeof fetch;
  readonly #timeouts: SharedTimeouts;
  readonly #signingKeyCache: SigningKeyCache;
  #clockOffsetMs = 0;

  constructor(options: DynamoDbClientOptions) {
    this.#o = options;
    this.#endpoint = options.endpoint ?? `https://dynamodb.${options.region}.amazonaws.com/`;
    this.#fetch = options.fetch ?? globalFetch;
    this.#signingKeyCache = new SigningKeyCache(options.sha256);
    this.#timeouts = timeoutsOf(options.clock);
  }

  /** PutItem; `returnOld` asks for the item it replaced (ReturnValues ALL_OLD). */
  async putItem(
    table: string,
    item: Item,
    condition: Condition = {},
    opts: { returnOld?: boolean; signal?: AbortSignal | undefined } = {},
  ): Promise<{ old: Item | undefined }> {
    const out = await this.#call("PutItem", {
      TableName: table,
      Item: item,
      ...conditionPayload(condition),
      ...(opts.returnOld ? { ReturnValues: "ALL_OLD" } : {}),
    }, opts.signal);
    return { old: asItem(out.Attributes) };
  }

  /** GetItem; undefined when there is no such item. */
  async getItem(
    table: string,
    key: Item,
    opts: { consistentRead?: boolean; signal?: AbortSignal | undefined } = {},
  ): Promise<Item | undefined> {
    const out = await this.#call("GetItem", {
      TableName: table,
      Key: key,
      ConsistentRead: opts.consistentRead ?? false,
    }, opts.signal);
    return asItem(out.Item);
  }

  /** UpdateItem; `returnNew` asks for the whole item as it is after the update (ALL_NEW). */
  async updateItem(
    table: string,
    key: Item,
    updateExpression: string,
    condition: Condition = {},
    signal?: AbortSignal,
    returnNew = false,
  ): Promise<Item | undefined> {
    const out = await this.#call("UpdateItem", {
      TableName: table,
      Key: key,
      UpdateExpression: updateExpression,
      ...conditionPayload(condition),
      ...(returnNew ? { ReturnValues: "ALL_NEW" } : {}),
    }, signal);
    return asItem(out.Attributes);
  }

  async deleteItem(
    table: string,
    key: Item,
    condition: Condition = {},
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#call(
      "DeleteItem",
      { TableName: table, Key: key, ...conditionPayload(condition) },
      signal,
    );
  }

  /** DescribeTable's `Table` object (KeySchema, AttributeDefinitions, TableStatus, ...). */
  async describeTable(table: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const out = await this.#call("DescribeTable", { TableName: table }, signal);
    const t = out.Table;
    return t !== null && typeof t === "object" ? t as Record<string, unknown> : {};
  }

  /** For the lab and tests: a pay-per-request table keyed by the string `id`. */
  async createTable(table: string): Promise<void> {
    await this.#call("CreateTable", {
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }, undefined);
  }

  async #call(
    action: string,
    payload: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    const body = JSON.stringify(payload);
    for (let attempt = 1;; attempt++) {
      const started = this.#o.clock.now();
      let status: number;
      let text: string;
      let headers: Headers;
      let keys: AwsCredentials;
      try {
        ({ status, text, headers, keys } = await this.#send(action, body, signal));
      } catch (error) {
        this.#report(action, transportResult(error), started);
        throw error;
      }
      const json = parseJsonObject(text);
      if (status >= 200 && status < 300 && json) {
        this.#report(action, "ok", started);
        return json;
      }
      const code = shortCode(json?.__type) || `Http${status}`;
      // InvalidSignatureException echoes the canonical request, session token included.
      const message = scrubAwsText(String(json?.message ?? json?.Message ?? text.slice(0, 2000)));
      this.#report(action, code, started);
      const date = Date.parse(headers.get("date") ?? "");
      if (attempt === 1 && isSkewError(code, message) && Number.isFinite(date)) {
        // Sign again with the server's idea of now; keep the offset for later requests.
        this.#clockOffsetMs = date - this.#o.clock.now();
        continue;
      }
      if (attempt === 1 && isExpiredToken(code) && this.#o.credentialsExpired) {
        // Rotated keys (a refreshed shared file, a new instance-role session): sign again.
        this.#o.credentialsExpired(keys);
        continue;
      }
      throw new DynamoDbError(action, code, status, message, {
        retriable: status >= 500 || THROTTLING_CODES.has(code),
      });
    }
  }

  #report(action: string, result: string, started: number): void {
    this.#o.onRequest?.(action, result, Math.max(0, this.#o.clock.now() - started));
  }

  #send(action: string, body: string, callerSignal: AbortSignal | undefined) {
    return sendSignedJson({
      service: "dynamodb",
      region: this.#o.region,
      endpoint: this.#endpoint,
      target: `DynamoDB_20120810.${action}`,
      body,
      credentials: this.#o.credentials,
      cache: this.#signingKeyCache,
      signedAtMs: this.#o.clock.now() + this.#clockOffsetMs,
      timeoutMs: this.#o.timeoutMs ?? 5000,
      timeouts: this.#timeouts,
      fetch: this.#fetch,
      signal: callerSignal,
      label: `DynamoDB ${action}`,
      fail: (code, status, message, cause) =>
        new DynamoDbError(action, code, status, message, { retriable: true, cause }),
    });
  }
}

/** The endpoint for DynamoDB from the environment's overrides, as the AWS SDKs resolve it. */
export function dynamoDbEndpoint(
  env: Record<string, string | undefined>,
  region: string,
): string {
  return env.AWS_ENDPOINT_URL_DYNAMODB || env.AWS_ENDPOINT_URL ||
    `https://dynamodb.${region}.amazonaws.com/`;
}

function conditionPayload(c: Condition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.conditionExpression) out.ConditionExpression = c.conditionExpression;
  if (c.expressionAttributeNames && Object.keys(c.expressionAttributeNames).length > 0) {
    out.ExpressionAttributeNames = c.expressionAttributeNames;
  }
  if (c.expressionAttributeValues && Object.keys(c.expressionAttributeValues).length > 0) {
    out.ExpressionAttributeValues = c.expressionAttributeValues;
  }
  return out;
}

function asItem(value: unknown): Item | undefined {
  return value !== null && typeof value === "object" && Object.keys(value).length > 0
    ? value as Item
    : undefined;
}

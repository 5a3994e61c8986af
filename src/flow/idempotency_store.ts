/**
 * The idempotency record in DynamoDB: one item per message_id,
 * written only with conditional requests so two workers never both own a
 * message. Each method is one request; what to do with the answer is decided
 * in domain/idempotency.ts and carried out by the gate.
 */
import {
  type AttributeValue,
  type DynamoDbClient,
  DynamoDbError,
  type Item,
} from "../adapters/dynamodb_client.ts";
import {
  CLAIM_CONDITION,
  type IdempotencyRecord,
  type RecordStatus,
} from "../domain/idempotency.ts";

/** The record operations the gate needs; DynamoDbStore is the real one, tests may fake it. */
export interface IdempotencyStore {
  /** PutItem under CLAIM_CONDITION: claimed (and whether a lapsed lock was taken over), or not. */
  claim(record: IdempotencyRecord, nowMs: number, signal?: AbortSignal): Promise<ClaimAnswer>;
  /** GetItem with ConsistentRead. */
  read(id: string, signal?: AbortSignal): Promise<IdempotencyRecord | undefined>;
  /** Pushes the lock's end; false when `owner` no longer holds it (fenced). */
  extend(
    id: string,
    owner: string,
    inProgressUntil: number,
    expiresAt: number,
    signal?: AbortSignal,
  ): Promise<boolean>;
  /** IN_PROGRESS → COMPLETED; false when `owner` no longer holds it. */
  complete(id: string, owner: string, expiresAt: number, signal?: AbortSignal): Promise<boolean>;
  /** Deletes the record so another copy may run; false when `owner` no longer holds it. */
  release(id: string, owner: string, signal?: AbortSignal): Promise<boolean>;
}

export type ClaimAnswer = { claimed: true; takeover: boolean } | { claimed: false };

export class DynamoDbStore implements IdempotencyStore {
  readonly #client: DynamoDbClient;
  readonly #table: string;

  constructor(client: DynamoDbClient, table: string) {
    this.#client = client;
    this.#table = table;
  }

  async claim(record: IdempotencyRecord, nowMs: number, signal?: AbortSignal) {
    try {
      const { old } = await this.#client.putItem(this.#table, toItem(record), {
        conditionExpression: CLAIM_CONDITION,
        expressionAttributeNames: { "#status": "status" },
        expressionAttributeValues: {
          ":now": n(Math.floor(nowMs / 1000)),
          ":now_ms": n(nowMs),
          ":in_progress": s("IN_PROGRESS"),
        },
      }, { returnOld: true, signal });
      // Replacing an IN_PROGRESS item means its owner's lock had lapsed: a takeover.
      return {
        claimed: true as const,
        takeover: old?.status !== undefined && text(old.status) === "IN_PROGRESS",
      };
    } catch (error) {
      if (error instanceof DynamoDbError && error.conditionFailed) {
        return { claimed: false as const };
      }
      throw error;
    }
  }

  async read(id: string, signal?: AbortSignal): Promise<IdempotencyRecord | undefined> {
    const item = await this.#client.getItem(this.#table, { id: s(id) }, {
      consistentRead: true,
      signal,
    });
    return item ? fromItem(item) : undefined;
  }

  extend(id: string, owner: string, until: number, expiresAt: number, signal?: AbortSignal) {
    return this.#ownerOnly(() =>
      this.#client.updateItem(
        this.#table,
        { id: s(id) },
        "SET in_progress_until = :until, expires_at = :expires",
        {
          conditionExpression: "#owner = :owner AND #status = :in_progress",
          expressionAttributeNames: { "#owner": "owner", "#status": "status" },
          expressionAttributeValues: {
            ":owner": s(owner),
            ":in_progress": s("IN_PROGRESS"),
            ":until": n(until),
            ":expires": n(expiresAt),
          },
        },
        signal,
      )
    );
  }

  complete(id: string, owner: string, expiresAt: number, signal?: AbortSignal) {
    return this.#ownerOnly(() =>
      this.#client.updateItem(
        this.#table,
        { id: s(id) },
        "SET #status = :completed, expires_at = :expires",
        {
          // COMPLETED by the same owner too: a retry after a timed-out success is not fenced.
          conditionExpression:
            "#owner = :owner AND (#status = :in_progress OR #status = :completed)",
          expressionAttributeNames: { "#owner": "owner", "#status": "status" },
          expressionAttributeValues: {
            ":owner": s(owner),
            ":in_progress": s("IN_PROGRESS"),
            ":completed": s("COMPLETED"),
            ":expires": n(expiresAt),
          },
        },
        signal,
      )
    );
  }

  release(id: string, owner: string, signal?: AbortSignal) {
    return this.#ownerOnly(() =>
      this.#client.deleteItem(this.#table, { id: s(id) }, {
        conditionExpression: "#owner = :owner AND #status = :in_progress",
        expressionAttributeNames: { "#owner": "owner", "#status": "status" },
        expressionAttributeValues: { ":owner": s(owner), ":in_progress": s("IN_PROGRESS") },
      }, signal)
    );
  }

  async #ownerOnly(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (error instanceof DynamoDbError && error.conditionFailed) return false;
      throw error;
    }
  }
}

/**
 * A table keyed by the string `id` alone (the idempotency table, or the rate table: `variable`
 * names it in the problems) is usable: it exists, is ACTIVE (or UPDATING) and has that key.
 * DescribeTable first; where the role may not describe it, a GetItem of a key no record has
 * says as much (a missing table, a refusal, a key the schema does not take).
 * Resolves to a list of problems, empty when it is fine; throws what says nothing about the
 * table (a timeout, throttling, a 5xx: ask again later). Startup and `check-config --probe`.
 */
export async function probeKeyedTable(
  client: DynamoDbClient,
  table: string,
  signal?: AbortSignal,
  variable = "IDEMPOTENCY_TABLE",
): Promise<string[]> {
  const name = JSON.stringify(table);
  let described: Record<string, unknown>;
  try {
    described = await client.describeTable(table, signal);
  } catch (error) {
    if (isCode(error, "ResourceNotFoundException")) {
      return [`${variable} ${name} does not exist`];
    }
    if (isTransient(error)) throw error;
    if (!isCode(error, "AccessDeniedException")) {
      return [`cannot describe ${variable} ${name}: ${(error as Error).message}`];
    }
    return await probeByGetItem(client, table, variable, signal);
  }
  return keySchemaProblems(table, described, variable);
}

/** The fallback probe: one GetItem by `id`. */
async function probeByGetItem(
  client: DynamoDbClient,
  table: string,
  variable: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const name = JSON.stringify(table);
  try {
    await client.getItem(table, { id: s(PROBE_ID) }, { signal });
    return [];
  } catch (error) {
    if (isCode(error, "ResourceNotFoundException")) {
      return [`${variable} ${name} does not exist`];
    }
    if (isTransient(error)) throw error;
    if (isCode(error, "ValidationException")) {
      return [
        `${variable} ${name} must have the key schema id (String, HASH) alone: ${
          (error as Error).message
        }`,
      ];
    }
    return [`cannot read ${variable} ${name}: ${(error as Error).message}`];
  }
}

/** The key the fallback probe reads: no message_id record has it (ids are not this long). */
const PROBE_ID = `sluice-probe:${"-".repeat(260)}`;

/** An answer that says nothing of the table itself: no answer, throttling, a server error. */
function isTransient(error: unknown): boolean {
  return !(error instanceof DynamoDbError) || error.retriable;
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof DynamoDbError && error.code === code;
}

/** What is wrong with a DescribeTable answer for our use; pure, tested row by row. */
export function keySchemaProblems(
  table: string,
  described: Record<string, unknown>,
  variable = "IDEMPOTENCY_TABLE",
): string[] {
  const problems: string[] = [];
  const keys = Array.isArray(described.KeySchema)
    ? described.KeySchema as Array<Record<string, unknown>>
    : [];
  const defs = Array.isArray(described.AttributeDefinitions)
    ? described.AttributeDefinitions as Array<Record<string, unknown>>
    : [];
  const hash = keys.find((k) => k.KeyType === "HASH");
  const type = defs.find((d) => d.AttributeName === "id")?.AttributeType;
  if (keys.length !== 1 || hash?.AttributeName !== "id" || type !== "S") {
    problems.push(
      `${variable} ${
        JSON.stringify(table)
      } must have the key schema id (String, HASH) alone; it has ${
        JSON.stringify(keys.map((k) => `${k.AttributeName}:${k.KeyType}`))
      }`,
    );
  }
  const status = described.TableStatus;
  if (status !== undefined && status !== "ACTIVE" && status !== "UPDATING") {
    problems.push(`${variable} ${JSON.stringify(table)} is ${String(status)}, not ACTIVE`);
  }
  return problems;
}

function toItem(r: IdempotencyRecord): Item {
  return {
    id: s(r.id),
    status: s(r.status),
    owner: s(r.owner),
    in_progress_until: n(r.inProgressUntil),
    expires_at: n(r.expiresAt),
    payload_hash: s(r.payloadHash),
  };
}

function fromItem(item: Item): IdempotencyRecord {
  return {
    id: text(item.id),
    status: (text(item.status) === "COMPLETED" ? "COMPLETED" : "IN_PROGRESS") as RecordStatus,
    owner: text(item.owner),
    inProgressUntil: Number(num(item.in_progress_until)),
    expiresAt: Number(num(item.expires_at)),
    payloadHash: text(item.payload_hash),
  };
}

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
function text(v: AttributeValue | undefined): string {
  return v && "S" in v ? v.S : "";
}
function num(v: AttributeValue | undefined): string {
  return v && "N" in v ? v.N : "0";
}

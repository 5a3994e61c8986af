/**
 * RATE_LIMIT_TABLE (docs/rate-limits.md): the fleet's shared window in DynamoDB, one item per
 * key (`id` = `rate#<key>`) holding a count per slice of wall-clock time (domain/rate_slices.ts).
 * A slot is one conditional UpdateItem: the current slice grows while it stays below the room
 * the earlier live slices leave, and only if those hold the counts this worker knows, so a
 * count another worker added after this one last looked fails the write instead of being
 * missed. The answer (ALL_NEW) is the item: the next take knows every slice without a read. A
 * failed condition costs one consistent GetItem and the take is planned again.
 */
import { type DynamoDbClient, DynamoDbError, type Item } from "../adapters/dynamodb_client.ts";
import type { RateLimit } from "../domain/rate_limit.ts";
import {
  nextSliceSlot,
  type SliceCounts,
  type SlicePlan,
  slicePlan,
  sliceStart,
} from "../domain/rate_slices.ts";
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { Clock } from "../lib/clock.ts";

/** The table's side of a take; DynamoDbRateStore is the real one, tests may fake it. */
export interface RateStore {
  /** Adds one to the plan's slice under its condition: the item's counts, or "conflict". */
  take(key: string, plan: SlicePlan, expiresAt: number, signal: AbortSignal): Promise<
    SliceCounts | "conflict"
  >;
  /** The item's counts, read consistently (empty when there is no item). */
  read(key: string, signal: AbortSignal): Promise<SliceCounts>;
}

/** A slot taken now, or the wall-clock time (ms) the known counts give the next one. */
export type FleetAnswer = { ok: true } | { ok: false; at: number };

/** Conflicting takes in a row before the taker waits for the next slice instead. */
const MAX_CONFLICTS = 3;
/** Keys whose counts are remembered; the least recently used beyond it are forgotten. */
const MAX_VIEWS = 10_000;

export interface FleetRateServices {
  clock: Pick<Clock, "now">;
  /** The table's breaker: every request passes it. */
  breaker: Pick<CircuitBreaker, "run">;
}

export class FleetRate {
  readonly #rate: RateLimit;
  readonly #store: RateStore;
  readonly #services: FleetRateServices;
  /** The counts last seen per key, in least-recently-used order. */
  readonly #views = new Map<string, SliceCounts>();

  constructor(rate: RateLimit, store: RateStore, services: FleetRateServices) {
    this.#rate = { limit: rate.limit, windowMs: rate.windowMs };
    this.#store = store;
    this.#services = services;
  }

  /**
   * One slot for `key` in the fleet's window, or when to ask again. Throws when the table
   * fails (or its breaker is open): the caller waits and asks again.
   */
  async take(key: string, signal: AbortSignal): Promise<FleetAnswer> {
    const { clock, breaker } = this.#services;
    let counts = this.#views.get(key) ?? EMPTY;
    for (let conflicts = 0;; conflicts++) {
      const now = clock.now();
      const plan = slicePlan(this.#rate, now, counts);
      if (!plan.free || conflicts === MAX_CONFLICTS) {
        this.#remember(key, counts);
        // Room lost to other workers three times running: the next slice, not a busy loop.
        const at = plan.free
          ? sliceStart(this.#rate, plan.slice + 1)
          : nextSliceSlot(this.#rate, now, counts);
        return { ok: false, at };
      }
      const expiresAt = Math.ceil((now + 2 * this.#rate.windowMs) / 1000);
      const answer = await breaker.run(() => this.#store.take(key, plan, expiresAt, signal));
      if (answer !== "conflict") {
        this.#remember(key, answer);
        return { ok: true };
      }
      counts = await breaker.run(() => this.#store.read(key, signal));
    }
  }

  #remember(key: string, counts: SliceCounts): void {
    this.#views.delete(key);
    this.#views.set(key, counts);
    if (this.#views.size > MAX_VIEWS) this.#views.delete(this.#views.keys().next().value!);
  }
}

const EMPTY: SliceCounts = new Map();

/** The store on DynamoDB, through the idempotency table's client. */
export class DynamoDbRateStore implements RateStore {
  readonly #client: DynamoDbClient;
  readonly #table: string;

  constructor(client: DynamoDbClient, table: string) {
    this.#client = client;
    this.#table = table;
  }

  async take(key: string, plan: SlicePlan, expiresAt: number, signal: AbortSignal) {
    const names: Record<string, string> = { "#c": sliceName(plan.slice), "#e": "expires_at" };
    const values: Item = { ":one": n(1), ":room": n(plan.room), ":exp": n(expiresAt) };
    const terms = ["(attribute_not_exists(#c) OR #c < :room)"];
    plan.live.forEach(([slice, count], i) => {
      names[`#p${i}`] = sliceName(slice);
      if (count === 0) return terms.push(`attribute_not_exists(#p${i})`);
      values[`:v${i}`] = n(count);
      terms.push(`#p${i} = :v${i}`);
    });
    const removed = plan.expired.map((slice, i) => (names[`#r${i}`] = sliceName(slice), `#r${i}`));
    const update = `ADD #c :one SET #e = :exp` +
      (removed.length > 0 ? ` REMOVE ${removed.join(", ")}` : "");
    try {
      const item = await this.#client.updateItem(
        this.#table,
        { id: { S: `rate#${key}` } },
        update,
        {
          conditionExpression: terms.join(" AND "),
          expressionAttributeNames: names,
          expressionAttributeValues: values,
        },
        signal,
        true,
      );
      return countsOf(item);
    } catch (error) {
      if (error instanceof DynamoDbError && error.conditionFailed) return "conflict" as const;
      throw error;
    }
  }

  async read(key: string, signal: AbortSignal): Promise<SliceCounts> {
    const item = await this.#client.getItem(this.#table, { id: { S: `rate#${key}` } }, {
      consistentRead: true,
      signal,
    });
    return countsOf(item);
  }
}

/** Slice `index` is the attribute `s<index>`. */
function sliceName(index: number): string {
  return `s${index}`;
}

function countsOf(item: Item | undefined): SliceCounts {
  const counts = new Map<number, number>();
  for (const [name, value] of Object.entries(item ?? {})) {
    if (name[0] !== "s" || !("N" in value)) continue;
    const index = Number(name.slice(1));
    if (Number.isInteger(index)) counts.set(index, Number(value.N));
  }
  return counts;
}

function n(value: number): { N: string } {
  return { N: String(value) };
}

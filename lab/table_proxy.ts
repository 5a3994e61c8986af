/**
 * A fault proxy in front of dynalite: the workers reach the idempotency table only
 * through it (AWS_ENDPOINT_URL_DYNAMODB), so the lab can make the table fail for a
 * window of time the way DynamoDB fails, and judge that no message pays for it
 * (docs/scaling.md, docs/failure-handling.md):
 * - `refuse`: every request is answered with an error and never reaches the table:
 *   AccessDeniedException, ResourceNotFoundException, ExpiredTokenException (HTTP
 *   400) or InternalServerError (HTTP 500), one kind or each in turn;
 * - `throttle`: a share of the requests is answered HTTP 400 with
 *   ProvisionedThroughputExceededException or ThrottlingException (the on-demand
 *   text), in turn;
 * - `slow`: every request reaches the table at once, its answer is held for a
 *   while: past the client's timeout the write has landed and the writer cannot
 *   know it, the hardest case a slow table makes.
 * The error bodies are DynamoDB's own shapes and texts.
 */
import { sleep } from "../src/lib/clock.ts";
import { type LocalServer, serveLocal } from "./local_server.ts";
import {
  answer,
  awsJsonError,
  clientGone,
  countRequest,
  forward,
  type ProxyCounts,
  type ProxyOptions,
  readBody,
} from "./forward.ts";
import { createRng } from "./prng.ts";

export type TableFaultKind = "refuse" | "throttle" | "slow";
export const TABLE_FAULT_KINDS: readonly TableFaultKind[] = ["refuse", "throttle", "slow"];

/** The errors `refuse` answers with. */
export type Refusal = "access-denied" | "not-found" | "expired-token" | "internal-error";
export const REFUSALS: readonly Refusal[] = [
  "access-denied",
  "not-found",
  "expired-token",
  "internal-error",
];

/** One fault, active for a window of time. */
export interface TableFault {
  kind: TableFaultKind;
  /** throttle: share of the requests refused, default 0.6 */
  share?: number;
  /** slow: how long each answer is held, ms; default 8000 */
  slowMs?: number;
  /** refuse: the error, default "mix" (each refusal in turn) */
  refusal?: Refusal | "mix";
}

export const DEFAULT_THROTTLE_SHARE = 0.6;
export const DEFAULT_SLOW_MS = 8000;

/** `target`: dynalite. */
export interface TableProxyOptions extends ProxyOptions {
  /** throttle draws in [0, 1), default a stream seeded with 1 */
  random?: () => number;
}

export interface TableProxyStats extends ProxyCounts {
  /** answered with a refusal, never forwarded */
  refused: number;
  /** answered with a throttling error, never forwarded */
  throttled: number;
  /** forwarded, the answer held */
  slowed: number;
}

export interface TableProxy extends LocalServer {
  stats(): TableProxyStats;
  /**
   * Applies `fault` from now for `ms` (until endFault() when undefined); replaces any other.
   * Returns when it ends (epoch ms, Infinity without `ms`).
   */
  startFault(fault: TableFault, ms?: number): number;
  endFault(): void;
}

/** Real DynamoDB answers, by refusal; `{action}` and `{table}` are filled in. */
const REFUSAL_ANSWERS: Record<Refusal, { status: number; type: string; text: string }> = {
  // AccessDeniedException capitalizes its message key, as DynamoDB sends it.
  "access-denied": {
    status: 400,
    type: "com.amazon.coral.service#AccessDeniedException",
    text: "User: arn:aws:sts::000000000000:assumed-role/sluice-lab/i-0123456789abcdef0 is not " +
      "authorized to perform: dynamodb:{action} on resource: " +
      "arn:aws:dynamodb:us-east-1:000000000000:table/{table} because no identity-based policy " +
      "allows the dynamodb:{action} action",
  },
  "not-found": {
    status: 400,
    type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
    text: "Requested resource not found",
  },
  "expired-token": {
    status: 400,
    type: "com.amazon.coral.service#ExpiredTokenException",
    text: "The security token included in the request is expired",
  },
  "internal-error": {
    status: 500,
    type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
    text: "Internal server error",
  },
};

const THROTTLE_ANSWERS = [
  {
    type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    text: "The level of configured provisioned throughput for the table was exceeded. " +
      "Consider increasing your provisioning level with the UpdateTable API.",
  },
  {
    type: "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    text: "Throughput exceeds the current capacity of your table or index. DynamoDB is " +
      "automatically scaling your table or index so please try again shortly. If exceptions " +
      "persist, check if you have a hot key: " +
      "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
  },
];

/** The answer a refusal gives to `action` on `table`. */
export function refusalAnswer(refusal: Refusal, action: string, table: string): Response {
  const a = REFUSAL_ANSWERS[refusal];
  const text = a.text.replaceAll("{action}", action).replaceAll("{table}", table);
  const key = refusal === "access-denied" ? "Message" : "message";
  return awsJsonError(a.status, { __type: a.type, [key]: text });
}

class FaultingProxy {
  readonly stats: TableProxyStats = {
    requests: 0,
    byAction: {},
    refused: 0,
    throttled: 0,
    slowed: 0,
  };
  readonly closing = new AbortController();
  fault: TableFault | undefined;
  until = Infinity;
  readonly now: () => number;
  readonly #random: () => number;
  readonly #fetch: typeof fetch;
  readonly #target: string;
  #seq = 0;

  constructor(options: TableProxyOptions) {
    this.now = options.now ?? Date.now;
    this.#random = options.random ?? createRng(1).next;
    this.#fetch = options.fetch ?? fetch;
    this.#target = options.target;
  }

  #active(): TableFault | undefined {
    if (this.fault && this.now() >= this.until) this.fault = undefined;
    return this.fault;
  }

  handle = async (req: Request): Promise<Response> => {
    const action = countRequest(this.stats, req);
    const body = await readBody(req);
    if (!body) return clientGone();
    const fault = this.#active();
    if (fault?.kind === "refuse") {
      this.stats.refused++;
      const refusal = fault.refusal === undefined || fault.refusal === "mix"
        ? REFUSALS[this.#seq++ % REFUSALS.length]!
        : fault.refusal;
      return refusalAnswer(refusal, action, tableName(body));
    }
    if (fault?.kind === "throttle" && this.#random() < (fault.share ?? DEFAULT_THROTTLE_SHARE)) {
      this.stats.throttled++;
      const a = THROTTLE_ANSWERS[this.#seq++ % THROTTLE_ANSWERS.length]!;
      return awsJsonError(400, { __type: a.type, message: a.text });
    }
    // Not tied to the client's connection: a request whose writer gave up still lands.
    const upstream = await forward(this.#target, req, body, this.#fetch, this.closing.signal);
    if (fault?.kind === "slow") {
      this.stats.slowed++;
      await sleep(fault.slowMs ?? DEFAULT_SLOW_MS, this.closing.signal).catch(() => undefined);
    }
    return answer(upstream);
  };
}

/** The TableName of a request body, "" when there is none. */
function tableName(body: Uint8Array): string {
  try {
    const name = (JSON.parse(new TextDecoder().decode(body)) as { TableName?: unknown }).TableName;
    return typeof name === "string" ? name : "";
  } catch {
    return "";
  }
}

/** Starts the proxy on 127.0.0.1 with a free port, no fault active. */
export function startTableProxy(options: TableProxyOptions): TableProxy {
  const proxy = new FaultingProxy(options);
  return {
    ...serveLocal(proxy.handle, proxy.closing),
    stats: () => ({ ...proxy.stats, byAction: { ...proxy.stats.byAction } }),
    startFault: (fault, ms) => {
      proxy.fault = fault;
      proxy.until = ms === undefined ? Infinity : proxy.now() + ms;
      return proxy.until;
    },
    endFault: () => {
      proxy.fault = undefined;
    },
  };
}

/** refused + throttled + slowed. */
export function faultedRequests(s: Pick<TableProxyStats, "refused" | "throttled" | "slowed">) {
  return s.refused + s.throttled + s.slowed;
}

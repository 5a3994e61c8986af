/**
 * A proxy in front of dynalite that answers as a failing DynamoDB would: refusing every
 * request (AccessDeniedException), throttling a share of them, answering slowly, or missing
 * the table. The mode can change while a worker runs; `faulted` counts the answers it made up.
 */
import { type LocalServer, serveLocal } from "../../lab/local_server.ts";

export type TableFaultMode = "pass" | "refuse" | "throttle" | "slow";

export interface TableFaults extends LocalServer {
  mode: TableFaultMode;
  /** Share of requests throttled in `throttle` mode, default 1. */
  share: number;
  /** Delay of every answer in `slow` mode, ms. */
  slowMs: number;
  /** Answers the proxy made up (refusals, throttles), and requests it delayed. */
  readonly faulted: number;
}

/** DynamoDB's own error answers (HTTP 400, JSON 1.0 `__type`). */
const ANSWERS = {
  refuse: {
    __type: "com.amazon.coral.service#AccessDeniedException",
    Message:
      "User: arn:aws:sts::000000000000:assumed-role/sluice/i-0 is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/sluice-idempotency because no identity-based policy allows the dynamodb:PutItem action",
  },
  throttle: {
    __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    message:
      "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
  },
};

export function startTableFaults(target: string, random: () => number = Math.random): TableFaults {
  const closing = new AbortController();
  let faulted = 0;
  const state = {
    mode: "pass" as TableFaultMode,
    share: 1,
    slowMs: 0,
    get faulted() {
      return faulted;
    },
  };
  const server = serveLocal(async (request) => {
    const body = await request.text();
    const mode = state.mode;
    if (mode === "refuse" || (mode === "throttle" && random() < state.share)) {
      faulted++;
      return Response.json(ANSWERS[mode], {
        status: 400,
        headers: { "content-type": "application/x-amz-json-1.0" },
      });
    }
    if (mode === "slow") {
      faulted++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, state.slowMs);
        closing.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), {
          once: true,
        });
      });
    }
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length");
    const answer = await fetch(target, { method: "POST", headers, body });
    return new Response(await answer.arrayBuffer(), {
      status: answer.status,
      headers: { "content-type": answer.headers.get("content-type") ?? "application/json" },
    });
  }, closing);
  return Object.assign(state, { url: server.url, close: server.close });
}

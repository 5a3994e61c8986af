/**
 * dynalite (a DynamoDB implementation on an in-memory LevelDB) in process on
 * loopback, with the idempotency table created: for the lab's `--table` and the
 * tests. Known there: conditional writes and per-key serialisation work;
 * ReturnValuesOnConditionCheckFailure is ignored; TTL is not implemented.
 * `spawnDynalite()` runs it in a child process instead (lab/dynalite_main.ts),
 * so the lab's own event loop (SQS emulator, simulators) does not serve it too,
 * with the fault proxy (lab/table_proxy.ts) in front of it.
 */
import { systemClock } from "../src/lib/clock.ts";
import dynalite from "dynalite";
import { DynamoDbClient } from "../src/adapters/dynamodb_client.ts";
import type { TableFault, TableProxyStats } from "./table_proxy.ts";
import { trackChild } from "./children.ts";

export interface DynaliteServer {
  /** http://127.0.0.1:PORT */
  url: string;
  table: string;
  client: DynamoDbClient;
  /** Requests by action (from X-Amz-Target) since the table was created. */
  requests(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

interface IncomingRequest {
  headers: Record<string, unknown>;
  on(event: "error", listener: (error: unknown) => void): void;
}

/** Starts dynalite and creates `table` (key `id`, String), waiting until it is ACTIVE. */
export async function startDynalite(table = "sluice-idempotency"): Promise<DynaliteServer> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("dynalite bound no port");
  const url = `http://127.0.0.1:${address.port}`;
  const client = labClient(url);
  await client.createTable(table);
  for (let i = 0; i < 100; i++) {
    if ((await client.describeTable(table)).TableStatus === "ACTIVE") break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const counts: Record<string, number> = {};
  // A second listener beside dynalite's own: it only counts.
  (server as unknown as {
    on(event: "request", listener: (req: IncomingRequest) => void): void;
  }).on("request", (req) => {
    const action = String(req.headers["x-amz-target"] ?? "").split(".")[1] ?? "unknown";
    counts[action] = (counts[action] ?? 0) + 1;
    // A client SIGKILLed mid-request resets its connection; dynalite listens for no 'error'
    // on the request, and an unheard one would end the process.
    req.on("error", () => {});
  });
  return {
    url,
    table,
    client,
    requests: () => Promise.resolve({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** The table as the lab runs it (`spawnDynalite()`): dynalite, and the fault proxy in front of it. */
export interface TableService extends DynaliteServer {
  /** The fault proxy's base URL (lab/table_proxy.ts): the workers' endpoint when faults are wanted. */
  proxyUrl: string;
  /** What went through the proxy, faults included. */
  proxyStats(): Promise<TableProxyStats>;
  /**
   * Applies `fault` at the proxy for `ms` (until endFault() when undefined). Resolves to when it
   * ends by the child's clock (epoch ms; Infinity without `ms`): the child may take the command
   * a while after it was sent.
   */
  startFault(fault: TableFault, ms?: number): Promise<number>;
  endFault(): Promise<void>;
}

/** A command of the lab to its table child, one JSON line each way. */
export type TableCommand =
  | { ask: "stats" }
  | { ask: "fault"; fault: TableFault; ms: number | null }
  | { ask: "end" };

/**
 * dynalite and its fault proxy in a child process (lab/dynalite_main.ts), like a
 * remote service: its request handling does not queue behind the lab's SQS
 * emulator and simulators. The child prints its URLs once, then answers each
 * command line (TableCommand) with one JSON line. `seed` seeds the throttle draws.
 * The lab's own client (`client`) talks to dynalite directly, around the faults.
 */
export async function spawnDynalite(
  table = "sluice-idempotency",
  seed = 1,
): Promise<TableService> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./dynalite_main.ts", import.meta.url).pathname,
      table,
      String(seed),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  trackChild(child);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  const writer = child.stdin.getWriter();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.read();
    if (done) throw new Error("dynalite child process ended");
    return JSON.parse(value) as Record<string, unknown>;
  };
  const close = async () => {
    await writer.close().catch(() => undefined);
    await lines.cancel().catch(() => undefined);
    // A child too busy to notice its stdin closing is not waited for long.
    const timer = setTimeout(() => killQuietly(child), 5000);
    await child.status;
    clearTimeout(timer);
  };
  let ready: Record<string, unknown>;
  try {
    ready = await next();
  } catch (error) {
    killQuietly(child);
    await child.status;
    throw error;
  }
  let asking: Promise<unknown> = Promise.resolve();
  const ask = <T>(command: TableCommand): Promise<T> => {
    // One question at a time: answers come back in order on one stream.
    const answer = asking.then(async () => {
      await writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
      return await next() as T;
    });
    asking = answer.catch(() => undefined);
    return answer;
  };
  type Stats = { requests: Record<string, number>; proxy: TableProxyStats };
  return {
    url: String(ready.url),
    proxyUrl: String(ready.proxyUrl),
    table,
    client: labClient(String(ready.url)),
    requests: async () => (await ask<Stats>({ ask: "stats" })).requests,
    proxyStats: async () => (await ask<Stats>({ ask: "stats" })).proxy,
    startFault: async (fault, ms) => {
      const { until } = await ask<{ until: number | null }>({
        ask: "fault",
        fault,
        ms: ms ?? null,
      });
      return until ?? Infinity;
    },
    endFault: async () => {
      await ask({ ask: "end" });
    },
    close,
  };
}

function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already gone
  }
}

function labClient(url: string): DynamoDbClient {
  return new DynamoDbClient({
    clock: systemClock,
    region: "us-east-1",
    endpoint: url,
    // The lab's own reads run beside the workers' load on a busy machine: a longer wait than theirs.
    timeoutMs: 10_000,
    credentials: () => Promise.resolve({ accessKeyId: "lab", secretAccessKey: "lab-secret" }),
  });
}

function splitLines(): TransformStream<string, string> {
  let partial = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) if (line.trim()) controller.enqueue(line);
    },
  });
}

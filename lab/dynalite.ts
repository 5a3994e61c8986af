/**
 * dynalite (a DynamoDB implementation on an in-memory LevelDB) in process on
 * loopback, with the idempotency table created: for the lab's `--table` and the
 * tests. Known there: conditional writes and per-key serialisation work;
 * ReturnValuesOnConditionCheckFailure is ignored; TTL is not implemented.
 * `spawnDynalite()` runs it in a child process instead (lab/dynalite_main.ts),
 * so the lab's own event loop (SQS emulator, simulators) does not serve it too.
 */
import dynalite from "dynalite";
import { DynamoDbClient } from "../src/adapters/dynamodb_client.ts";

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

/**
 * dynalite in a child process (lab/dynalite_main.ts), like a remote service: its
 * request handling does not queue behind the lab's SQS emulator and simulators.
 * The child prints its URL once, then request counts for each "stats" line.
 */
export async function spawnDynalite(table = "sluice-idempotency"): Promise<DynaliteServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./dynalite_main.ts", import.meta.url).pathname, table],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  const writer = child.stdin.getWriter();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.read();
    if (done) throw new Error("dynalite child process ended");
    return JSON.parse(value) as Record<string, unknown>;
  };
  const ready = await next();
  const url = String(ready.url);
  let asking: Promise<unknown> = Promise.resolve();
  return {
    url,
    table,
    client: labClient(url),
    requests: () => {
      // One question at a time: answers come back in order on one stream.
      const answer = asking.then(async () => {
        await writer.write(new TextEncoder().encode("stats\n"));
        return await next() as Record<string, number>;
      });
      asking = answer.catch(() => undefined);
      return answer;
    },
    close: async () => {
      await writer.close().catch(() => undefined);
      await lines.cancel().catch(() => undefined);
      await child.status;
    },
  };
}

function labClient(url: string): DynamoDbClient {
  return new DynamoDbClient({
    region: "us-east-1",
    endpoint: url,
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

/**
 * dynalite (a DynamoDB implementation on an in-memory LevelDB) in process on
 * loopback, with the idempotency table created: for the lab's `--table` and the
 * tests. Known there: conditional writes and per-key serialisation work;
 * ReturnValuesOnConditionCheckFailure is ignored; TTL is not implemented.
 */
import dynalite from "dynalite";
import { DynamoDbClient } from "../src/adapters/dynamodb_client.ts";

export interface DynaliteServer {
  /** http://127.0.0.1:PORT */
  url: string;
  table: string;
  client: DynamoDbClient;
  /** Requests by action (from X-Amz-Target) since the table was created. */
  requests(): Record<string, number>;
  close(): Promise<void>;
}

/** Starts dynalite and creates `table` (key `id`, String), waiting until it is ACTIVE. */
export async function startDynalite(table = "sluice-idempotency"): Promise<DynaliteServer> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("dynalite bound no port");
  const url = `http://127.0.0.1:${address.port}`;
  const client = new DynamoDbClient({
    region: "us-east-1",
    endpoint: url,
    credentials: () => Promise.resolve({ accessKeyId: "lab", secretAccessKey: "lab-secret" }),
  });
  await client.createTable(table);
  for (let i = 0; i < 100; i++) {
    if ((await client.describeTable(table)).TableStatus === "ACTIVE") break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const counts: Record<string, number> = {};
  // A second listener beside dynalite's own: it only counts.
  (server as unknown as {
    on(event: "request", listener: (req: { headers: Record<string, unknown> }) => void): void;
  }).on("request", (req) => {
    const action = String(req.headers["x-amz-target"] ?? "").split(".")[1] ?? "unknown";
    counts[action] = (counts[action] ?? 0) + 1;
  });
  return {
    url,
    table,
    client,
    requests: () => ({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

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
  return {
    url,
    table,
    client,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/**
 * The lab's services bind 127.0.0.1 on a free port: an HTTP handler, or fauxqs (the SQS
 * emulator) with an admin client for it.
 */
import { buildApp } from "fauxqs";
import { createSqsAdmin, type SqsAdmin } from "./sqs_admin.ts";

/** An HTTP server of the lab's on 127.0.0.1. */
export interface LocalServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Aborts `closing` (ends the handler's pending delays), then shuts the server down. */
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 with a free port; `closing`, if given, is aborted on close. */
export function serveLocal(
  handler: (request: Request) => Response | Promise<Response>,
  closing?: AbortController,
): LocalServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => {
      closing?.abort();
      return server.shutdown();
    },
  };
}

/** fauxqs on 127.0.0.1. */
export interface LocalFauxqs {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly admin: SqsAdmin;
  close(): Promise<void>;
}

/** Starts fauxqs on 127.0.0.1 with a free port, with an unsigned admin client for it. */
export async function startFauxqs(): Promise<LocalFauxqs> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") {
    await app.close();
    throw new Error("fauxqs did not bind a port");
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    admin: createSqsAdmin({ endpoint }),
    close: async () => {
      await app.close();
    },
  };
}

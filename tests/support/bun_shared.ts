/**
 * What the probes that run under Bun share: the little of Bun's API they use (Deno type-checks
 * them without Bun's types), a handler served on 127.0.0.1, and fauxqs (fastify, which Bun runs
 * as Node does). No Deno API here.
 */
import { buildApp } from "fauxqs";

export interface BunServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
declare const Bun: {
  readonly version: string;
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): BunServer;
};

/** Bun's version; throws when not run by Bun. */
export function bunVersion(): string {
  if (typeof Bun === "undefined") throw new Error("run this probe with bun");
  return Bun.version;
}

/** `handle` on 127.0.0.1, a free port; a handler that throws answers 500 with the error. */
export function serve(handle: (request: Request) => Response | Promise<Response>): BunServer {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      try {
        return await handle(request);
      } catch (error) {
        return new Response(String(error), { status: 500 });
      }
    },
  });
}

export async function startFauxqs(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs bound no port");
  return { endpoint: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

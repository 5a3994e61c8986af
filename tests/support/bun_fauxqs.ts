/**
 * fauxqs on 127.0.0.1 for the probes that run under Bun (fastify, which Bun runs as Node does);
 * no Deno API here.
 */
import { buildApp } from "fauxqs";

export async function startFauxqs(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs bound no port");
  return { endpoint: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

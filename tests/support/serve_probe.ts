/**
 * Run under Deno or Bun by tests/cli/runtime_serve_test.ts: serves "ok" with runtime.serve() on
 * a free loopback port, prints the port, and stops when stdin closes.
 */
import * as runtime from "../../src/cli/runtime.ts";

const server = runtime.serve("127.0.0.1", 0, () => new Response("ok\n"));
runtime.writeStdout(`${server.port}\n`);
const g = globalThis as {
  Deno?: typeof Deno;
  Bun?: { stdin: { stream(): ReadableStream<Uint8Array> } };
};
const stdin = g.Deno ? g.Deno.stdin.readable : g.Bun!.stdin.stream();
for await (const _ of stdin) {
  // wait for EOF
}
await server.close();
runtime.exit(0);

/**
 * The child process of `spawnDynalite()`: starts dynalite with the table,
 * prints {"url": ...} on one line, answers each "stats" line on stdin with the
 * request counts, and exits when stdin closes.
 */
import { startDynalite } from "./dynalite.ts";

if (import.meta.main) {
  // A worker SIGKILLed mid-request resets its connection, and Deno's node:http raises that as an
  // uncaught "aborted" error that dynalite never listens for: it must not end the table.
  let suppressed = 0;
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    if (suppressed++ === 0) console.error(`dynalite: ignored ${event.message}`);
  });
  const db = await startDynalite(Deno.args[0] ?? "sluice-idempotency");
  const out = (value: unknown) => console.log(JSON.stringify(value));
  out({ url: db.url });
  let partial = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) if (line.trim() === "stats") out(await db.requests());
  }
  await db.close();
}

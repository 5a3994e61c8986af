/**
 * The child process of `spawnDynalite()`: starts dynalite with the table and the
 * fault proxy in front of it, prints {"url": ..., "proxyUrl": ...} on one line,
 * answers each command line on stdin (TableCommand in lab/dynalite.ts) with one
 * JSON line, and exits when stdin closes.
 */
import { startDynalite, type TableCommand } from "./dynalite.ts";
import { startTableProxy } from "./table_proxy.ts";
import { createRng, deriveSeed } from "./prng.ts";

if (import.meta.main) {
  // A worker SIGKILLed mid-request resets its connection, and Deno's node:http raises that as an
  // uncaught "aborted" error that dynalite never listens for: it must not end the table.
  let suppressed = 0;
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    if (suppressed++ === 0) console.error(`dynalite: ignored ${event.message}`);
  });
  const db = await startDynalite(Deno.args[0] ?? "sluice-idempotency");
  const seed = Number(Deno.args[1] ?? 1);
  const proxy = startTableProxy({
    target: db.url,
    random: createRng(deriveSeed(seed, "table-faults")).next,
  });
  const out = (value: unknown) => console.log(JSON.stringify(value));
  out({ url: db.url, proxyUrl: proxy.url });
  const run = async (command: TableCommand): Promise<unknown> => {
    switch (command.ask) {
      case "stats":
        return { requests: await db.requests(), proxy: proxy.stats() };
      case "fault":
        return { until: proxy.startFault(command.fault, command.ms ?? undefined) };
      case "end":
        proxy.endFault();
        return { ok: true };
    }
  };
  let partial = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (!line.trim()) continue;
      try {
        out(await run(JSON.parse(line) as TableCommand));
      } catch (error) {
        out({ error: String(error) });
      }
    }
  }
  await proxy.close();
  await db.close();
}

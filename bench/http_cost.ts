/**
 * What one downstream request costs the worker's process (docs/performance.md): the same
 * validator-sized POSTs, read whole, through Deno's fetch and through lib/http1_client.ts, to a
 * Deno.serve server in a process of its own. Each client runs in a child process of its own,
 * with 32 requests in flight, and reports its CPU (user + system, /proc/self/stat) per request;
 * the clients alternate for --rounds rounds and the medians are printed.
 *
 *   deno run -A bench/http_cost.ts [--requests 20000] [--rounds 3]
 */
import { http1Client } from "../src/lib/http1_client.ts";
import { fetchNoRedirect, readTextPrefix } from "../src/lib/guarded_fetch.ts";
import { systemClock } from "../src/lib/clock.ts";
import { parseStat, TICKS_PER_SECOND } from "../lab/process_tree.ts";

const flag = (name: string, fallback: number) => {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 ? Number(Deno.args[at + 1]) : fallback;
};
const BODY = JSON.stringify({
  message_id: "2b6f7a3e-1c4d-4f0e-9a55-0d6c2f1e9b11",
  user: { id: "u-1042", name: "Ada Lovelace", tier: "gold", country: "GB" },
  payload: { order: 18231, items: [1, 2, 3], total_cents: 12995 },
  received_at: "2026-12-08T02:00:00.000Z",
});

/** CPU ms of this process so far (user + system; lab/process_tree.ts reads the line). */
function cpuMs(): number {
  const ticks = parseStat(Deno.readTextFileSync("/proc/self/stat"))?.cpuTicks ?? 0;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** The child: `requests` POSTs through `mode`'s fetch; prints µs of CPU per request. */
async function client(mode: string, port: number, requests: number): Promise<void> {
  const pooled = http1Client({
    connect: (hostname, p) => Deno.connect({ hostname, port: p }),
    fallback: fetch,
    monotonic: systemClock.monotonic,
  });
  const doFetch = mode === "fetch" ? fetch : pooled.fetch;
  const url = `http://127.0.0.1:${port}/ingest`;
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: BODY };
  const before = cpuMs();
  let sent = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (sent++ < requests) {
      const response = await fetchNoRedirect(doFetch, "validator", url, init);
      await readTextPrefix(response, 1024);
    }
  }));
  console.log(((cpuMs() - before) * 1000 / requests).toFixed(1));
  pooled.close();
}

async function main(): Promise<void> {
  const mode = Deno.args[0];
  if (mode === "fetch" || mode === "http1") {
    return await client(mode, Number(Deno.args[1]), Number(Deno.args[2]));
  }
  const requests = flag("requests", 20000);
  const rounds = flag("rounds", 3);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.text();
    return new Response('{"ok":true}', { status: 202 });
  });
  const results: Record<string, number[]> = { fetch: [], http1: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const name of ["fetch", "http1"]) {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL(import.meta.url).pathname,
            name,
            String(server.addr.port),
            String(requests),
          ],
          stdout: "piped",
        });
        const out = await child.output();
        results[name]!.push(Number(new TextDecoder().decode(out.stdout).trim()));
      }
    }
  } finally {
    await server.shutdown();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const f = median(results.fetch!);
  const h = median(results.http1!);
  console.log(`CPU µs per request (medians of ${rounds}; each: ${JSON.stringify(results)})`);
  console.log(`  Deno fetch          ${f.toFixed(1)}`);
  console.log(`  lib/http1_client.ts ${h.toFixed(1)}   (${(h / f).toFixed(2)}× fetch)`);
}

await main();

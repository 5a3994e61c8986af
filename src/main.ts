/**
 * sluice's entry point: `deno task start`, or the built binary under systemd.
 * Configured only by environment variables; subcommands live in cli.ts.
 */
import { loadConfigOrReport, runCli } from "./cli/cli.ts";
import type { Registry } from "./lib/metrics.ts";
import * as runtime from "./cli/runtime.ts";
import { startWorker } from "./app/start_worker.ts";

async function main(): Promise<number> {
  const handled = await runCli(runtime.args());
  if (handled !== undefined) return handled;

  const env = runtime.env();
  const config = loadConfigOrReport(env);
  if (!config) return 2;
  // Bound before intake starts: with the port taken, no message is received, and exit 2 (a
  // configuration error) keeps systemd from restarting into the same failure.
  const route: { app?: runtime.FetchHandler } = {};
  let server;
  try {
    server = runtime.serve(
      config.httpHost,
      config.httpPort,
      (request) => route.app ? route.app(request) : new Response("starting\n", { status: 503 }),
    );
  } catch (error) {
    runtime.writeStderr(
      `sluice: cannot listen on ${config.httpHost}:${config.httpPort} (HTTP_HOST, HTTP_PORT): ${
        (error as Error).message
      }; is another sluice running? set HTTP_PORT to a free port\n`,
    );
    return 2;
  }
  const worker = startWorker(config, {
    env,
    readTextFile: runtime.readTextFile,
    homeDir: runtime.homeDir(),
    write: (line) => runtime.writeStdout(`${line}\n`),
  });
  route.app = worker.app.fetch;
  registerProcessMetrics(worker.metrics.registry);

  worker.logger.info("health server listening", { host: config.httpHost, port: server.port });

  let signals = 0;
  const onSignal = (name: string) => () => {
    signals++;
    if (signals > 1) {
      worker.logger.warn("second signal: exiting now", { signal: name });
      runtime.exit(1);
    }
    worker.logger.info("signal received", { signal: name });
    worker.stop();
  };
  runtime.onSignal("SIGTERM", onSignal("SIGTERM"));
  runtime.onSignal("SIGINT", onSignal("SIGINT"));

  await worker.done;
  await server.close();
  return 0;
}

/** process_* basics, read from the runtime at scrape time. */
function registerProcessMetrics(registry: Registry): void {
  const rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  const heap = registry.gauge("process_heap_bytes", "JavaScript heap in use, bytes.");
  const cpu = registry.gauge("process_cpu_seconds_total", "User and system CPU time, seconds.");
  const start = registry.gauge("process_start_time_seconds", "Start time, Unix seconds.");
  start.set(undefined, Date.now() / 1000);
  registry.onCollect(() => {
    const memory = runtime.memoryUsage();
    const used = runtime.cpuUsage();
    rss.set(undefined, memory.rss);
    heap.set(undefined, memory.heapUsed);
    cpu.set(undefined, (used.user + used.system) / 1e6);
  });
}

runtime.exit(await main());

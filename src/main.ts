/**
 * sluice's entry point: `deno task start`, or the built binary under systemd.
 * Configured only by environment variables; subcommands live in cli.ts.
 */
import { buildInfo } from "./cli/build_info.ts";
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
  const build = buildInfo();
  const worker = startWorker(config, {
    build: {
      version: build.version,
      commit: build.commit,
      runtime: `${runtime.runtimeName()} ${runtime.runtimeVersion()}`,
    },
    env,
    readTextFile: runtime.readTextFile,
    homeDir: runtime.homeDir(),
    write: (line) => runtime.writeStdout(`${line}\n`),
  });
  registerProcessMetrics(worker.metrics.registry);

  let server;
  try {
    server = runtime.serve(config.httpHost, config.httpPort, worker.app.fetch);
  } catch (error) {
    worker.logger.error("cannot start the health server", {
      error,
      host: config.httpHost,
      port: config.httpPort,
    });
    await worker.stop(0);
    return 1;
  }
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

/**
 * The standard process_* metrics (the names the Prometheus client libraries
 * use), plus the JavaScript heap under prom-client's Node.js name, read from
 * the runtime at scrape time.
 */
function registerProcessMetrics(registry: Registry): void {
  const rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  const heap = registry.gauge(
    "nodejs_heap_size_used_bytes",
    "JavaScript heap in use, bytes.",
  );
  registry.observedCounter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
    () => {
      const used = runtime.cpuUsage();
      return (used.user + used.system) / 1e6;
    },
  );
  const start = registry.gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
  );
  start.set(undefined, Date.now() / 1000);
  registry.onCollect(() => {
    const memory = runtime.memoryUsage();
    rss.set(undefined, memory.rss);
    heap.set(undefined, memory.heapUsed);
  });
}

runtime.exit(await main());

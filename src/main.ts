/**
 * sluice's entry point: `deno task start`, or the built binary under systemd.
 * Configured only by environment variables; subcommands live in cli.ts.
 */
import { buildInfo } from "./cli/build_info.ts";
import { loadConfigOrReport, runCli } from "./cli/cli.ts";
import { systemClock } from "./lib/clock.ts";
import { ConfigError } from "./lib/errors.ts";
import { escapeTerminal } from "./lib/terminal_text.ts";
import type { Registry } from "./lib/metrics.ts";
import * as runtime from "./cli/runtime.ts";
import { startWorker, type Worker } from "./app/start_worker.ts";
import type { Config } from "./app/config.ts";
import { stopSignalAction, type StopSignalState } from "./app/stop_signal.ts";

async function main(): Promise<number> {
  const handled = await runCli(runtime.args());
  if (handled !== undefined) return handled;

  const env = runtime.env();
  const config = loadConfigOrReport(env);
  if (!config) return 2;
  // Bound before intake starts: with the port taken, no message is received, and exit 2 (a
  // configuration error) keeps systemd from restarting into the same failure.
  const route: { app?: runtime.FetchHandler } = {};
  const server = listen(config, route);
  if (!server) return 2;
  const build = buildInfo();
  const transport = runtime.workerTransport(env);
  const sha256 = runtime.nativeSha256();
  const worker = startWorker(config, {
    fetch: transport.fetch,
    ...(sha256 ? { sha256 } : {}),
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
  route.app = worker.app.fetch;
  registerProcessMetrics(worker.metrics.registry);
  worker.logger.info("health server listening", { host: config.httpHost, port: server.port });
  const signals = onStopSignals(worker);
  try {
    await worker.done;
  } catch (error) {
    // Startup found the configuration unusable (the idempotency table): exit 2, one line.
    if (!(error instanceof ConfigError)) throw error;
    // The table's own answer may be quoted in it.
    runtime.writeStderr(`sluice: ${escapeTerminal(error.message)}\n`);
    await server.close();
    transport.close();
    return 2;
  }
  await server.close();
  transport.close();
  // A forced stop may have abandoned submissions on the wire: say so in the exit code.
  return signals.forced ? 1 : 0;
}

/** The health server, answering 503 until the worker's app is in `route`; undefined: exit 2. */
function listen(config: Config, route: { app?: runtime.FetchHandler }) {
  try {
    return runtime.serve(
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
    return undefined;
  }
}

/**
 * SIGTERM and SIGINT stop the worker. Two signals of one stop (a forwarded one and a group
 * kill) count as one; a signal FORCE_AFTER_MS into the drain ends the grace, yet still hands
 * messages back first.
 */
function onStopSignals(worker: Worker): StopSignalState {
  const signals: StopSignalState = { firstAt: undefined, forced: false };
  const onSignal = (name: string) => () => {
    const now = systemClock.monotonic();
    const action = stopSignalAction(signals, now);
    if (action === "stop") {
      signals.firstAt = now;
      worker.logger.info("signal received", { signal: name });
      worker.stop();
    } else if (action === "force") {
      signals.forced = true;
      worker.logger.warn("second signal: stopping now; releasing in-flight messages first", {
        signal: name,
      });
      worker.force();
    } else {
      worker.logger.info("signal ignored: the stop is under way", { signal: name });
    }
  };
  runtime.onSignal("SIGTERM", onSignal("SIGTERM"));
  runtime.onSignal("SIGINT", onSignal("SIGINT"));
  return signals;
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
  start.set(undefined, systemClock.now() / 1000);
  registry.onCollect(() => {
    const memory = runtime.memoryUsage();
    rss.set(undefined, memory.rss);
    heap.set(undefined, memory.heapUsed);
  });
}

runtime.exit(await main());

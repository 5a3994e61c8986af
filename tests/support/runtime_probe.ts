/**
 * Run by tests/cli/runtime_test.ts under Deno and under Bun: exercises every
 * function of src/runtime.ts and reports what it saw as one JSON line, then
 * waits for SIGTERM, which it answers with "got SIGTERM" and exit code 3.
 */
import * as runtime from "../../src/cli/runtime.ts";

const [path] = runtime.args();
let missingCode: unknown;
try {
  await runtime.readTextFile("/nonexistent/sluice-runtime-probe");
} catch (error) {
  missingCode = (error as { code?: unknown }).code;
}
const report = {
  name: runtime.runtimeName(),
  version: runtime.runtimeVersion(),
  args: runtime.args(),
  env: runtime.env()["SLUICE_PROBE"],
  home: runtime.homeDir(),
  file: path ? await runtime.readTextFile(path) : undefined,
  missingCode,
  memory: runtime.memoryUsage(),
  cpu: runtime.cpuUsage(),
  execPath: runtime.execPath(),
  pid: runtime.pid(),
  tty: runtime.stdoutIsTerminal(),
};
// Keeps the process alive until the signal; cleared by the handler.
const keepAlive = setInterval(() => {}, 60_000);
const off = runtime.onSignal("SIGTERM", () => {
  off();
  clearInterval(keepAlive);
  runtime.writeStderr("stderr works\n");
  runtime.writeStdout("got SIGTERM\n");
  runtime.exit(3);
});
runtime.writeStdout(`${JSON.stringify(report)}\n`);

/**
 * src/runtime.ts under both runtimes sluice ships on: Deno, and Bun (the
 * fallback builder's runtime, from npm). A child process runs
 * tests/support/runtime_probe.ts; the test checks what it reports and that a
 * SIGTERM reaches the handler registered with onSignal().
 */
import assert from "node:assert/strict";
import { bunPath, keptEnv, REPO } from "../support/command.ts";

const PROBE = `${REPO}/tests/support/runtime_probe.ts`;

/** Deno's cache directory, so a child with another HOME still finds its packages. */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}

async function probe(cmd: string[], extraEnv: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "sluice_runtime_test_" });
  try {
    await Deno.writeTextFile(`${dir}/data.txt`, "héllo\n");
    const child = new Deno.Command(cmd[0]!, {
      args: [...cmd.slice(1), PROBE, `${dir}/data.txt`, "--flag"],
      cwd: REPO,
      env: {
        ...keptEnv(),
        SLUICE_PROBE: "yes",
        HOME: "/home/probe",
        ...extraEnv,
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    try {
      // The report line first; then the signal.
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      if (out.includes("\n")) child.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
    } finally {
      reader.releaseLock();
    }
    const status = await child.status;
    const [first, ...rest] = out.split("\n");
    if (!first?.startsWith("{")) {
      throw new Error(`probe printed no report (exit ${status.code}):\n${out}${await stderr}`);
    }
    return {
      pid: child.pid,
      code: status.code,
      report: JSON.parse(first ?? "null") as Record<string, unknown>,
      rest: rest.join("\n"),
      stderr: await stderr,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function checkReport(result: Awaited<ReturnType<typeof probe>>, name: string, execPath: string) {
  const r = result.report;
  assert.equal(r["name"], name);
  assert.match(String(r["version"]), /^\d+\.\d+\.\d+/);
  const args = r["args"] as string[];
  assert.equal(args.length, 2, JSON.stringify(args));
  assert.match(args[0]!, /\/data\.txt$/);
  assert.equal(args[1], "--flag");
  assert.equal(r["env"], "yes");
  assert.equal(r["home"], "/home/probe");
  assert.equal(r["file"], "héllo\n");
  assert.equal(r["missingCode"], "ENOENT");
  const memory = r["memory"] as Record<string, number>;
  assert.ok(memory["rss"]! > 1_000_000, `rss ${memory["rss"]}`);
  assert.ok(memory["heapUsed"]! > 0 && memory["heapTotal"]! >= memory["heapUsed"]!);
  const cpu = r["cpu"] as Record<string, number>;
  assert.ok(cpu["user"]! + cpu["system"]! > 0);
  assert.equal(r["execPath"], execPath);
  assert.equal(r["pid"], result.pid);
  assert.equal(r["tty"], false);
  assert.equal(result.rest, "got SIGTERM\n");
  assert.equal(result.stderr.includes("stderr works\n"), true, result.stderr);
  assert.equal(result.code, 3);
}

Deno.test("runtime: shim under Deno", async () => {
  const result = await probe([Deno.execPath(), "run", "-A", "--no-lock"], {
    DENO_DIR: await denoDir(),
  });
  checkReport(result, "deno", Deno.execPath());
});

Deno.test("runtime: shim under Bun", async () => {
  const bun = await bunPath();
  const result = await probe([bun, "run"]);
  checkReport(result, "bun", bun);
});

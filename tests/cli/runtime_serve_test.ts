/**
 * runtime.serve(), the health and metrics server, under Deno and under Bun: it answers, and a
 * client that sends partial headers, trickles a byte a second, or says nothing at all does not
 * keep its connection for long. A raw TCP client does the trickling.
 */
import assert from "node:assert/strict";
import { bunPath, keptEnv, REPO } from "../support/command.ts";
import { trickle } from "../support/trickle_client.ts";

const PROBE = `${REPO}/tests/support/serve_probe.ts`;
const PARTIAL = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/** Starts serve_probe.ts under `cmd`; stops it when `fn` is done. */
async function withServer(cmd: string[], fn: (port: number) => Promise<void>) {
  const child = new Deno.Command(cmd[0]!, {
    args: [...cmd.slice(1), PROBE],
    cwd: REPO,
    env: keptEnv(),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the probe printed no port: ${await stderr}`);
      out += value;
    }
    await fn(Number(out.trim()));
  } finally {
    await child.stdin.close();
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const status = await child.status;
    assert.equal(status.code, 0, `probe exit: ${await stderr}`);
  }
}

/** What each runtime must do: answer, and close the three slow clients in time. */
async function checkServer(port: number, within: { trickle: number; idle: number }) {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "ok\n");
  const [trickling, silent, idle] = await Promise.all([
    trickle({ port, start: PARTIAL, everyMs: 1000, giveUpMs: 20_000 }),
    trickle({ port, start: PARTIAL, everyMs: 0, giveUpMs: 20_000 }),
    trickle({ port, start: "", everyMs: 0, giveUpMs: 20_000 }),
  ]);
  assert.ok(trickling !== undefined && trickling <= within.trickle, `trickling: ${trickling} ms`);
  assert.ok(silent !== undefined && silent <= within.trickle, `partial head: ${silent} ms`);
  assert.ok(idle !== undefined && idle <= within.idle, `idle: ${idle} ms`);
  // Still serving after the slow clients.
  const again = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(await again.text(), "ok\n");
}

Deno.test("runtime serve: under Deno, slow and partial request heads are cut off within seconds", async () => {
  await withServer([Deno.execPath(), "run", "-A"], async (port) => {
    // 5 s from a request's first byte to its last header; 10 s for a connection to start one.
    await checkServer(port, { trickle: 6_500, idle: 11_500 });
  });
});

Deno.test("runtime serve: under Bun, slow and partial request heads are cut off within seconds", async () => {
  const bun = await bunPath();
  await withServer([bun, "run"], async (port) => {
    // Bun's idleTimeout (10 s), checked on its own coarse timer: closed within 10-14 s.
    await checkServer(port, { trickle: 15_000, idle: 15_000 });
  });
});

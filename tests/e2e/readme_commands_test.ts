/**
 * Every command line in README.md's `sh` blocks runs on this clone: as written, against the
 * lab's `--infra-only` services where it needs them; or, where it needs the VM or would run the
 * suite from inside itself, a safe dry form of it (`./deploy.sh --dry-run`, `ssh -G`, the remote
 * command run here). A README command without a rule below fails the test. Each command is
 * bounded in time; the lab and the worker are stopped by PID.
 */
import assert from "node:assert/strict";
import { freePort, keptEnv, REPO } from "../support/command.ts";
import { waitFor } from "../support/lab_env.ts";

const NPX_DENO = "npx -y deno@2.9.6";

/** The command lines of the README's sh blocks: continuations joined, trailing comments cut. */
export function readmeCommands(readme: string): string[] {
  const lines: string[] = [];
  let inSh = false;
  let pending = "";
  for (const raw of readme.split("\n")) {
    if (raw.startsWith("```")) {
      inSh = !inSh && raw.trim() === "```sh";
      continue;
    }
    if (!inSh) continue;
    const line = raw.replace(/\s{2,}#.*$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    lines.push(pending + line);
    pending = "";
  }
  return lines;
}

/** A child in the clone with only `env` beside PATH, TLS, proxies and HOME (npx's cache). */
function command(program: string, args: string[], env: Record<string, string>, ms?: number) {
  return new Deno.Command(program, {
    args,
    cwd: REPO,
    env: { ...keptEnv(), HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(ms ? { signal: AbortSignal.timeout(ms) } : {}),
  });
}

interface Ran {
  code: number;
  out: string;
}

/** `bash -c script` in the clone with `env`, stdin closed, killed after `ms`. */
async function bash(script: string, env: Record<string, string>, ms = 120_000): Promise<Ran> {
  const out = await command("bash", ["-c", script], env, ms).output();
  const text = new TextDecoder();
  return { code: out.code, out: text.decode(out.stdout) + text.decode(out.stderr) };
}

/** A long-running child, its output collected; stopped by PID. */
function spawn(args: string[], env: Record<string, string>) {
  const child = command(Deno.execPath(), args, env).spawn();
  const state = { out: "" };
  const text = new TextDecoder();
  const read = (stream: ReadableStream<Uint8Array>) =>
    (async () => {
      for await (const chunk of stream) state.out += text.decode(chunk, { stream: true });
    })();
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  return {
    state,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }, 30_000);
      await child.status;
      clearTimeout(timer);
      await reading;
    },
  };
}

/**
 * `npx -y deno@2.9.6 task NAME ARGS` as deno.json defines the task, for the children this test
 * stops: npx hands no signal on to the deno it starts.
 */
async function taskArgs(line: string): Promise<string[]> {
  const [name, ...rest] = line.slice(`${NPX_DENO} task `.length).split(/\s+/);
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)).tasks;
  const command = String(tasks[name!]);
  assert.match(command, /^deno run /, `the ${name} task runs a deno program`);
  return [...command.split(/\s+/).slice(1), ...rest];
}

/** What each README line is checked by, in the README's order; ctx carries the lab's exports. */
interface Ctx {
  env: Record<string, string>;
  port: number;
  stops: Array<() => Promise<void>>;
  sluice: string;
}

type Rule = [pattern: RegExp, check: (line: string, ctx: Ctx) => Promise<void>];

const ok = (r: Ran, line: string) => assert.equal(r.code, 0, `${line}\n${r.out.slice(-3000)}`);

const RULES: Rule[] = [
  [/^npx -y deno@2\.9\.6 task lab$/, async (line) => {
    // The whole lab, a small run of it.
    const r = await bash(`${line} --messages 300`, {}, 180_000);
    ok(r, line);
    assert.match(r.out, /lost\s+0/);
  }],
  [/^npx -y deno@2\.9\.6 task test$/, async (line) => {
    // The suite cannot run inside itself: the task exists and is the deno test the README says.
    const r = await bash(NPX_DENO + " task", {});
    ok(r, line);
    assert.match(r.out, /- test\n\s+deno test -P /);
  }],
  [/^npx -y deno@2\.9\.6 task lab --infra-only$/, async (line, ctx) => {
    const lab = spawn(await taskArgs(`${line} --messages 10`), { HTTP_PORT: String(ctx.port) });
    ctx.stops.unshift(() => lab.stop());
    await waitFor(() => lab.state.out.includes("curl"), "the lab's export lines", 60_000);
    for (const m of lab.state.out.matchAll(/^export ([A-Z_0-9]+)=(.*)$/gm)) {
      ctx.env[m[1]!] = m[2]!.replace(/^'|'$/g, "");
    }
    assert.equal(ctx.env.HTTP_PORT, String(ctx.port));
  }],
  [/^npx -y deno@2\.9\.6 task start$/, async (line, ctx) => {
    const worker = spawn(await taskArgs(line), ctx.env);
    ctx.stops.unshift(() => worker.stop());
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${ctx.port}/healthz`).then(
          async (r) => (await r.text()).includes('"ok"'),
          () => false,
        ),
      "the worker's health server",
      60_000,
    );
  }],
  [/^curl -s localhost:9400\/healthz$/, async (line, ctx) => {
    // The lab's worker port here is free one, not 9400 (other runs may hold that).
    const r = await bash(line.replace("9400", String(ctx.port)), {});
    ok(r, line);
    assert.equal(r.out.trim(), '{"status":"ok"}');
  }],
  [/^aws sqs send-message /, async (line, ctx) => {
    if ((await bash("command -v aws", {})).code !== 0) {
      console.log(`skipped (no aws CLI here): ${line}`);
      return;
    }
    const r = await bash(line, ctx.env, 60_000);
    ok(r, line);
    assert.match(r.out, /"MessageId"/);
  }],
  [/^npx -y deno@2\.9\.6 task start check-config --env-file=systemd\/sluice\.env\.example$/, async (
    line,
  ) => {
    // --env-file reaches sluice through npx (Node takes a spaced one): the example lacks 3 values.
    const r = await bash(line, {});
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /variables from systemd\/sluice\.env\.example only/);
    assert.match(r.out, /FAIL Missing SQS_QUEUE_URL/);
  }],
  [/^\.\/deploy\.sh admin@10\.0\.1\.20$/, async (line) => {
    const r = await bash(line.replace("./deploy.sh", "./deploy.sh --dry-run"), {});
    ok(r, line);
    assert.match(r.out, /dry run: nothing was done/);
  }],
  [/^ssh (-t )?admin@10\.0\.1\.20 /, async (line, ctx) => {
    // ssh -G parses the line without connecting; a sluice command then runs here, as the
    // binary takes it (no npx: --env-file is spaced), with the lab's settings in the file.
    const [, tty, remote] = line.match(/^ssh (-t )?admin@10\.0\.1\.20 (.*)$/)!;
    ok(await bash(`ssh -G ${tty ?? ""}admin@10.0.1.20 >/dev/null`, {}), line);
    const command = remote!.match(/^sudo sluice (.*)$/)?.[1];
    if (remote!.startsWith("sudoedit ")) return; // an editor on the VM: nothing to run here
    assert.ok(command, `no rule for the remote command of: ${line}`);
    const file = await Deno.makeTempFile({ suffix: ".env" });
    try {
      const lines = Object.entries(ctx.env).map(([k, v]) => `${k}=${v}`);
      await Deno.writeTextFile(file, `${lines.join("\n")}\n`);
      const args = command.replace("/etc/sluice/sluice.env", file);
      const r = await bash(`'${Deno.execPath()}' run -A src/main.ts ${args}`, {});
      ok(r, line);
      assert.match(r.out, /ok {3}SQS DLQ: /);
    } finally {
      await Deno.remove(file);
    }
  }],
  [/^sluice\(\) \{ .* \}$/, (line, ctx) => {
    ctx.sluice = line;
    return Promise.resolve();
  }],
  [/^sluice dlq purge /, async (line, ctx) => {
    // Without a terminal it asks nobody: it names the count and wants --yes (exit 2).
    const r = await bash(`${ctx.sluice}\n${line}`, ctx.env);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /would delete 2 message\(s\) from .*; add --yes to confirm/);
  }],
  [/^sluice dlq /, async (line, ctx) => {
    const r = await bash(`${ctx.sluice}\n${line}`, ctx.env);
    ok(r, line);
  }],
];

Deno.test("README commands: every command line in the README's sh blocks runs on a clone", async () => {
  const readme = await Deno.readTextFile(`${REPO}/README.md`);
  const lines = readmeCommands(readme);
  const uncovered = lines.filter((line) => !RULES.some(([pattern]) => pattern.test(line)));
  assert.deepEqual(uncovered, [], "README commands without a rule in this test");
  const ctx: Ctx = { env: {}, port: freePort(), stops: [], sluice: "" };
  try {
    for (const line of lines) {
      if (line.startsWith("sluice dlq") && !ctx.env.SQS_QUEUE_URL) {
        throw new Error(`${line}: the lab's services are not running`);
      }
      if (line.startsWith("sluice dlq stats")) await dlqWithPoison(ctx);
      const [, check] = RULES.find(([pattern]) => pattern.test(line))!;
      await check(line, ctx);
    }
  } finally {
    for (const stop of ctx.stops) await stop();
  }
});

/** Two poison bodies sent by `lab send`, dead-lettered by the running worker. */
async function dlqWithPoison(ctx: Ctx): Promise<void> {
  const send = await bash(
    `'${Deno.execPath()}' run -A lab/main.ts send --count 2 --poison 2`,
    ctx.env,
  );
  ok(send, "lab send");
  await waitFor(
    async () => {
      const text = await fetch(`http://127.0.0.1:${ctx.port}/metrics`).then((r) => r.text());
      return /^sluice_messages_total\{outcome="dead_lettered"\} 2$/m.test(text);
    },
    "two poison bodies dead-lettered",
    60_000,
  );
}

Deno.test("README commands: lines are read from sh blocks with continuations and comments", () => {
  const text = [
    "```sh",
    "a --x   # comment",
    "b \\",
    "  --y 'z'",
    "# a comment line",
    "```",
    "```json",
    "{}",
    "```",
  ].join("\n");
  assert.deepEqual(readmeCommands(text), ["a --x", "b --y 'z'"]);
});

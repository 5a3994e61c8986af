/**
 * scripts/build.ts (`deno task build`): one executable that runs with no Deno,
 * no node_modules and an empty environment, reports its version and commit,
 * and refuses to package lab or test code. Builds into a temporary path, not
 * dist/sluice, so it never disturbs a binary someone is using.
 */
import assert from "node:assert/strict";
import { CONFIG_VARS } from "../src/config.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function run(cmd: string[], options: { cwd?: string; clearEnv?: boolean } = {}) {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    cwd: options.cwd ?? REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.clearEnv ? { clearEnv: true, env: {} } : {}),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

Deno.test("deno task build makes a self-contained dist binary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_build_test_" });
  try {
    const binary = `${dir}/sluice`;
    const build = await run([Deno.execPath(), "run", "-A", "scripts/build.ts", "--out", binary]);
    const log = build.stdout + build.stderr;
    assert.equal(build.code, 0, log);
    const builder = log.match(/^build: builder +(deno compile|bun build --compile)$/m);
    assert.ok(builder, log);
    const size = log.match(/^build: binary .*, [\d.]+ MiB \((\d+) bytes\)$/m);
    assert.ok(size, log);
    assert.equal(Number(size[1]), (await Deno.stat(binary)).size);

    // Run from an empty directory with an empty environment: nothing of the
    // repo, no deno or bun on PATH.
    const version = await run([binary, "--version"], { cwd: dir, clearEnv: true });
    assert.equal(version.code, 0, version.stderr);
    const pkg = JSON.parse(await Deno.readTextFile(`${REPO}/package.json`)) as { version: string };
    const commit = (await run(["git", "rev-parse", "--short=12", "HEAD"])).stdout.trim();
    assert.match(
      version.stdout,
      new RegExp(
        `^sluice ${pkg.version.replaceAll(".", "\\.")} \\(commit ${commit}(\\+dirty)?, ` +
          `built \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z with ${builder[1]}\\)\\n$`,
      ),
    );

    const help = await run([binary, "--help"], { cwd: dir, clearEnv: true });
    assert.equal(help.code, 0, help.stderr);
    for (const v of CONFIG_VARS) assert.ok(help.stdout.includes(v.name), `--help lacks ${v.name}`);

    // A missing required variable is a config error: one line, exit 2.
    const bare = await run([binary], { cwd: dir, clearEnv: true });
    assert.equal(bare.code, 2, bare.stdout + bare.stderr);
    assert.match(bare.stderr, /SQS_QUEUE_URL/);

    // The binary's own code (not the runtime's) holds nothing of lab/ or tests/.
    const bytes = await Deno.readFile(binary);
    const text = new TextDecoder("latin1").decode(bytes);
    for (const marker of ["runLab", "enrich_sim", "validator_sim", "sqs_proxy", "fake_sqs"]) {
      assert.equal(text.includes(marker), false, `binary contains ${marker}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the build refuses an entry that reaches lab/ or tests/", async () => {
  // Inside the repo so the entry resolves like src/main.ts would.
  await Deno.mkdir(`${REPO}/dist`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO}/dist`, prefix: "build_test_" });
  try {
    await Deno.writeTextFile(`${dir}/entry.ts`, `import "../../lab/prng.ts";\n`);
    const build = await run([
      Deno.execPath(),
      "run",
      "-A",
      "scripts/build.ts",
      "--entry",
      `${dir}/entry.ts`,
      "--out",
      `${dir}/sluice`,
    ]);
    assert.equal(build.code, 1, build.stdout + build.stderr);
    assert.match(build.stderr, /reaches non-shipping code:\n\s+lab\/prng\.ts/);
    await assert.rejects(Deno.stat(`${dir}/sluice`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

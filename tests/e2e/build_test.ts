/**
 * scripts/build.ts (`deno task build`): one executable that runs with no Deno,
 * no node_modules and an empty environment, reports its version and commit,
 * and refuses to package lab or test code. Then the acceptance run:
 * the binary, with no AWS keys and the instance metadata service on
 * 127.0.0.1, drains a queue whose every request must be signed with the
 * instance-role credentials. Builds into a temporary path, not dist/sluice,
 * so it never disturbs a binary someone is using.
 */
import assert from "node:assert/strict";
import { CONFIG_VARS } from "../../src/app/config.ts";
import { REPO, run } from "../support/command.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { startLocalSqs } from "../support/local_sqs.ts";

Deno.test("build: deno task build makes a self-contained binary that works on instance-role credentials", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_build_test_" });
  try {
    const binary = `${dir}/sluice`;
    await t.step("build", async () => {
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
      const pkg = JSON.parse(await Deno.readTextFile(`${REPO}/package.json`)) as {
        version: string;
      };
      const commit = (await run(["git", "rev-parse", "--short=12", "HEAD"])).stdout.trim();
      assert.match(
        version.stdout,
        new RegExp(
          `^sluice ${pkg.version.replaceAll(".", "\\.")} \\(commit ${commit}(\\+dirty)?, ` +
            `built \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z with ${builder[1]}\\)\\n$`,
        ),
      );
    });

    await t.step("--help and a config error", async () => {
      const help = await run([binary, "--help"], { cwd: dir, clearEnv: true });
      assert.equal(help.code, 0, help.stderr);
      for (const v of CONFIG_VARS) {
        assert.ok(help.stdout.includes(v.name), `--help lacks ${v.name}`);
      }
      // A missing required variable is a config error: one line, exit 2.
      const bare = await run([binary], { cwd: dir, clearEnv: true });
      assert.equal(bare.code, 2, bare.stdout + bare.stderr);
      assert.match(bare.stderr, /SQS_QUEUE_URL/);
    });

    await t.step("no lab or test code inside", async () => {
      const text = new TextDecoder("latin1").decode(await Deno.readFile(binary));
      for (
        const marker of ["runLab", "enrich_sim", "validator_sim", "sqs_proxy", "sigv4_verifier"]
      ) {
        assert.equal(text.includes(marker), false, `binary contains ${marker}`);
      }
    });

    await t.step("drains a queue on instance-role credentials from IMDSv2", async () => {
      await imdsEndToEnd(binary, dir);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const ROLE = {
  accessKeyId: "ASIAROLEEXAMPLE00001",
  secretAccessKey: "role/secret+EXAMPLE0000000000000000000",
  sessionToken: "role-session-token-EXAMPLE",
};

/** IMDSv2 as EC2 serves it: a PUT for a token, then the role name and its credentials. */
function startImds() {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    seen.push(`${request.method} ${path}`);
    if (request.method === "PUT" && path === "/latest/api/token") {
      if (!request.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) {
        return new Response("missing ttl", { status: 400 });
      }
      return new Response("imds-token-1");
    }
    if (request.headers.get("x-aws-ec2-metadata-token") !== "imds-token-1") {
      return new Response("unauthorized", { status: 401 });
    }
    if (path === "/latest/meta-data/iam/security-credentials/") return new Response("sluice-role");
    if (path === "/latest/meta-data/iam/security-credentials/sluice-role") {
      return Response.json({
        Code: "Success",
        LastUpdated: new Date().toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: ROLE.accessKeyId,
        SecretAccessKey: ROLE.secretAccessKey,
        Token: ROLE.sessionToken,
        Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
      });
    }
    return new Response("not found", { status: 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

async function imdsEndToEnd(binary: string, dir: string): Promise<void> {
  const sqs = await startLocalSqs({ verifyWith: ROLE, queues: { work: {} } });
  const imds = startImds();
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  let child: Deno.ChildProcess | undefined;
  let output: Promise<[string, string]> | undefined;
  try {
    const ids = Array.from({ length: 25 }, (_, i) => `m-${i}`);
    for (const id of ids) {
      await sqs.send(
        "work",
        JSON.stringify({ message_id: id, user_id: `u-${id}`, event_ts: 1735689600, payload: {} }),
      );
    }
    await Deno.mkdir(`${dir}/home`);
    child = new Deno.Command(binary, {
      cwd: dir,
      clearEnv: true,
      // Only what systemd's EnvironmentFile would give it; no AWS keys at all.
      env: {
        HOME: `${dir}/home`,
        SQS_QUEUE_URL: sqs.queueUrl("work"),
        AWS_REGION: "us-east-1",
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
        ENRICH_URL: enrich.url,
        VALIDATOR_URL: validator.url,
        HTTP_PORT: "0",
        SQS_RECEIVE_WAIT_SECONDS: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    let exited = false;
    child.status.then(() => exited = true);
    // Done when every message was accepted and deleted (or the worker died).
    for (let i = 0; i < 1200 && !exited; i++) {
      const accepted = ids.every((id) => validator.accepted.has(id));
      if (accepted && (await sqs.messages("work")).length === 0) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!exited) child.kill("SIGTERM");
    const status = await child.status;
    const [stdout, stderr] = await output;
    const log = `${stdout.slice(-3000)}\n${stderr.slice(-2000)}`;
    assert.equal(status.code, 0, log);
    assert.deepEqual(ids.filter((id) => validator.accepted.get(id) !== 1), [], log);
    assert.equal((await sqs.messages("work")).length, 0, "every message deleted");

    // Credentials came from IMDSv2 (token first) and signed every request.
    assert.equal(imds.seen[0], "PUT /latest/api/token");
    assert.ok(imds.seen.includes("GET /latest/meta-data/iam/security-credentials/sluice-role"));
    assert.ok(sqs.requests.length > 0);
    // A poll that reached the proxy as the worker exited may still be in its (async) check.
    for (let i = 0; i < 100 && sqs.requests.some((r) => r.signatureValid === undefined); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const unsigned = sqs.requests.filter((r) => r.signatureValid !== true);
    assert.deepEqual(unsigned.map((r) => `${r.action} ${r.status}`), [], "a request not signed");
    assert.ok(
      sqs.requests.every((r) => r.headers["x-amz-security-token"] === ROLE.sessionToken),
      "the session token went with every request",
    );
    assert.ok(
      sqs.requests.every((r) => r.headers["authorization"]?.includes(ROLE.accessKeyId)),
      "the role's key id signed every request",
    );
    // Never logged.
    for (const secret of [ROLE.secretAccessKey, ROLE.sessionToken]) {
      assert.equal(
        stdout.includes(secret) || stderr.includes(secret),
        false,
        "a secret was logged",
      );
    }
  } finally {
    if (child) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await output;
    }
    await enrich.close();
    await validator.close();
    await imds.close();
    await sqs.close();
  }
}

Deno.test("build: the build refuses an entry that reaches lab/ or tests/", async () => {
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

/**
 * deploy.sh end to end against a real OpenSSH server on 127.0.0.1: the test
 * starts its own sshd on a free port with throwaway host and client keys,
 * deploys into a temporary root with SYSTEMCTL pointing at a recorder, and
 * answers the remote curl's /healthz itself, healthy or not depending on which
 * binary the installed symlink points at (a new version that fails to start).
 *
 * Needs Debian's openssh-server and openssh-client (CI installs them; the test
 * installs them itself when it runs as root with apt-get). Without sshd the
 * test is reported as ignored, with the reason, never as passed.
 */
import assert from "node:assert/strict";
import { run } from "../support/command.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const SSHD = "/usr/sbin/sshd";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const sh = (cmd: string[], env?: Record<string, string>) => run(cmd, env ? { env } : {});

/** sshd and ssh-keygen present, installing them when we can; else why not. */
async function sshAvailable(): Promise<string | undefined> {
  const needed = [SSHD, "/usr/bin/ssh", "/usr/bin/scp", "/usr/bin/ssh-keygen"];
  const missing = async () => (await Promise.all(needed.map(exists))).some((ok) => !ok);
  if (!(await missing())) return undefined;
  if (Deno.uid?.() === 0 && (await exists("/usr/bin/apt-get"))) {
    const env = { DEBIAN_FRONTEND: "noninteractive", PATH: Deno.env.get("PATH") ?? "" };
    await sh(["apt-get", "update", "-qq"], env);
    await sh(["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"], env);
    if (!(await missing())) return undefined;
  }
  return "openssh-server/openssh-client are not installed and could not be installed " +
    "(run: apt-get install -y openssh-server openssh-client)";
}

const skipReason = await sshAvailable();
if (skipReason) console.error(`deploy_test: IGNORED: ${skipReason}`);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface Sshd {
  port: number;
  knownHosts: string;
  clientKey: string;
  stop(): Promise<string>;
}

async function startSshd(dir: string): Promise<Sshd> {
  for (const key of ["host_key", "client_key"]) {
    const r = await sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", `${dir}/${key}`]);
    assert.equal(r.code, 0, r.stderr);
  }
  await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
  // sshd refuses to start without its privilege separation directory.
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin yes",
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "Subsystem sftp internal-sftp", // scp speaks SFTP since OpenSSH 9
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const hostKey = (await Deno.readTextFile(`${dir}/host_key.pub`)).trim();
  await Deno.writeTextFile(`${dir}/known_hosts`, `[127.0.0.1]:${port} ${hostKey}\n`);

  const child = new Deno.Command(SSHD, {
    args: ["-D", "-e", "-f", `${dir}/sshd_config`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await status;
    return await log;
  };
  // Ready when it accepts a connection; give up if it exits first.
  for (let attempt = 0;; attempt++) {
    if (exited) throw new Error(`sshd exited at startup:\n${await stop()}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch (error) {
      if (attempt >= 200) {
        throw new Error(`sshd not listening on ${port}: ${error}\n${await stop()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { port, knownHosts: `${dir}/known_hosts`, clientKey: `${dir}/client_key`, stop };
}

/** deploy.sh's temporary directories on the "remote" host (this one). */
async function remoteTmpDirs(): Promise<string[]> {
  const names = [];
  for await (const entry of Deno.readDir("/tmp")) {
    if (entry.name.startsWith("sluice-deploy.")) names.push(entry.name);
  }
  return names;
}

/** A stand-in binary: deploy.sh only runs `--version` on it. */
async function fakeBinary(path: string, commit: string): Promise<void> {
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho "sluice 0.1.0 (commit ${commit}, built 2025-01-01T00:00:00Z with test)"\n`,
  );
  await Deno.chmod(path, 0o755);
}

Deno.test({
  name: "deploy: deploy.sh installs over real ssh, keeps the env file, rolls back a failed start",
  ignore: skipReason !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sluice_deploy_test_" });
    const root = `${dir}/root`;
    const link = `${root}/usr/local/bin/sluice`;
    const lib = `${root}/usr/local/lib/sluice`;
    const recorderLog = `${dir}/systemctl.log`;
    let sshd: Sshd | undefined;
    // The "running service" is healthy unless the symlink points at a bad build.
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const target = await Deno.readLink(link).catch(() => "");
        const path = new URL(request.url).pathname;
        // Build b runs (/healthz 200) but cannot reach SQS: /readyz says why.
        if (path === "/healthz") return Response.json({ status: "ok" });
        if (path === "/readyz" && !target.includes("bbbbbbbbbbbb")) {
          return Response.json({ status: "ready" });
        }
        return Response.json({
          status: "not_ready",
          reasons: ["redrive policy not read yet: SQS GetQueueAttributes failed: AccessDenied"],
        }, { status: 503 });
      },
    );
    const tmpBefore = await remoteTmpDirs();
    try {
      sshd = await startSshd(dir);
      await Deno.writeTextFile(
        `${dir}/systemctl`,
        `#!/bin/sh\necho "$*" >> '${recorderLog}'\n`,
      );
      await Deno.chmod(`${dir}/systemctl`, 0o755);
      await fakeBinary(`${dir}/sluice-a`, "aaaaaaaaaaaa");
      await fakeBinary(`${dir}/sluice-b`, "bbbbbbbbbbbb");
      // An operator's env file, already on the host: deploy must keep it.
      await Deno.mkdir(`${root}/etc/sluice`, { recursive: true });
      const envText = `# mine\nHTTP_PORT=${server.addr.port}\nSQS_QUEUE_URL=http://q/1/x\n`;
      await Deno.writeTextFile(`${root}/etc/sluice/sluice.env`, envText);

      const deploy = (binary: string, extra: string[] = [], root_ = root) =>
        sh([
          `${REPO}/deploy.sh`,
          "--binary",
          binary,
          "--port",
          String(sshd!.port),
          "--identity",
          sshd!.clientKey,
          "--ssh-option",
          `UserKnownHostsFile=${sshd!.knownHosts}`,
          "--ssh-option",
          "StrictHostKeyChecking=yes",
          "--root",
          root_,
          "--health-timeout",
          "3",
          ...extra,
          "root@127.0.0.1",
        ], { PATH: Deno.env.get("PATH") ?? "", SYSTEMCTL: `${dir}/systemctl` });

      // 1. A healthy deploy.
      const first = await deploy(`${dir}/sluice-a`);
      const firstOut = first.stdout + first.stderr;
      assert.equal(first.code, 0, firstOut);
      assert.match(
        firstOut,
        /readyz ok: http:\/\/127\.0\.0\.1:\d+\/readyz -> \{"status":"ready"\}/,
      );
      assert.match(firstOut, /kept existing .*sluice\.env/);
      const nameA = "sluice-0.1.0-aaaaaaaaaaaa";
      assert.equal(await Deno.readLink(link), `../lib/sluice/${nameA}`);
      assert.equal(
        await Deno.readTextFile(`${lib}/${nameA}`),
        await Deno.readTextFile(`${dir}/sluice-a`),
      );
      assert.equal((await Deno.stat(`${lib}/${nameA}`)).mode! & 0o777, 0o755);
      assert.equal(
        await Deno.readTextFile(`${root}/etc/systemd/system/sluice.service`),
        await Deno.readTextFile(`${REPO}/systemd/sluice.service`),
      );
      assert.equal(await Deno.readTextFile(`${root}/etc/sluice/sluice.env`), envText);
      assert.equal(
        await Deno.readTextFile(`${root}/etc/sluice/sluice.env.example`),
        await Deno.readTextFile(`${REPO}/systemd/sluice.env.example`),
      );
      assert.deepEqual(
        (await Deno.readTextFile(recorderLog)).trim().split("\n"),
        ["daemon-reload", "enable sluice.service", "restart sluice.service"],
      );

      // 1b. SLUICE_IP_ALLOW in the env file widens the unit's IPAddressAllow= through a drop-in;
      // taken out again, the drop-in goes with it.
      const dropin = `${root}/etc/systemd/system/sluice.service.d/50-ip-allow.conf`;
      assert.equal(await exists(dropin), false, "no drop-in without SLUICE_IP_ALLOW");
      await Deno.writeTextFile(
        `${root}/etc/sluice/sluice.env`,
        `${envText}SLUICE_IP_ALLOW="any"\n`,
      );
      const widened = await deploy(`${dir}/sluice-a`);
      assert.equal(widened.code, 0, widened.stdout + widened.stderr);
      assert.match(await Deno.readTextFile(dropin), /^\[Service\]\nIPAddressAllow=any$/m);
      await Deno.writeTextFile(`${root}/etc/sluice/sluice.env`, envText);
      const narrowed = await deploy(`${dir}/sluice-a`);
      assert.equal(narrowed.code, 0, narrowed.stdout + narrowed.stderr);
      assert.equal(await exists(dropin), false, "removed with the variable");

      // 2. a version that runs (/healthz 200) but never becomes ready: rolled back to
      // the first, binary and unit file together, and /readyz's answer is shown.
      await Deno.remove(recorderLog);
      const unitPath = `${root}/etc/systemd/system/sluice.service`;
      const previousUnit = `# the unit deployed with the previous binary\n${await Deno.readTextFile(
        unitPath,
      )}`;
      await Deno.writeTextFile(unitPath, previousUnit);
      const second = await deploy(`${dir}/sluice-b`);
      const secondOut = second.stdout + second.stderr;
      assert.equal(second.code, 1, secondOut);
      assert.match(
        secondOut,
        /readyz not ready after 3s: http:\/\/127\.0\.0\.1:\d+\/readyz -> HTTP 503 .*redrive policy not read yet: .*AccessDenied/,
      );
      assert.match(secondOut, /rolled back .* -> \.\.\/lib\/sluice\/sluice-0\.1\.0-aaaaaaaaaaaa/);
      assert.match(secondOut, /the previous version is ready/);
      assert.equal(await Deno.readLink(link), `../lib/sluice/${nameA}`);
      assert.equal(await Deno.readTextFile(unitPath), previousUnit, "the unit rolled back too");
      assert.ok(
        await exists(`${lib}/sluice-0.1.0-bbbbbbbbbbbb`),
        "the failed build stays for a look",
      );
      assert.deepEqual(
        (await Deno.readTextFile(recorderLog)).trim().split("\n"),
        [
          "daemon-reload",
          "enable sluice.service",
          "restart sluice.service",
          "daemon-reload",
          "reset-failed sluice.service",
          "restart sluice.service",
        ],
      );
      assert.equal(await Deno.readTextFile(`${root}/etc/sluice/sluice.env`), envText);

      // 3. A fresh host: the example becomes the env file, private to root, and
      // the service is not started on its empty required values.
      await Deno.remove(recorderLog);
      const fresh = `${dir}/fresh`;
      const third = await deploy(`${dir}/sluice-a`, [], fresh);
      const thirdOut = third.stdout + third.stderr;
      assert.equal(third.code, 0, thirdOut);
      assert.match(thirdOut, /installed .*sluice\.env from the example/);
      assert.match(thirdOut, /did not start it/);
      assert.equal(
        await Deno.readTextFile(`${fresh}/etc/sluice/sluice.env`),
        await Deno.readTextFile(`${REPO}/systemd/sluice.env.example`),
      );
      assert.equal((await Deno.stat(`${fresh}/etc/sluice/sluice.env`)).mode! & 0o777, 0o600);
      assert.equal(await Deno.readLink(`${fresh}/usr/local/bin/sluice`), `../lib/sluice/${nameA}`);
      assert.deepEqual((await Deno.readTextFile(recorderLog)).trim().split("\n"), [
        "daemon-reload",
      ]);

      // 4. --dry-run touches nothing.
      const dryRoot = `${dir}/dry`;
      const dry = await deploy(`${dir}/sluice-a`, ["--dry-run"], dryRoot);
      assert.equal(dry.code, 0, dry.stdout + dry.stderr);
      assert.match(dry.stdout, /^\+ scp .*sluice-a/m);
      assert.match(dry.stdout, /deploy_remote\.sh install/);
      assert.match(dry.stdout, /deploy_remote\.sh rollback/);
      assert.equal(await exists(dryRoot), false);
      // Every remote temporary directory was cleaned up.
      assert.deepEqual((await remoteTmpDirs()).filter((d) => !tmpBefore.includes(d)), []);
    } finally {
      await server.shutdown();
      const log = (await sshd?.stop() ?? "").split("\n")
        // our readiness probe connects and hangs up
        .filter((line) => line.trim() && !line.includes("kex_exchange_identification"));
      if (log.length > 0) console.error(`sshd said:\n${log.join("\n")}`);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deploy: the build installs packages with a frozen lockfile", async () => {
  // deploy.sh builds through `deno task build` (scripts/build.ts); neither may update deno.lock.
  const build = await Deno.readTextFile(`${REPO}/scripts/build.ts`);
  const installs = [...build.matchAll(/\[Deno\.execPath\(\), "install"([^\]]*)\]/g)];
  assert.ok(installs.length > 0, "scripts/build.ts runs deno install");
  for (const m of installs) assert.match(m[1]!, /"--frozen"/);
  const deploy = await Deno.readTextFile(`${REPO}/deploy.sh`);
  assert.doesNotMatch(deploy, /deno[^\n]* install(?![^\n]*--frozen)/);
});
